package hub_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/internal/testenv"
)

// engines runs f against a hub on SQLite and on PostgreSQL. dump returns
// everything the database holds on disk, to search for secrets.
func engines(t *testing.T, f func(t *testing.T, s *hub.Server, dump func() string)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hub.db")
		s := newServer(t, "sqlite:"+path)
		f(t, s, func() string {
			var all strings.Builder
			for _, p := range []string{path, path + "-wal"} {
				b, _ := os.ReadFile(p)
				all.Write(b)
			}
			return all.String()
		})
	})
	t.Run("postgres", func(t *testing.T) {
		pg := testenv.StartPostgres(t)
		s := newServer(t, pg.URL)
		f(t, s, func() string {
			var all strings.Builder
			filepath.Walk(pg.Dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					b, _ := os.ReadFile(p)
					all.Write(b)
				}
				return nil
			})
			return all.String()
		})
	})
}

func newServer(t testing.TB, url string) *hub.Server {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Everything the server logs, debug included, is scanned for tokens
	// and the setup code when the test ends.
	logs := testenv.NewLogScanner(t)
	logs.Secret("0123456789abcdef0123456789abcdef")
	return &hub.Server{DB: d, SetupCode: "0123456789abcdef0123456789abcdef", Log: logs.Logger()}
}

type client struct {
	t     *testing.T
	url   string
	token string
}

// do sends a request and decodes the JSON answer into out (when not nil).
func (c *client) do(method, path, body string, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(data, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			c.t.Errorf("%s %s: %d with a body that is not the error shape: %s", method, path, resp.StatusCode, data)
		}
		if out, ok := out.(*string); ok {
			*out = e.Error.Code + ": " + e.Error.Message
		}
		return resp.StatusCode
	}
	if _, isMsg := out.(*string); out != nil && !isMsg && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

func TestEveryRouteNeedsAToken(t *testing.T) {
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	s.FailedAuthLimit = 1000 // this test fails on purpose, many times
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	doc := hub.OpenAPI()
	paths := doc["paths"].(map[string]any)
	checked := 0
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			public := op.(map[string]any)["security"] != nil
			url := strings.ReplaceAll(path, "{id}", "1")
			for _, token := range []string{"", "berth_0000000000000000_nope", "not-a-token"} {
				c := &client{t: t, url: srv.URL, token: token}
				var msg string
				code := c.do(strings.ToUpper(method), url, "{}", &msg)
				if public {
					if code == http.StatusUnauthorized {
						t.Errorf("public %s %s answered 401", method, path)
					}
					continue
				}
				checked++
				if code != http.StatusUnauthorized || !strings.HasPrefix(msg, "unauthenticated") {
					t.Errorf("%s %s with token %q: %d %s, want 401 unauthenticated", method, path, token, code, msg)
				}
			}
		}
	}
	if checked < 9 {
		t.Errorf("checked %d protected requests; are routes missing from the OpenAPI document?", checked)
	}
	c := &client{t: t, url: srv.URL}
	var msg string
	if code := c.do("GET", "/api/v1/nothing-here", "", &msg); code != http.StatusNotFound || !strings.HasPrefix(msg, "not_found") {
		t.Errorf("unknown route: %d %s", code, msg)
	}
	var ready map[string]any
	if code := c.do("GET", "/readyz", "", &ready); code != 200 || ready["database"] != "sqlite" {
		t.Errorf("readyz: %d %v", code, ready)
	}
}

