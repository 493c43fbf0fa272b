package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/hub/secrets"
)

const setupCode = "0123456789abcdef0123456789abcdef"

// startHub runs a hub on the database at dbURL, as berth server does.
func startHub(t testing.TB, dbURL string) (*hub.Server, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	kek, err := secrets.LoadOrCreateKeyFile(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	s := &hub.Server{DB: d, SetupCode: setupCode, Secrets: &secrets.Box{KEKs: []secrets.KEK{kek}}, LoginPollInterval: 10 * time.Millisecond}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

// browser is a plain HTTP client with cookies: the pages must work without
// JavaScript, so a client that runs none sees all of them.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar}}
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf_token field in the page:\n%s", page)
	}
	return m[1]
}

// checkPage holds what every page must: the security headers, no inline
// script or style, a CSRF token in every form that posts, a label for
// every visible input.
func checkPage(t *testing.T, path, body string, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "script-src 'self'", "style-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %s", path, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("%s: CSP allows unsafe-inline", path)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: headers %v", path, h)
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]|\sstyle=|<style|\son[a-z]+=`).MatchString(body) {
		t.Errorf("%s: inline script or style:\n%s", path, body)
	}
	for _, f := range regexp.MustCompile(`(?s)<form [^>]*method="post".*?</form>`).FindAllString(body, -1) {
		if !strings.Contains(f, `name="csrf_token"`) {
			t.Errorf("%s: a form without a CSRF token: %s", path, f)
		}
	}
	for _, m := range regexp.MustCompile(`<(?:input|select|textarea) id="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		if !strings.Contains(body, `<label for="`+m[1]+`"`) {
			t.Errorf("%s: input %s has no label", path, m[1])
		}
	}
}

// TestPagesWithoutBrowser signs in through the setup page and walks the
// pages that need no data plane: headers, forms, empty states, field
// errors, the CSRF check, the token shown once.
func TestPagesWithoutBrowser(t *testing.T) {
	_, srv := startHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	b := newBrowser(t, srv.URL)

	// Signed out, a page sends to sign-in.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(srv.URL + "/projects")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/signin?next=%2Fprojects" {
		t.Fatalf("signed out: %d to %q", resp.StatusCode, loc)
	}

	if code, body := b.post("/setup", url.Values{"code": {setupCode}, "email": {"ana@example.com"}, "name": {"Ana"}}); code != 200 || !strings.Contains(body, "No projects yet") {
		t.Fatalf("setup: %d\n%s", code, body)
	}
	for _, tc := range []struct{ path, want string }{
		{"/projects", "Connect a data plane"},
		{"/dataplanes", "No data planes connected yet"},
		{"/tokens", "Create a token"},
		{"/audit", "setup"},
		{"/access", "Just-in-time access is not available"},
		{"/settings", "Require the organisation's own data planes"},
		{"/nowhere", "there is no page /nowhere"},
		{"/projects/none", "not found"},
	} {
		code, body, h := b.get(tc.path)
		checkPage(t, tc.path, body, h)
		if !strings.Contains(body, tc.want) || !strings.Contains(body, "ana@example.com") || !strings.Contains(body, ">default<") {
			t.Errorf("%s: %d, want %q, the user and the organisation:\n%s", tc.path, code, tc.want, body)
		}
	}

	// A form post without the session's CSRF token changes nothing.
	if code, body := b.post("/tokens", url.Values{"name": {"ci"}}); code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
		t.Errorf("token without CSRF: %d\n%s", code, body)
	}
	_, page, _ := b.get("/tokens")
	csrf := csrfOf(t, page)
	// A field error is shown beside its field, and described by it.
	code, body := b.post("/tokens", url.Values{"name": {""}, "csrf_token": {csrf}})
	if code != http.StatusBadRequest || !strings.Contains(body, `aria-describedby="f-name-hint f-name-error" aria-invalid="true"`) ||
		!strings.Contains(body, `id="f-name-error"`) || !strings.Contains(body, `role="alert"`) {
		t.Errorf("empty token name: %d\n%s", code, body)
	}
	code, body = b.post("/tokens", url.Values{"name": {"ci"}, "csrf_token": {csrf}})
	token := regexp.MustCompile(`berth_[0-9a-f]{16}_[A-Za-z0-9_-]+`).FindString(body)
	if code != http.StatusCreated || token == "" {
		t.Fatalf("create token: %d\n%s", code, body)
	}
	if _, again, _ := b.get("/tokens"); strings.Contains(again, token) || !strings.Contains(again, "ci") {
		t.Errorf("the token is shown after its creation, or not listed")
	}
	// The data plane form: the API's error on the name is shown on the
	// name field, and the secrets typed are not sent back.
	code, body = b.post("/dataplanes", url.Values{"name": {"Bad Name"}, "endpoints": {"r1=http://127.0.0.1:1"}, "bucket": {"b"},
		"writer": {"w"}, "writer_secret": {"writer-secret-7f3a"}, "reader": {"r"}, "reader_secret": {"reader-secret-9c1d"}, "csrf_token": {csrf}})
	if code != http.StatusBadRequest || !strings.Contains(body, `id="f-name-error"`) || !strings.Contains(body, `value="r1=http://127.0.0.1:1"`) && !strings.Contains(body, "r1=http://127.0.0.1:1</textarea>") {
		t.Errorf("bad data plane name: %d\n%s", code, body)
	}
	if strings.Contains(body, "writer-secret-7f3a") || strings.Contains(body, "reader-secret-9c1d") {
		t.Error("a secret typed into the data plane form is in the page that reports its error")
	}
	// The project form of an admin without data planes is replaced by the
	// next step; the API's answer to a post shows beside its field.
	code, body = b.post("/projects", url.Values{"name": {"Bad Name"}, "dataplane": {"x"}, "csrf_token": {csrf}})
	if code != http.StatusBadRequest || !strings.Contains(body, "character") {
		t.Errorf("bad project name: %d\n%s", code, body)
	}
}

