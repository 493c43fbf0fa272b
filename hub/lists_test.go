package hub_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
)

// TestListRoutes: what the web UI lists, on both engines: an admin sees
// every project, a member only its own with its role; a project's members;
// tokens with their use and revocation but never a token or its hash; a
// field error names its field.
func TestListRoutes(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, _ func() string) {
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		var setup struct {
			User  struct{ ID int64 }     `json:"user"`
			Token struct{ Token string } `json:"token"`
		}
		if code := (&client{t: t, url: srv.URL}).do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"ana@example.com"}`, &setup); code != 201 {
			t.Fatalf("setup: %d", code)
		}
		admin := &client{t: t, url: srv.URL, token: setup.Token.Token}
		ctx := context.Background()
		org, err := s.DB.UserOrganisation(ctx, setup.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		// A data plane stored directly: creating one through the API checks
		// its identities against real storage (vend_minio_test.go does).
		if err := s.DB.CreateDataPlane(ctx, &db.DataPlane{OrgID: org.ID, Name: "dp", Kind: "s3compat", Settings: `{"bucket":"b","prefix":"rel"}`}); err != nil {
			t.Fatal(err)
		}
		var bob struct {
			Token struct{ Token string } `json:"token"`
		}
		if code := admin.do("POST", "/api/v1/users", `{"email":"bob@example.com","name":"Bob"}`, &bob); code != 201 {
			t.Fatalf("create bob: %d", code)
		}
		bobc := &client{t: t, url: srv.URL, token: bob.Token.Token}
		var msg string
		if code := admin.do("POST", "/api/v1/projects", `{"name":"Bad Name","dataplane":"dp"}`, &msg); code != http.StatusBadRequest {
			t.Errorf("bad project name: %d %s", code, msg)
		}
		for _, p := range []string{"alpha", "beta"} {
			if code := admin.do("POST", "/api/v1/projects", `{"name":"`+p+`","dataplane":"dp"}`, &msg); code != 201 {
				t.Fatalf("create %s: %d %s", p, code, msg)
			}
		}
		if code := admin.do("PUT", "/api/v1/projects/beta/members/bob@example.com", `{"role":"reader"}`, &msg); code != 200 {
			t.Fatalf("member: %d %s", code, msg)
		}

		type listing struct {
			Projects []struct{ Name, Dataplane, Prefix, Role string } `json:"projects"`
		}
		var all, mine listing
		admin.do("GET", "/api/v1/projects", "", &all)
		bobc.do("GET", "/api/v1/projects", "", &mine)
		if len(all.Projects) != 2 || all.Projects[0].Name != "alpha" || all.Projects[0].Role != "admin" || all.Projects[1].Prefix != "rel/beta" {
			t.Errorf("admin's projects: %+v", all)
		}
		if len(mine.Projects) != 1 || mine.Projects[0].Name != "beta" || mine.Projects[0].Role != "reader" || mine.Projects[0].Dataplane != "dp" {
			t.Errorf("bob's projects: %+v", mine)
		}
		var info struct {
			Name, Dataplane, Role string
			Members               []struct{ Email, Name, Role string } `json:"members"`
		}
		if code := bobc.do("GET", "/api/v1/projects/beta", "", &info); code != 200 || info.Role != "reader" || len(info.Members) != 2 ||
			info.Members[0].Email != "ana@example.com" || info.Members[1].Role != "reader" || info.Members[1].Name != "Bob" {
			t.Errorf("project info: %d %+v", code, info)
		}
		if code := bobc.do("GET", "/api/v1/projects/alpha", "", &msg); code != http.StatusNotFound {
			t.Errorf("a project bob is not in: %d %s", code, msg)
		}
		var org2 struct{ Name, Role string }
		if code := bobc.do("GET", "/api/v1/organisation", "", &org2); code != 200 || org2.Name != "default" || org2.Role != "member" {
			t.Errorf("organisation: %d %+v", code, org2)
		}

		// Tokens: listed with use and revocation, never the token.
		var created struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		}
		if code := bobc.do("POST", "/api/v1/tokens", `{"name":"ci"}`, &created); code != 201 {
			t.Fatalf("create token: %d", code)
		}
		if code := bobc.do("DELETE", "/api/v1/tokens/"+itoa(created.ID), "", nil); code != 204 {
			t.Fatalf("revoke: %d", code)
		}
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/tokens", nil)
		req.Header.Set("Authorization", "Bearer "+bob.Token.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(data)
		if strings.Contains(body, created.Token) || strings.Contains(body, bob.Token.Token) || strings.Contains(body, "hash") {
			t.Errorf("the token list holds a token or its hash: %s", body)
		}
		if !strings.Contains(body, `"name": "ci"`) || !strings.Contains(body, `"revoked": "`) || !strings.Contains(body, `"last_used": "`) {
			t.Errorf("the token list lacks the revoked ci token or the last use of bob's: %s", body)
		}

		// Field errors name their field.
		for _, tc := range []struct{ method, path, body, field string }{
			{"POST", "/api/v1/tokens", `{"name":""}`, "name"},
			{"PUT", "/api/v1/projects/beta/members/nobody@example.com", `{"role":"reader"}`, "email"},
			{"PUT", "/api/v1/projects/beta/members/bob@example.com", `{"role":"owner"}`, "role"},
			{"POST", "/api/v1/projects", `{"name":"gamma","dataplane":"nope"}`, "dataplane"},
			{"GET", "/api/v1/projects/beta/versions?limit=0", ``, "limit"},
			{"GET", "/api/v1/projects/beta/versions?order=sideways", ``, "order"},
		} {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+setup.Token.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 || !strings.Contains(string(data), `"field": "`+tc.field+`"`) {
				t.Errorf("%s %s: %d %s, want field %s", tc.method, tc.path, resp.StatusCode, data, tc.field)
			}
		}
	})
}