func TestSetupAndTokens(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, dump func() string) {
		now := time.Now()
		s.Now = func() time.Time { return now }
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		anon := &client{t: t, url: srv.URL}

		var msg string
		if code := anon.do("POST", "/api/v1/setup", `{"code":"wrong","email":"ana@example.com"}`, &msg); code != http.StatusForbidden {
			t.Fatalf("setup with a wrong code: %d %s", code, msg)
		}
		if code := anon.do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"not-an-address"}`, &msg); code != http.StatusBadRequest || !strings.Contains(msg, "email") {
			t.Fatalf("setup with a bad e-mail: %d %s", code, msg)
		}
		var created struct {
			Token struct {
				ID    int64  `json:"id"`
				Token string `json:"token"`
			} `json:"token"`
		}
		if code := anon.do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"ana@example.com","name":"Ana"}`, &created); code != http.StatusCreated {
			t.Fatalf("setup: %d", code)
		}
		first := created.Token.Token
		if !strings.HasPrefix(first, hub.TokenPrefix) || len(first) < 40 {
			t.Fatalf("token %q", first)
		}
		if code := anon.do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"eve@example.com"}`, &msg); code != http.StatusConflict {
			t.Errorf("a second setup: %d %s, want 409", code, msg)
		}

		ana := &client{t: t, url: srv.URL, token: first}
		var me map[string]any
		if code := ana.do("GET", "/api/v1/me", "", &me); code != 200 || me["email"] != "ana@example.com" {
			t.Fatalf("me: %d %v", code, me)
		}
		var ci struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		}
		if code := ana.do("POST", "/api/v1/tokens", `{"name":"ci"}`, &ci); code != http.StatusCreated || ci.Token == "" {
			t.Fatalf("create token: %d", code)
		}
		if code := ana.do("POST", "/api/v1/tokens", `{"name":"ci","admin":true}`, &msg); code != http.StatusBadRequest {
			t.Errorf("unknown field accepted: %d", code)
		}
		ciClient := &client{t: t, url: srv.URL, token: ci.Token}
		if code := ciClient.do("GET", "/api/v1/me", "", nil); code != 200 {
			t.Fatalf("the new token: %d", code)
		}
		// A token with its secret part changed is refused.
		forged := ci.Token[:len(ci.Token)-4] + "AAAA"
		if code := (&client{t: t, url: srv.URL, token: forged}).do("GET", "/api/v1/me", "", &msg); code != http.StatusUnauthorized {
			t.Errorf("forged token: %d", code)
		}
		// Revoked: refused at once.
		if code := ana.do("DELETE", "/api/v1/tokens/"+itoa(ci.ID), "", nil); code != http.StatusNoContent {
			t.Fatalf("revoke: %d", code)
		}
		if code := ciClient.do("GET", "/api/v1/me", "", &msg); code != http.StatusUnauthorized {
			t.Errorf("revoked token: %d %s", code, msg)
		}
		// Expired.
		now = now.Add(91 * 24 * time.Hour)
		if code := ana.do("GET", "/api/v1/me", "", &msg); code != http.StatusUnauthorized {
			t.Errorf("expired token: %d %s", code, msg)
		}
		// Only hashes are stored.
		if d := dump(); strings.Contains(d, first) || strings.Contains(d, ci.Token) || strings.Contains(d, first[len(first)-20:]) {
			t.Error("a token is stored in clear")
		}
	})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// Two replicas behind a load balancer share one PostgreSQL: a token made
// through one works on the other, and a revocation on one is seen by the
// other at once.
func TestReplicasShareTokens(t *testing.T) {
	pg := testenv.StartPostgres(t)
	a, b := newServer(t, pg.URL), newServer(t, pg.URL)
	srvA, srvB := httptest.NewServer(a.Handler()), httptest.NewServer(b.Handler())
	defer srvA.Close()
	defer srvB.Close()
	var created struct {
		Token struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		} `json:"token"`
	}
	if code := (&client{t: t, url: srvA.URL}).do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"ana@example.com"}`, &created); code != 201 {
		t.Fatalf("setup on A: %d", code)
	}
	onB := &client{t: t, url: srvB.URL, token: created.Token.Token}
	if code := onB.do("GET", "/api/v1/me", "", nil); code != 200 {
		t.Fatalf("A's token on B: %d", code)
	}
	var msg string
	if code := (&client{t: t, url: srvB.URL}).do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"eve@example.com"}`, &msg); code != http.StatusConflict {
		t.Errorf("a second setup on B: %d %s", code, msg)
	}
	if code := (&client{t: t, url: srvA.URL, token: created.Token.Token}).do("DELETE", "/api/v1/tokens/"+itoa(created.Token.ID), "", nil); code != http.StatusNoContent {
		t.Fatalf("revoke on A: %d", code)
	}
	if code := onB.do("GET", "/api/v1/me", "", nil); code != http.StatusUnauthorized {
		t.Errorf("revoked on A, used on B: %d", code)
	}
}

// Setup requests racing on two replicas create exactly one first user.
func TestSetupRace(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, _ func() string) {
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		codes := make(chan int, 8)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				c := &client{t: t, url: srv.URL}
				var msg string
				codes <- c.do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"user`+itoa(int64(i))+`@example.com"}`, &msg)
			})
		}
		wg.Wait()
		close(codes)
		created := 0
		for c := range codes {
			if c == http.StatusCreated {
				created++
			} else if c != http.StatusConflict {
				t.Errorf("setup answered %d", c)
			}
		}
		if n, _ := s.DB.CountUsers(context.Background()); created != 1 || n != 1 {
			t.Errorf("%d setups succeeded, %d users; want 1", created, n)
		}
	})
}

