package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/chromedp/chromedp"

	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/oidctest"
	"github.com/berth-dev/berth/internal/testenv"
)

// chromiumPath is Debian's Chromium ($BERTH_CHROMIUM overrides).
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("BERTH_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Require(t, "no Chromium for the browser tests: install it with scripts/install-tools.sh (Debian package chromium)")
	return ""
}

// axeScript is axe-core's browser build, which scripts/install-tools.sh
// puts in the tools cache ($BERTH_AXE_JS overrides).
func axeScript(t *testing.T) string {
	paths := []string{os.Getenv("BERTH_AXE_JS")}
	for _, dir := range []string{os.Getenv("BERTH_TOOLS_DIR"), filepath.Join(os.Getenv("HOME"), ".cache", "berth-tools")} {
		if dir != "" {
			paths = append(paths, filepath.Join(dir, "axe-core", "node_modules", "axe-core", "axe.min.js"))
		}
	}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			return string(b)
		}
	}
	testenv.Require(t, "no axe-core for the accessibility checks: install it with scripts/install-tools.sh")
	return ""
}

// startChromium starts one headless Chromium for the whole test; each
// scenario gets a browser context of its own (its own cookies).
func startChromium(t *testing.T) context.Context {
	path := chromiumPath(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()))
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		if os.Getenv(testenv.RequireServersEnv) == "1" {
			t.Fatalf("start Chromium %s: %v", path, err)
		}
		t.Skipf("start Chromium %s: %v", path, err)
	}
	return ctx
}

// tab drives one browser context against one hub.
type tab struct {
	t     *testing.T
	ctx   context.Context
	base  string
	axe   string
	shots string
}

func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *tab) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

func eval[T any](b *tab, js string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		b.t.Fatalf("evaluate %.80s: %v", js, err)
	}
	return v
}