// TestPagesRefuse: every page sends a signed-out browser to sign-in (GET)
// or answers 401 (POST), and every form post without the session's CSRF
// token is refused by the API the page calls, changing nothing.
func TestPagesRefuse(t *testing.T) {
	s, srv := startHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	gets := []string{"/projects", "/projects/app", "/projects/app/versions", "/projects/app/versions/1.0.0",
		"/projects/app/versions/1.0.0/download?file=f", "/dataplanes", "/dataplanes/aws", "/dataplanes/dp",
		"/dataplanes/dp/bootstrap.yaml", "/jobs/1", "/tokens", "/audit", "/access", "/settings"}
	posts := []string{"/projects", "/projects/app/members", "/dataplanes", "/dataplanes/aws", "/dataplanes/dp/jobs",
		"/jobs/1/approve", "/tokens", "/tokens/1/revoke", "/access/requests", "/access/requests/1/approve", "/settings"}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range gets {
		resp, err := noRedirect.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin?next=") {
			t.Errorf("GET %s signed out: %d to %q, want sign-in", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, p := range posts {
		resp, err := noRedirect.PostForm(srv.URL+p, url.Values{"name": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s signed out: %d, want 401", p, resp.StatusCode)
		}
	}
	b := newBrowser(t, srv.URL)
	b.post("/setup", url.Values{"code": {setupCode}, "email": {"ana@example.com"}})
	before, err := s.DB.AuditLog(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range posts {
		for _, csrf := range []string{"", "wrong-token"} {
			code, body := b.post(p, url.Values{"name": {"x"}, "email": {"ana@example.com"}, "role": {"admin"}, "kind": {"check"}, "csrf_token": {csrf}})
			if code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
				t.Errorf("POST %s with CSRF token %q: %d, want 403 naming the token\n%s", p, csrf, code, body)
			}
		}
	}
	after, err := s.DB.AuditLog(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("refused posts reached the handlers: %d audit entries were added", len(after)-len(before))
	}
	if code, body, _ := b.get("/tokens"); code != 200 || strings.Contains(body, ">x<") {
		t.Errorf("a token was created without a CSRF token: %d", code)
	}
}
