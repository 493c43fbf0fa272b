package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
)

// concrete fills a route's path parameters.
func concrete(path string) string {
	return regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllStringFunc(path, func(p string) string {
		return map[string]string{"{project}": "app", "{version}": "1.0.0", "{email}": "bob@example.com", "{id}": "1", "{dataplane}": "minio"}[p] + map[bool]string{true: "x"}[p == "{x}"]
	})
}

// A body that would be valid for most routes, so that a refusal is about
// credentials, not input.
const anyBody = `{"name":"x","role":"reader","email":"x@example.com","dataplane":"minio","host":"h"}`

// Every route that is not public refuses a request without credentials,
// with a revoked token, with an expired or signed-out session; and a
// cookie-authenticated unsafe request without the CSRF token.
func TestSecurityEveryRoute(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, _ func() string) {
		now := time.Now()
		s.Now = func() time.Time { return now }
		s.FailedAuthLimit = 10_000 // this test fails on purpose, many times
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		ana := setUp(t, s, srv.URL)
		var tok struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		}
		tokenClient := &client{t: t, url: srv.URL}
		code, body, _ := ana.do("POST", "/api/v1/tokens", `{"name":"soon revoked"}`, "X-CSRF-Token", ana.csrf(s))
		if code != 201 || jsonInto(body, &tok) != nil {
			t.Fatalf("create token: %d %s", code, body)
		}
		if code, _, _ := ana.do("DELETE", "/api/v1/tokens/"+itoa(tok.ID), "", "X-CSRF-Token", ana.csrf(s)); code != 204 {
			t.Fatalf("revoke: %d", code)
		}
		tokenClient.token = tok.Token

		out := setUpSecond(t, s, srv.URL)
		signedOut := out.cookie
		if code, _, _ := out.form("/auth/logout", map[string][]string{"csrf_token": {out.csrf(s)}}); code != http.StatusSeeOther {
			t.Fatalf("sign out: %d", code)
		}

		checked := map[string]int{}
		for _, rt := range hub.AllRoutes() {
			if rt.Public {
				continue
			}
			path := concrete(rt.Path)
			name := rt.Method + " " + rt.Path
			for _, tc := range []struct {
				how     string
				cookie  *http.Cookie
				headers []string
			}{
				{"without credentials", nil, []string{"Content-Type", "application/json"}},
				{"with a revoked token", nil, []string{"Authorization", "Bearer " + tok.Token}},
				{"with a malformed token", nil, []string{"Authorization", "Bearer berth_x"}},
				{"with basic auth", nil, []string{"Authorization", "Basic YW5hOnB3"}},
				{"with a forged session", &http.Cookie{Name: hub.SessionCookie, Value: "forged-session-value"}, nil},
				{"with a signed-out session", signedOut, nil},
			} {
				b := newBrowser(t, srv.URL)
				b.cookie = tc.cookie
				code, body, resp := b.do(rt.Method, path, anyBody, tc.headers...)
				// 401 for the API and page POSTs; page GETs go to sign-in.
				switch {
				case rt.Page && rt.Method == "GET":
					if code != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin?next=") {
						t.Errorf("%s %s: %d to %q, want a redirect to sign-in", name, tc.how, code, resp.Header.Get("Location"))
					}
				case code != http.StatusUnauthorized:
					t.Errorf("%s %s: %d %s, want 401", name, tc.how, code, body)
				}
				checked[tc.how]++
			}

			if rt.Method == "GET" || rt.Method == "HEAD" {
				continue
			}
			for _, tc := range []struct {
				how, body string
				headers   []string
			}{
				{"no CSRF token", anyBody, []string{"Content-Type", "application/json"}},
				{"a wrong CSRF header", anyBody, []string{"Content-Type", "application/json", "X-CSRF-Token", "x" + ana.csrf(s)}},
				{"a wrong csrf_token field", "csrf_token=nope&decision=approve", []string{"Content-Type", "application/x-www-form-urlencoded"}},
				{"the token in the query", "", []string{"Content-Type", "application/x-www-form-urlencoded"}},
			} {
				p := path
				if tc.how == "the token in the query" {
					p += "?csrf_token=" + ana.csrf(s) // a link is no proof
				}
				code, msg, _ := ana.do(rt.Method, p, tc.body, tc.headers...)
				if code != http.StatusForbidden || !strings.Contains(msg, "CSRF") {
					t.Errorf("%s by cookie with %s: %d %s, want 403", name, tc.how, code, msg)
				}
				checked["CSRF"]++
			}
		}
		if checked["without credentials"] < 12 || checked["CSRF"] < 32 {
			t.Errorf("checked %v; are routes missing?", checked)
		}
	})
}