// waitText waits until the page shows text (after a form's navigation,
// during which an evaluation can fail: it is tried again).
func (b *tab) waitText(text string) {
	b.t.Helper()
	js := "document.readyState === 'complete' && document.body !== null && document.body.innerText.includes(" + strconv.Quote(text) + ")"
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body := eval[string](b, "document.body ? document.body.innerText : ''")
			b.t.Fatalf("wait for %q: %v; the page shows:\n%s", text, err, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newToken creates an API token on the tokens page and returns it.
func (b *tab) newToken(name string) string {
	b.t.Helper()
	b.open("/tokens")
	b.do("type the token name", chromedp.Focus(chromedp.CSS("#f-name")), chromedp.KeyEvent(name+"\r"))
	b.waitText("Copy it now")
	return strings.TrimSpace(b.text("#new-token-value"))
}

// lockedBuffer is an output the CLI writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (b *tab) text(sel string) string {
	b.t.Helper()
	return eval[string](b, "(document.querySelector("+strconv.Quote(sel)+") || {}).textContent || ''")
}

func (b *tab) attr(sel, name string) string {
	b.t.Helper()
	return eval[string](b, "(document.querySelector("+strconv.Quote(sel)+") || {getAttribute: () => ''}).getAttribute("+strconv.Quote(name)+") || ''")
}

// fill replaces an input's value, as typing does.
func (b *tab) fill(fields map[string]string) {
	b.t.Helper()
	for sel, v := range fields {
		b.do("fill "+sel, chromedp.SetValue(chromedp.CSS(sel), v))
	}
}

func (b *tab) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

type violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// check runs axe-core on the page at 1280 and 390 pixels wide, fails on a
// serious or critical violation or on a page wider than the window, and
// saves a screenshot at each width.
func (b *tab) check(name string) {
	b.t.Helper()
	for _, width := range []int64{1280, 390} {
		b.do("resize", chromedp.EmulateViewport(width, 900))
		if eval[bool](b, "typeof axe === 'undefined'") {
			eval[any](b, b.axe+";true")
		}
		vs := eval[[]violation](b, `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
			.filter(v => v.impact === 'serious' || v.impact === 'critical')
			.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))`, chromedp.EvalAwaitPromise)
		for _, v := range vs {
			b.t.Errorf("%s at %d px: axe %s (%s): %s at %v", name, width, v.ID, v.Impact, v.Help, v.Nodes)
		}
		if w := eval[[]int](b, "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"); w[0] > w[1] {
			b.t.Errorf("%s at %d px: the page is %d px wide, wider than the window (%d px)", name, width, w[0], w[1])
		}
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			b.t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(b.shots, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.do("resize", chromedp.EmulateViewport(1280, 900))
}

// deployMinIO sets up berth's S3-compatible data plane on the servers, as
// "berth dataplane deploy --endpoint" does, and returns its identities.
func deployMinIO(t *testing.T, regions []*testenv.MinIO) map[string]dataplane.Credentials {
	t.Helper()
	ctx := context.Background()
	keep := func(context.Context, dataplane.Credentials) error { return nil } // the result has them
	in := dataplane.S3CompatInput{Bucket: "berth-releases", Prefix: "rel", Identities: true, KeepCredentials: keep}
	for _, m := range regions {
		admin, err := dataplane.NewAdmin(m.Endpoint, m.Region, aws.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		in.Targets = append(in.Targets, dataplane.Target{Endpoint: dataplane.Endpoint{Name: m.Region, URL: m.Endpoint}, S3: m.S3Client(t), Admin: admin})
	}
	plan, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dataplane.ApplyS3Compat(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]dataplane.Credentials{}
	for _, c := range res.Credentials {
		ids[c.Role] = c
	}
	return ids
}

// TestBrowser drives the UI in Chromium against a real hub on SQLite and
// on PostgreSQL, with two MinIO regions behind it: first start, a data
// plane, a project with a member, a version staged from the CLI with
// vended credentials, tokens, the audit log and sign-out; axe-core and
// screenshots on every page.
func TestBrowser(t *testing.T) {
	axe := axeScript(t)
	browser := startChromium(t)
	regions := testenv.StartRegions(t, 2)
	ids := deployMinIO(t, regions)
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			s, srv := startHub(t, hubDatabase(t, engine))
			iss := oidctest.New(t)
			s.OIDC = &hub.OIDCConfig{Issuer: iss.URL, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret}
			b := newTab(t, browser, axe, engine)
			b.base = srv.URL
			scenario(t, b, engine, regions, ids, browser, iss)
			t.Logf("screenshots in %s", b.shots)
		})
	}
	for name, run := range map[string]func(*testing.T, *tab, string){"aws": awsScenario, "access": accessScenario} {
		for _, engine := range []string{"sqlite", "postgres"} {
			t.Run(name+"-"+engine, func(t *testing.T) {
				run(t, newTab(t, browser, axe, name+"-"+engine), hubDatabase(t, engine))
			})
		}
	}
}

// newTab opens a browser context of its own (its own cookies) for one
// scenario; its screenshots go to $BERTH_SCREENSHOT_DIR/name, else to the
// test's artifact folder.
func newTab(t *testing.T, browser context.Context, axe, name string) *tab {
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first action opens the tab for the life of its context: no
	// timeout on it.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	shots := t.ArtifactDir()
	if root := os.Getenv("BERTH_SCREENSHOT_DIR"); root != "" {
		shots = filepath.Join(root, name)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	return &tab{t: t, ctx: ctx, axe: axe, shots: shots}
}

// hubDatabase is a new, empty database of the engine for one hub.
func hubDatabase(t *testing.T, engine string) string {
	if engine == "postgres" {
		return testenv.StartPostgres(t).URL
	}
	return "sqlite:" + filepath.Join(t.TempDir(), "hub.db")
}

func scenario(t *testing.T, b *tab, engine string, regions []*testenv.MinIO, ids map[string]dataplane.Credentials, browser context.Context, iss *oidctest.Issuer) {
	project := "app-" + engine

	// First start: signed out, the hub sends to sign-in; the setup link
	// creates the first admin and signs the browser in.
	b.open("/projects")
	b.waitText("Sign in")
	b.check("signin")
	b.open("/setup?code=" + setupCode)
	b.check("setup")
	b.fill(map[string]string{"#email": "ana@example.com", "#name": "Ana"})
	b.click("form button[type=submit]")
	b.waitText("No projects yet")
	if got := b.text(".who"); !strings.Contains(got, "ana@example.com") || !strings.Contains(got, "default") {
		t.Errorf("the navigation bar shows %q, want the user and the organisation", got)
	}
	b.check("projects-empty")

	// Keyboard: the first Tab reaches the skip link, which moves to the
	// content.
	b.do("tab", chromedp.KeyEvent("\t"))
	if got := eval[string](b, "document.activeElement.textContent"); got != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", got)
	}

	// Connect an S3-compatible data plane.
	b.open("/dataplanes")
	b.check("dataplanes-empty")
	var eps []string
	for _, m := range regions {
		eps = append(eps, m.Region+"="+m.Endpoint)
	}
	b.fill(map[string]string{"#f-name": "minio", "#f-endpoints": strings.Join(eps, "\n"), "#f-bucket": "berth-releases", "#f-prefix": "rel",
		"#f-writer": ids["writer"].AccessKeyID, "#f-writer_secret": ids["writer"].SecretAccessKey,
		"#f-reader": ids["reader"].AccessKeyID, "#f-reader_secret": ids["reader"].SecretAccessKey})
	b.click("form[action='/dataplanes'] button[type=submit]")
	b.waitText("is connected")
	for _, m := range regions {
		if !strings.Contains(b.text("main table"), m.Endpoint) {
			t.Errorf("the data plane list lacks endpoint %s", m.Endpoint)
		}
	}
	if html := eval[string](b, "document.documentElement.outerHTML"); strings.Contains(html, ids["writer"].SecretAccessKey) || strings.Contains(html, ids["reader"].SecretAccessKey) {
		t.Error("a data plane secret is in the page after it was saved")
	}
	b.check("dataplanes")

	// Create a project: a field error first, then the project.
	b.open("/projects")
	b.fill(map[string]string{"#f-name": "Bad Name"})
	b.click("form[action='/projects'] button[type=submit]")
	b.waitText("There is a problem")
	if b.attr("#f-name", "aria-invalid") != "true" || !strings.Contains(b.attr("#f-name", "aria-describedby"), "f-name-error") ||
		!strings.Contains(b.text("#f-name-error"), "not allowed") {
		t.Errorf("the name field does not carry its error: %q", eval[string](b, "document.querySelector('main').outerHTML"))
	}
	if got := eval[string](b, "document.activeElement.id"); got != "error-summary" {
		t.Errorf("after a failed post the focus is on %q, want the error summary", got)
	}
	b.check("projects-field-error")
	b.fill(map[string]string{"#f-name": project})
	b.click("form[action='/projects'] button[type=submit]")
	b.waitText("Project " + project)
	b.check("project")

	// A token for the admin, created with the keyboard only; shown once.
	b.open("/tokens")
	b.check("tokens-empty")
	b.do("type the token name", chromedp.Focus(chromedp.CSS("#f-name")), chromedp.KeyEvent("admin-cli\r"))
	b.waitText("Copy it now")
	adminToken := strings.TrimSpace(b.text("#new-token-value"))
	if !strings.HasPrefix(adminToken, "berth_") || eval[bool](b, "document.querySelector('button.copy').hidden") {
		t.Fatalf("new token %q, or its copy button is hidden", adminToken)
	}
	b.check("token-created")
	api := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, b.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	code, body := api("POST", "/api/v1/users", adminToken, `{"email":"bob@example.com","name":"Bob"}`)
	var bob struct {
		Token struct{ Token string } `json:"token"`
	}
	if err := json.Unmarshal([]byte(body), &bob); code != http.StatusCreated || err != nil {
		t.Fatalf("create user with the token from the page: %d %s", code, body)
	}

	// Add a member: an unknown user first, then bob as writer.
	b.open("/projects/" + project)
	b.fill(map[string]string{"#f-email": "nobody@example.com", "#f-role": "writer"})
	b.click("form[action$='/members'] button[type=submit]")
	b.waitText("There is a problem")
	if b.attr("#f-email", "aria-invalid") != "true" {
		t.Errorf("an unknown member's error is not on the e-mail field")
	}
	b.fill(map[string]string{"#f-email": "bob@example.com", "#f-role": "writer"})
	b.click("form[action$='/members'] button[type=submit]")
	b.waitText("bob@example.com is now writer")
	b.check("project-members")

	// No versions yet; then bob stages from the CLI with vended credentials.
	b.open("/projects/" + project + "/versions")
	b.waitText("No versions staged yet")
	b.check("versions-empty")
	cliDir := t.TempDir()
	env := map[string]string{"XDG_CONFIG_HOME": filepath.Join(cliDir, "config"), "XDG_STATE_HOME": filepath.Join(cliDir, "state"),
		"XDG_DATA_HOME": filepath.Join(cliDir, "data"), "HOME": cliDir}
	file := filepath.Join(cliDir, "app.bin")
	if err := os.WriteFile(file, []byte("release bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		stdin string
		args  []string
	}{
		{bob.Token.Token + "\n", []string{"login", "--url", b.base, "--token", "-"}},
		{"", []string{"stage", project, "1.0.0", file, "--metadata", "commit=abc123"}},
		{"", []string{"stage", project, "1.1.0-rc.1", file}},
	} {
		var stdout, stderr strings.Builder
		g := &cli.Globals{Stdin: strings.NewReader(step.stdin), Stdout: &stdout, Stderr: &stderr, Env: func(k string) string { return env[k] }}
		if code := cli.Main(context.Background(), step.args, g); code != 0 {
			t.Fatalf("berth %v: exit %d\n%s%s", step.args, code, stdout.String(), stderr.String())
		}
	}
	b.open("/projects/" + project + "/versions")
	b.waitText("1.1.0-rc.1")
	rows := eval[[]string](b, "[...document.querySelectorAll('main tbody tr')].map(r => r.innerText.replace(/\\s+/g, ' '))")
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "1.1.0-rc.1") || !strings.Contains(rows[0], "prerelease") ||
		!strings.HasPrefix(rows[1], "1.0.0 latest") || !strings.Contains(rows[1], regions[0].Region+", "+regions[1].Region) ||
		!strings.Contains(rows[0], "bob@example.com") || !strings.Contains(rows[1], "bob@example.com") {
		t.Errorf("versions, newest first with latest and prereleases marked, who staged them and their regions: %q", rows)
	}
	if got := b.text("main"); !strings.Contains(got, "The buckets were last listed") {
		t.Errorf("the versions page does not say when the buckets were listed: %s", got)
	}
	b.check("versions")
	b.click("main tbody tr:nth-child(2) a")
	b.waitText("Staged by")
	regionRows := eval[[]string](b, "[...document.querySelectorAll('main tbody tr')].map(r => r.innerText.replace(/\\s+/g, ' '))")
	if len(regionRows) != 2 || !strings.Contains(regionRows[0], "yes") || !strings.Contains(regionRows[1], "yes") {
		t.Errorf("the version's regions: %q, want both holding it", regionRows)
	}
	if facts := b.text("main"); !strings.Contains(facts, "commit") || !strings.Contains(facts, "abc123") || !strings.Contains(facts, "bob@example.com") {
		t.Errorf("the version page lacks its metadata or who staged it:\n%s", facts)
	}
	b.check("version")

	// The download link: the bytes come from the bucket and are the ones
	// staged.
	b.click("a[href*='/download?file=']")
	b.waitText("Valid until")
	b.check("download")
	dl := b.attr("#download-link", "href")
	if !strings.HasPrefix(dl, regions[0].Endpoint) && !strings.HasPrefix(dl, regions[1].Endpoint) {
		t.Errorf("download link %q is not one of the regions' endpoints", dl)
	}
	resp, err := http.Get(dl)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != "release bytes" {
		t.Errorf("download through the link: %d %q", resp.StatusCode, got)
	}
	settingsScenario(t, b, project, bob.Token.Token)

	// bob, a writer added by the admin, signs in with OIDC in a browser of
	// his own and comes back to the page he asked for; he sees his project,
	// not the organisation's data planes or audit log.
	bobCtx, cancelBob := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancelBob()
	if err := chromedp.Do(bobCtx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	bobTab := &tab{t: t, ctx: bobCtx, base: b.base, axe: b.axe, shots: b.shots}
	iss.SignInAs("bob@example.com")
	bobTab.open("/projects/" + project + "/versions")
	bobTab.waitText("Sign in with")
	bobTab.check("signin-oidc")
	bobTab.click("a[href^='/auth/oidc/login']")
	bobTab.waitText("Versions of " + project)
	if nav := bobTab.text("header"); !strings.Contains(nav, "bob@example.com") || strings.Contains(nav, "Data planes") || strings.Contains(nav, "Audit log") {
		t.Errorf("a member's navigation bar: %q", nav)
	}
	bobTab.open("/projects")
	if got := bobTab.text("main tbody"); !strings.Contains(got, project) || !strings.Contains(got, "writer") || strings.Contains(got, "Create a project") {
		t.Errorf("a member's projects: %q", got)
	}
	bobTab.check("projects-member")
	bobTab.open("/audit")
	bobTab.waitText("only an admin")
	bobTab.check("forbidden")

	// Revoke the admin's token in the browser: the API refuses it at once.
	if code, _ := api("GET", "/api/v1/me", adminToken, ""); code != http.StatusOK {
		t.Fatalf("the new token before revocation: %d", code)
	}
	b.open("/tokens")
	if html := eval[string](b, "document.documentElement.outerHTML"); strings.Contains(html, adminToken) {
		t.Error("the token is in the tokens page after its creation")
	}
	b.click("form[action$='/revoke'] button[type=submit]")
	b.waitText("is revoked")
	if code, body := api("GET", "/api/v1/me", adminToken, ""); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d %s, want 401", code, body)
	}
	b.check("tokens")

	// The audit log, filtered; a bad filter shows beside its field; the
	// export is JSON lines of the same filter.
	b.open("/audit?outcome=error")
	b.waitText("project.create")
	if got := b.text("main tbody"); strings.Contains(got, "project/"+project+"\n") || !strings.Contains(got, "project/Bad Name") {
		t.Errorf("audit filtered by outcome=error:\n%s", got)
	}
	b.check("audit")
	b.fill(map[string]string{"#f-action": "project.member.set", "#f-outcome": "ok"})
	b.click("form.filters button[type=submit]")
	b.waitText("bob@example.com=writer")
	lines := eval[string](b, "fetch(document.querySelector('a[download]').href).then(r => r.text())", chromedp.EvalAwaitPromise)
	if n := strings.Count(lines, "\n"); n != 1 || !strings.Contains(lines, `"action":"project.member.set"`) {
		t.Errorf("export of the filtered log: %q, want one JSON line", lines)
	}
	b.open("/audit?since=yesterday")
	b.waitText("There is a problem")
	if b.attr("#f-since", "aria-invalid") != "true" {
		t.Error("a bad time filter is not on its field")
	}
	b.check("audit-field-error")

	// berth login without a token: the CLI prints an approval link, which
	// the signed-in browser approves.
	loginDir := t.TempDir()
	loginEnv := map[string]string{"XDG_CONFIG_HOME": loginDir, "HOME": loginDir, "BROWSER": "true"} // "true" opens nothing
	var loginOut, loginErr lockedBuffer
	g := &cli.Globals{Stdin: strings.NewReader(""), Stdout: &loginOut, Stderr: &loginErr, Env: func(k string) string { return loginEnv[k] }}
	loginCtx, cancelLogin := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelLogin()
	done := make(chan int, 1)
	go func() { done <- cli.Main(loginCtx, []string{"login", "--url", b.base}, g) }()
	var userCode, link string
	for link == "" {
		select {
		case code := <-done:
			t.Fatalf("berth login ended before approval: exit %d\n%s", code, loginErr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if m := regexp.MustCompile(`type the code ([A-Z]{4}-[A-Z]{4}):\n  (\S+)\n`).FindStringSubmatch(loginErr.String()); m != nil {
			userCode, link = m[1], m[2]
		}
	}
	b.open(strings.TrimPrefix(link, b.base))
	b.waitText("asks to act as you")
	b.check("login-approval")
	// A wrong code is announced next to the field and approves nothing.
	b.fill(map[string]string{"#user_code": "BCDF-GHJK"})
	b.click("button[value=approve]")
	b.waitText("That is not the code of this request")
	b.check("login-approval-wrong-code")
	b.fill(map[string]string{"#user_code": strings.ToLower(userCode)})
	b.click("button[value=approve]")
	b.waitText("return to your terminal")
	if code := <-done; code != 0 || !strings.Contains(loginOut.String(), "as ana@example.com") {
		t.Errorf("berth login approved in the browser: exit %d\n%s%s", code, loginOut.String(), loginErr.String())
	}

	// Sign out: the session ends, and pages send to sign-in again.
	b.open("/projects")
	b.click(".who button[type=submit]")
	b.waitText("You are signed out")
	b.check("signed-out")
	b.open("/tokens")
	b.waitText("Sign in")
	if loc := eval[string](b, "location.pathname"); loc != "/signin" {
		t.Errorf("after sign-out /tokens shows %s", loc)
	}
}