func TestMetrics(t *testing.T) {
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c := &client{t: t, url: srv.URL}
	c.do("GET", "/healthz", "", nil)
	c.do("GET", "/api/v1/me", "", new(string))
	c.do("GET", "/api/v1/me", "", new(string))
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`berth_hub_requests_total{route="GET /healthz",code="200"} 1`,
		`berth_hub_requests_total{route="GET /api/v1/me",code="401"} 2`,
		"# TYPE berth_hub_request_seconds_total counter",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func TestAuditAPI(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, _ func() string) {
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		var setup struct {
			Token struct{ Token string } `json:"token"`
		}
		if code := (&client{t: t, url: srv.URL}).do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"ana@example.com"}`, &setup); code != 201 {
			t.Fatalf("setup: %d", code)
		}
		admin := &client{t: t, url: srv.URL, token: setup.Token.Token}
		var bob struct {
			Token struct{ Token string } `json:"token"`
		}
		admin.do("POST", "/api/v1/users", `{"email":"bob@example.com"}`, &bob)
		admin.do("POST", "/api/v1/users", `{"email":"cy@example.com"}`, nil)
		admin.do("POST", "/api/v1/projects", `{"name":"app","dataplane":"none"}`, new(string))

		var out struct {
			Entries []struct {
				ID      int64  `json:"id"`
				Actor   string `json:"actor"`
				Action  string `json:"action"`
				Object  string `json:"object"`
				Outcome string `json:"outcome"`
			} `json:"entries"`
		}
		if code := admin.do("GET", "/api/v1/audit?action=user.create", "", &out); code != 200 || len(out.Entries) != 2 || out.Entries[0].Object != "user/bob@example.com" {
			t.Fatalf("action filter: %d %+v", code, out)
		}
		out.Entries = nil
		if code := admin.do("GET", "/api/v1/audit?outcome=error", "", &out); code != 200 || len(out.Entries) != 1 || out.Entries[0].Action != "project.create" {
			t.Errorf("outcome filter: %d %+v", code, out)
		}
		out.Entries = nil
		if code := admin.do("GET", "/api/v1/audit?object=user/c&actor=ana@example.com", "", &out); code != 200 || len(out.Entries) != 1 {
			t.Errorf("object prefix filter: %d %+v", code, out)
		}
		var msg string
		if code := admin.do("GET", "/api/v1/audit?since=yesterday", "", &msg); code != 400 {
			t.Errorf("bad since: %d %s", code, msg)
		}
		if code := (&client{t: t, url: srv.URL, token: bob.Token.Token}).do("GET", "/api/v1/audit", "", &msg); code != 403 {
			t.Errorf("a member reads the audit log: %d %s", code, msg)
		}
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/audit?format=jsonl", nil)
		req.Header.Set("Authorization", "Bearer "+setup.Token.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], `{"id":1,`) {
			t.Errorf("jsonl export:\n%s", body)
		}
	})
}

// A failure without a kind (here a data plane row the hub cannot read) is
// a 500 naming the request id, not the cause, and is audited as an error.
func TestInternalErrorIsAudited(t *testing.T) {
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	var setup struct {
		Token struct{ Token string } `json:"token"`
	}
	if code := (&client{t: t, url: srv.URL}).do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"ana@example.com"}`, &setup); code != 201 {
		t.Fatalf("setup: %d", code)
	}
	ctx := context.Background()
	u, _ := s.DB.UserByEmail(ctx, "ana@example.com")
	org, _ := s.DB.UserOrganisation(ctx, u.ID)
	if err := s.DB.CreateDataPlane(ctx, &db.DataPlane{OrgID: org.ID, Name: "broken", Kind: "s3compat", Settings: "not json", Secrets: "{}"}); err != nil {
		t.Fatal(err)
	}
	var msg string
	code := (&client{t: t, url: srv.URL, token: setup.Token.Token}).do("POST", "/api/v1/projects", `{"name":"app","dataplane":"broken"}`, &msg)
	if code != http.StatusInternalServerError || !strings.Contains(msg, "internal error; the hub's log has request") || strings.Contains(msg, "json") {
		t.Errorf("internal error: %d %s", code, msg)
	}
	entries, err := s.DB.SearchAudit(ctx, db.AuditFilter{Action: "project.create"})
	if err != nil || len(entries) != 1 || entries[0].Outcome != "error" {
		t.Errorf("audit: %+v, %v", entries, err)
	}
}
