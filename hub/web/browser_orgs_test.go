package web_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
)

// twoOrgs gives ana@example.com, the first user (signed in by the caller),
// a second organisation, beta, and a project in each: alpha in default,
// beta-only in beta.
func twoOrgs(t *testing.T, s *hub.Server) {
	t.Helper()
	ctx := context.Background()
	ana, err := s.DB.UserByEmail(ctx, "ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.DB.UserOrganisation(ctx, ana.ID)
	if err != nil {
		t.Fatal(err)
	}
	beta, err := s.DB.CreateOrganisation(ctx, "beta", ana.ID)
	if err != nil {
		t.Fatal(err)
	}
	for org, project := range map[*db.Organisation]string{first: "alpha", beta: "beta-only"} {
		dp := &db.DataPlane{OrgID: org.ID, Name: "dp", Kind: "s3compat", Settings: `{"bucket":"b","prefix":"rel"}`}
		if err := s.DB.CreateDataPlane(ctx, dp); err != nil {
			t.Fatal(err)
		}
		if err := s.DB.CreateProject(ctx, &db.Project{OrgID: org.ID, Name: project, DataPlaneID: dp.ID, Prefix: "rel/" + project}, ana.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOrganisationSwitcherWithoutBrowser: the switcher is a plain form: a
// labelled select and a button, posted with the CSRF token; a user of one
// organisation has none; a forged or token-less post changes nothing.
func TestOrganisationSwitcherWithoutBrowser(t *testing.T) {
	s, srv := startHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	b := newBrowser(t, srv.URL)
	if code, body := b.post("/setup", url.Values{"code": {setupCode}, "email": {"ana@example.com"}}); code != 200 {
		t.Fatalf("setup: %d %s", code, body)
	}
	_, page, _ := b.get("/projects")
	if strings.Contains(page, `action="/organisation"`) {
		t.Errorf("a user of one organisation gets a switcher:\n%s", page)
	}
	twoOrgs(t, s)
	code, page, h := b.get("/projects")
	checkPage(t, "/projects", page, h)
	if code != 200 || !strings.Contains(page, `<label for="org-switch">Organisation</label>`) || !strings.Contains(page, `<option value="default" selected>`) ||
		!strings.Contains(page, ">alpha<") || strings.Contains(page, "beta-only") {
		t.Fatalf("projects of default with a switcher: %d\n%s", code, page)
	}
	csrf := csrfOf(t, page)
	for _, tc := range []struct {
		name string
		form url.Values
		want int
	}{
		{"no CSRF token", url.Values{"org": {"beta"}}, http.StatusForbidden},
		{"not a member", url.Values{"org": {"gamma"}, "csrf_token": {csrf}}, http.StatusNotFound},
	} {
		if code, body := b.post("/organisation", tc.form); code != tc.want {
			t.Errorf("%s: %d, want %d\n%s", tc.name, code, tc.want, body)
		}
	}
	if _, page, _ := b.get("/projects"); !strings.Contains(page, ">alpha<") {
		t.Errorf("a refused switch changed the organisation:\n%s", page)
	}
	code, page = b.post("/organisation", url.Values{"org": {"beta"}, "csrf_token": {csrf}})
	if code != 200 || !strings.Contains(page, "beta-only") || strings.Contains(page, ">alpha<") ||
		!strings.Contains(page, `<strong class="org">beta</strong>`) || !strings.Contains(page, `<option value="beta" selected>`) {
		t.Errorf("after switching to beta: %d\n%s", code, page)
	}
}

// showsOrg waits for the projects page of org, which lists project and
// not other, and checks the header names org.
func (b *tab) showsOrg(org, project, other string) {
	b.t.Helper()
	b.waitText(project)
	if got := b.text(".who .org"); got != org {
		b.t.Errorf("the header shows organisation %q, want %s", got, org)
	}
	if body := b.text("main"); strings.Contains(body, other) {
		b.t.Errorf("the projects of %s list %s of another organisation: %s", org, other, body)
	}
}

// TestBrowserOrganisations: in Chromium, a user of two organisations
// switches with the navigation bar's form and sees the other's projects,
// and the choice stays for the session; axe-core at 1280 and 390 px, with
// screenshots.
func TestBrowserOrganisations(t *testing.T) {
	axe := axeScript(t)
	browser := startChromium(t)
	s, srv := startHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	shots := t.ArtifactDir()
	if root := os.Getenv("BERTH_SCREENSHOT_DIR"); root != "" {
		shots = filepath.Join(root, "orgs")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &tab{t: t, ctx: ctx, base: srv.URL, axe: axe, shots: shots}

	b.open("/setup?code=" + setupCode)
	b.fill(map[string]string{"#email": "ana@example.com"})
	b.click("form button[type=submit]")
	b.waitText("No projects yet")
	twoOrgs(t, s)

	b.open("/projects")
	b.showsOrg("default", "alpha", "beta-only")
	b.check("orgs-default")

	b.do("choose beta", chromedp.SetValue(chromedp.CSS("#org-switch"), "beta"))
	b.click(".org-switch button[type=submit]")
	b.showsOrg("beta", "beta-only", "alpha")
	if got := eval[string](b, "document.querySelector('#org-switch').value"); got != "beta" {
		t.Errorf("the switcher shows %q, want beta", got)
	}
	b.check("orgs-beta")

	// The session keeps the choice.
	b.open("/projects/beta-only")
	b.waitText("beta-only")
	b.open("/projects")
	b.waitText("beta-only")
}
