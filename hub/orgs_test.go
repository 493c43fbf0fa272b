package hub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
)

// as sends a request with a bearer token, in the organisation org ("": no
// header), and decodes a 2xx JSON answer into out.
func as(t *testing.T, url, token, org, method, path, body string, out any) (int, string) {
	t.Helper()
	var h []string
	if token != "" {
		h = append(h, "Authorization", "Bearer "+token)
	}
	if org != "" {
		h = append(h, hub.OrgHeader, org)
	}
	code, data, _ := newBrowser(t, url).do(method, path, body, h...)
	if out != nil && code < 300 {
		if err := json.Unmarshal([]byte(data), out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return code, data
}

type projectNames struct {
	Projects []struct{ Name, Prefix, Role string } `json:"projects"`
}

func (p projectNames) String() string {
	var names []string
	for _, x := range p.Projects {
		names = append(names, x.Name+"@"+x.Prefix)
	}
	return strings.Join(names, ",")
}

// TestOrganisations: a user in two organisations works in the one each
// request selects (header, else the session's choice, else the first), on
// both engines. Same-named projects stay apart; a project is invisible
// under the wrong selection; an admin elsewhere is a plain member here; a
// header naming an organisation the user is not in is 404 whether or not
// it exists.
func TestOrganisations(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, _ func() string) {
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		ctx := context.Background()
		anaB := setUp(t, s, srv.URL)
		var tok struct{ Token string }
		if code, body, _ := anaB.do("POST", "/api/v1/tokens", `{"name":"t"}`, "X-CSRF-Token", anaB.csrf(s)); code != 201 || json.Unmarshal([]byte(body), &tok) != nil {
			t.Fatalf("ana's token: %d %s", code, body)
		}
		ana := tok.Token
		call := func(token, org, method, path, body string, out any) (int, string) {
			t.Helper()
			return as(t, srv.URL, token, org, method, path, body, out)
		}

		// Ana, admin of "default", creates "beta" and becomes its admin.
		var created struct{ Name, Role string }
		if code, body := call(ana, "", "POST", "/api/v1/organisations", `{"name":"beta"}`, &created); code != 201 || created.Role != "admin" {
			t.Fatalf("create beta: %d %s", code, body)
		}
		if code, body := call(ana, "", "POST", "/api/v1/organisations", `{"name":"beta"}`, nil); code != http.StatusConflict || !strings.Contains(body, `"field": "name"`) {
			t.Errorf("beta again: %d %s", code, body)
		}
		if code, body := call(ana, "", "POST", "/api/v1/organisations", `{"name":"Has Space"}`, nil); code != http.StatusBadRequest || !strings.Contains(body, "organisation name") {
			t.Errorf("a bad name: %d %s", code, body)
		}
		for org, prefix := range map[string]string{"default": "rel-a", "beta": "rel-b"} {
			anaUser, _ := s.DB.UserByEmail(ctx, "ana@example.com")
			o, err := s.DB.MemberOrganisation(ctx, anaUser.ID, org)
			if err != nil {
				t.Fatal(err)
			}
			// Stored directly: the API checks identities against storage
			// (TestOrganisationCredentialsOnMinIO does that).
			if err := s.DB.CreateDataPlane(ctx, &db.DataPlane{OrgID: o.ID, Name: "dp", Kind: "s3compat", Settings: `{"bucket":"b","prefix":"` + prefix + `"}`}); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []struct{ org, name string }{{"", "app"}, {"beta", "app"}, {"beta", "only-b"}} {
			if code, body := call(ana, p.org, "POST", "/api/v1/projects", `{"name":"`+p.name+`","dataplane":"dp"}`, nil); code != 201 {
				t.Fatalf("create %s in %q: %d %s", p.name, p.org, code, body)
			}
		}
		for _, tc := range []struct{ org, want string }{
			{"", "app@rel-a/app"},
			{"default", "app@rel-a/app"},
			{"beta", "app@rel-b/app,only-b@rel-b/only-b"},
		} {
			var got projectNames
			if code, body := call(ana, tc.org, "GET", "/api/v1/projects", "", &got); code != 200 || got.String() != tc.want {
				t.Errorf("projects in %q: %d %s, want %s", tc.org, code, body, tc.want)
			}
		}
		if code, body := call(ana, "", "GET", "/api/v1/projects/only-b", "", nil); code != http.StatusNotFound || strings.Contains(body, "rel-b") {
			t.Errorf("beta's project without selecting beta: %d %s", code, body)
		}
		var info struct{ Prefix string }
		if code, body := call(ana, "beta", "GET", "/api/v1/projects/app", "", &info); code != 200 || info.Prefix != "rel-b/app" {
			t.Errorf("app in beta: %d %s", code, body)
		}

		// Bob: a new user of default (a token), then an existing one in
		// beta (the membership, no token).
		var bobNew struct {
			Token struct{ Token string } `json:"token"`
		}
		if code, body := call(ana, "", "POST", "/api/v1/users", `{"email":"bob@example.com"}`, &bobNew); code != 201 || bobNew.Token.Token == "" {
			t.Fatalf("add bob: %d %s", code, body)
		}
		bob := bobNew.Token.Token
		var bobAgain map[string]any
		if code, body := call(ana, "beta", "POST", "/api/v1/users", `{"email":"bob@example.com"}`, &bobAgain); code != 201 ||
			bobAgain["token"] != nil || bobAgain["existing"] != true || !strings.Contains(body, "no new token") {
			t.Errorf("add existing bob to beta: %d %s", code, body)
		}
		if code, body := call(ana, "beta", "POST", "/api/v1/users", `{"email":"bob@example.com"}`, nil); code != http.StatusConflict || !strings.Contains(body, "already a member") {
			t.Errorf("add bob to beta twice: %d %s", code, body)
		}
		if code, body := call(bob, "", "POST", "/api/v1/organisations", `{"name":"bobs"}`, nil); code != http.StatusForbidden {
			t.Errorf("a member who administers nothing creates an organisation: %d %s", code, body)
		}
		// Bob administers an organisation of his own, made directly.
		bobUser, _ := s.DB.UserByEmail(ctx, "bob@example.com")
		if _, err := s.DB.CreateOrganisation(ctx, "bobs", bobUser.ID); err != nil {
			t.Fatal(err)
		}
		var orgs struct {
			Organisations []struct {
				Name, Role string
				Selected   bool
			} `json:"organisations"`
			Selected string `json:"selected"`
		}
		if code, body := call(bob, "beta", "GET", "/api/v1/organisations", "", &orgs); code != 200 || len(orgs.Organisations) != 3 || orgs.Selected != "beta" ||
			!orgs.Organisations[1].Selected || orgs.Organisations[2].Name != "bobs" || orgs.Organisations[2].Role != "admin" || orgs.Organisations[0].Role != "member" {
			t.Errorf("bob's organisations: %d %s", code, body)
		}
		var sel struct{ Name, Role string }
		if code, body := call(bob, "", "GET", "/api/v1/organisation", "", &sel); code != 200 || sel.Name != "default" || sel.Role != "member" {
			t.Errorf("bob's organisation without a header: %d %s", code, body)
		}
		// Admin of bobs, member of beta: nothing an admin does, in beta.
		for _, tc := range []struct{ method, path, body string }{
			{"POST", "/api/v1/projects", `{"name":"mine","dataplane":"dp"}`},
			{"POST", "/api/v1/users", `{"email":"eve@example.com"}`},
			{"GET", "/api/v1/audit", ""},
			{"GET", "/api/v1/dataplanes/dp/jobs", ""},
			{"PUT", "/api/v1/org/settings", `{"enforce_own_dataplanes":true}`},
			{"PUT", "/api/v1/projects/app/members/bob@example.com", `{"role":"admin"}`},
		} {
			if code, body := call(bob, "beta", tc.method, tc.path, tc.body, nil); code != http.StatusForbidden && code != http.StatusNotFound {
				t.Errorf("%s %s in beta as an admin of bobs: %d %s", tc.method, tc.path, code, body)
			}
		}
		if _, err := s.DB.UserByEmail(ctx, "eve@example.com"); err == nil {
			t.Error("bob added eve through beta")
		}
		if code, body := call(bob, "bobs", "GET", "/api/v1/audit", "", nil); code != 200 {
			t.Errorf("bob's own audit log: %d %s", code, body)
		}
		var none projectNames
		if code, body := call(bob, "beta", "GET", "/api/v1/projects", "", &none); code != 200 || len(none.Projects) != 0 {
			t.Errorf("bob's projects in beta: %d %s", code, body)
		}

		// A header naming an organisation bob is not in: 404, the same for
		// one that exists (gamma) and one that does not.
		if code, body := call(ana, "", "POST", "/api/v1/organisations", `{"name":"gamma"}`, nil); code != 201 {
			t.Fatalf("create gamma: %d %s", code, body)
		}
		var msgs []string
		for _, org := range []string{"gamma", "nope"} {
			code, body := call(bob, org, "GET", "/api/v1/projects", "", nil)
			if code != http.StatusNotFound || !strings.Contains(body, "not a member") || strings.Contains(body, "projects") {
				t.Errorf("bob in %s: %d %s", org, code, body)
			}
			msgs = append(msgs, strings.ReplaceAll(body, org, "X"))
		}
		if msgs[0] != msgs[1] {
			t.Errorf("an existing and an unknown organisation answer differently:\n%s\n%s", msgs[0], msgs[1])
		}

		// The organisation's creation is in its own audit log.
		if code, body := call(ana, "beta", "GET", "/api/v1/audit?action=organisation.create", "", nil); code != 200 || !strings.Contains(body, "organisation/beta") {
			t.Errorf("beta's audit log: %d %s", code, body)
		}
		if code, body := call(ana, "", "GET", "/api/v1/audit?action=organisation.create&outcome=ok", "", nil); code != 200 || strings.Contains(body, "organisation/beta") {
			t.Errorf("default's audit log shows beta's creation: %d %s", code, body)
		}

		// A browser session keeps its choice; a token request ignores it.
		csrf := []string{"X-CSRF-Token", anaB.csrf(s), "Content-Type", "application/json"}
		if code, body, _ := anaB.do("PUT", "/api/v1/session/organisation", `{"name":"beta"}`, csrf...); code != 200 {
			t.Fatalf("select beta: %d %s", code, body)
		}
		if code, body, _ := anaB.do("GET", "/api/v1/projects", ""); code != 200 || !strings.Contains(body, "only-b") {
			t.Errorf("projects after selecting beta: %d %s", code, body)
		}
		if code, body, _ := anaB.do("GET", "/api/v1/projects", "", hub.OrgHeader, "default"); code != 200 || strings.Contains(body, "only-b") {
			t.Errorf("the header wins over the session's choice: %d %s", code, body)
		}
		var got projectNames
		if call(ana, "", "GET", "/api/v1/projects", "", &got); got.String() != "app@rel-a/app" {
			t.Errorf("a token request after the session chose beta: %s", got)
		}
		if code, body, _ := anaB.do("PUT", "/api/v1/session/organisation", `{"name":"nope"}`, csrf...); code != http.StatusNotFound || !strings.Contains(body, `"field": "name"`) {
			t.Errorf("select an organisation ana is not in: %d %s", code, body)
		}
		if code, body, _ := anaB.do("PUT", "/api/v1/session/organisation", `{"name":"default"}`); code != http.StatusForbidden {
			t.Errorf("select without the CSRF token: %d %s", code, body)
		}
		if code, body := call(ana, "", "PUT", "/api/v1/session/organisation", `{"name":"beta"}`, nil); code != http.StatusBadRequest || !strings.Contains(body, hub.OrgHeader) {
			t.Errorf("select with a token: %d %s", code, body)
		}
		if code, body, _ := anaB.do("GET", "/api/v1/organisation", ""); code != 200 || !strings.Contains(body, `"beta"`) {
			t.Errorf("the session's organisation: %d %s", code, body)
		}
	})
}