func jsonInto(s string, v any) error { return jsonUnmarshal([]byte(s), v) }

// A user of a second organisation cannot see or act on the first's
// projects, data planes and audit log: 403 or 404, never the object.
func TestSecurityOtherOrganisation(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, _ func() string) {
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		ctx := context.Background()
		ana := setUp(t, s, srv.URL)
		anaUser, _ := s.DB.UserByEmail(ctx, "ana@example.com")
		orgA, _ := s.DB.UserOrganisation(ctx, anaUser.ID)
		dp := &db.DataPlane{OrgID: orgA.ID, Name: "minio", Kind: "s3compat", Settings: `{"endpoints":[],"bucket":"secret-bucket-a","prefix":"tenant-a"}`, Secrets: "{}"}
		if err := s.DB.CreateDataPlane(ctx, dp); err != nil {
			t.Fatal(err)
		}
		if err := s.DB.CreateProject(ctx, &db.Project{OrgID: orgA.ID, Name: "app", DataPlaneID: dp.ID, Prefix: "tenant-a/app"}, anaUser.ID); err != nil {
			t.Fatal(err)
		}
		// Something in org A's audit log.
		if code, body, _ := ana.do("POST", "/api/v1/users", `{"email":"bob@example.com"}`, "X-CSRF-Token", ana.csrf(s)); code != 201 {
			t.Fatalf("add bob: %d %s", code, body)
		}

		// Eve administers organisation B.
		eveUser, err := s.DB.CreateUser(ctx, "eve@example.com", "Eve")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB.CreateOrganisation(ctx, "other", eveUser.ID); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		sess, err := s.StartSession(rec, httptest.NewRequest("POST", "/", nil), eveUser.ID)
		if err != nil {
			t.Fatal(err)
		}
		eve := newBrowser(t, srv.URL)
		eve.cookie = rec.Result().Cookies()[0]
		csrf := []string{"X-CSRF-Token", sess.CSRFToken, "Content-Type", "application/json"}

		for _, tc := range []struct{ method, path, body string }{
			{"GET", "/api/v1/projects/app/versions", ""},
			{"GET", "/api/v1/projects/app/versions/latest", ""},
			{"PUT", "/api/v1/projects/app/members/eve@example.com", `{"role":"admin"}`},
			{"POST", "/api/v1/projects/app/credentials", `{"role":"read"}`},
			{"POST", "/api/v1/projects/app/credentials", `{"role":"write"}`},
			{"POST", "/api/v1/projects", `{"name":"mine","dataplane":"minio"}`},
		} {
			code, body, _ := eve.do(tc.method, tc.path, tc.body, csrf...)
			if code != http.StatusNotFound && code != http.StatusForbidden {
				t.Errorf("%s %s as another organisation: %d %s", tc.method, tc.path, code, body)
			}
			for _, secret := range []string{"secret-bucket-a", "tenant-a"} {
				if strings.Contains(body, secret) {
					t.Errorf("%s %s shows %q: %s", tc.method, tc.path, secret, body)
				}
			}
		}
		if role, err := s.DB.ProjectRole(ctx, 1, eveUser.ID); err == nil {
			t.Errorf("eve got role %s in org A's project", role)
		}
		code, body, _ := eve.do("GET", "/api/v1/audit", "")
		if code == 200 && (strings.Contains(body, "ana@example.com") || strings.Contains(body, "bob@example.com")) {
			t.Errorf("org B's admin reads org A's audit log: %s", body)
		}
		// Org A's admin still sees its own entries.
		if code, body, _ := ana.do("GET", "/api/v1/audit", ""); code != 200 || !strings.Contains(body, "user/bob@example.com") {
			t.Errorf("org A's audit log: %d %s", code, body)
		}
		// Moving an entry to another organisation breaks the chain.
		if _, err := s.DB.VerifyAudit(ctx); err != nil {
			t.Fatalf("verify: %v", err)
		}
		if _, err := s.DB.SQL.ExecContext(ctx, s.DB.Rebind(`UPDATE audit_log SET org_id = ? WHERE actor = 'ana@example.com'`), orgA.ID+1); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB.VerifyAudit(ctx); !errors.Is(err, db.ErrAuditTampered) {
			t.Errorf("verify after moving entries to another organisation: %v", err)
		}
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
