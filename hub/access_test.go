package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/access/accesstest"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/hub/hubclient"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/org"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// accessEngine is an engine on the hub's database and the world.
func accessEngine(t *testing.T, d *db.DB, w *accesstest.World, now func() time.Time, id string) *access.Engine {
	t.Helper()
	c, err := org.Parse("accounts.yaml", []byte(accesstest.Catalog))
	if err != nil {
		t.Fatal(err)
	}
	center, dir, accounts := access.NewAWS(w.Config(), accesstest.InstanceARN, accesstest.StoreID)
	center.Sleep = func(context.Context, time.Duration) error { return nil }
	return &access.Engine{Catalog: c, Directory: dir, Accounts: accounts, Center: center, Store: d.Access(), Now: now, ID: id}
}

// accessHub starts a hub with ana (the first user), bo and cy, and returns
// a client for each.
func accessHub(t *testing.T, s *hub.Server) map[string]*hubclient.Client {
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	anon := &client{t: t, url: srv.URL}
	var created struct {
		Token struct{ Token string } `json:"token"`
	}
	if code := anon.do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"ana@acme.example"}`, &created); code != 201 {
		t.Fatalf("setup: %d", code)
	}
	clients := map[string]*hubclient.Client{"ana": {URL: srv.URL, Token: created.Token.Token}}
	admin := &client{t: t, url: srv.URL, token: created.Token.Token}
	for _, name := range []string{"bo", "cy"} {
		var u struct {
			Token struct{ Token string } `json:"token"`
		}
		if code := admin.do("POST", "/api/v1/users", fmt.Sprintf(`{"email":"%s@acme.example"}`, name), &u); code != 201 {
			t.Fatalf("create %s: %d", name, code)
		}
		clients[name] = &hubclient.Client{URL: srv.URL, Token: u.Token.Token}
	}
	return clients
}

func TestAccessAPI(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, _ func() string) {
		ctx := context.Background()
		w := accesstest.NewWorld(t)
		clock := &testClock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
		s.Now = clock.Now
		s.Access = accessEngine(t, s.DB, w, clock.Now, "replica-a")
		c := accessHub(t, s)

		// An ineligible requester, a duration above the maximum.
		if _, err := c["bo"].RequestAccess(ctx, "pay-prod", "AdministratorAccess", time.Hour, "x"); !errors.Is(err, errkind.PermissionDenied) || !strings.Contains(err.Error(), "group oncall") {
			t.Errorf("ineligible: %v", err)
		}
		if _, err := c["ana"].RequestAccess(ctx, "pay-prod", "AdministratorAccess", 3*time.Hour, "x"); !errors.Is(err, errkind.Invalid) {
			t.Errorf("too long: %v", err)
		}
		r, err := c["ana"].RequestAccess(ctx, "pay-prod", "AdministratorAccess", time.Hour, "incident 42")
		if err != nil || r.Status != "pending" || r.AccountID != accesstest.ProdID || r.Duration != "1h0m0s" {
			t.Fatalf("request: %+v %v", r, err)
		}
		// bo sees it pending; cy (not a lead) does not.
		if p, err := c["bo"].AccessRequests(ctx, "pending"); err != nil || len(p) != 1 || p[0].ID != r.ID {
			t.Errorf("bo pending: %+v %v", p, err)
		}
		if p, err := c["cy"].AccessRequests(ctx, "pending"); err != nil || len(p) != 0 {
			t.Errorf("cy pending: %+v %v", p, err)
		}
		if m, err := c["ana"].AccessRequests(ctx, "mine"); err != nil || len(m) != 1 {
			t.Errorf("ana mine: %+v %v", m, err)
		}
		// Self-approval is refused, and so is a non-approver.
		if _, err := c["ana"].DecideAccess(ctx, r.ID, "approve", ""); !errors.Is(err, errkind.PermissionDenied) || !strings.Contains(err.Error(), "self-approval") {
			t.Errorf("self-approval: %v", err)
		}
		if _, err := c["cy"].DecideAccess(ctx, r.ID, "approve", ""); !errors.Is(err, errkind.PermissionDenied) {
			t.Errorf("cy approves: %v", err)
		}
		if _, err := c["bo"].DecideAccess(ctx, 999, "approve", ""); !errors.Is(err, errkind.NotFound) {
			t.Errorf("approve unknown: %v", err)
		}
		a, err := c["bo"].DecideAccess(ctx, r.ID, "approve", "go ahead")
		if err != nil || a.Status != "approved" || a.Grant == nil || !a.Grant.Present || a.Grant.Pending || !w.Has("u-ana", accesstest.AdminARN) {
			t.Fatalf("approve: %+v %v", a, err)
		}
		if _, err := c["bo"].DecideAccess(ctx, r.ID, "approve", ""); !errors.Is(err, errkind.Conflict) {
			t.Errorf("approve twice: %v", err)
		}
		id, err := c["ana"].AccessWhoAmI(ctx)
		if err != nil || id.UserID != "u-ana" || len(id.Active) != 1 || id.Active[0].Left != time.Hour || len(id.Eligible) != 2 {
			t.Fatalf("whoami: %+v %v", id, err)
		}
		clock.Add(20 * time.Minute)
		if id, _ := c["ana"].AccessWhoAmI(ctx); id.Active[0].Left != 40*time.Minute {
			t.Errorf("time left %s", id.Active[0].Left)
		}

		// Expiry by the worker; the audit log has every decision.
		clock.Add(40 * time.Minute)
		out, err := s.AccessPass(ctx)
		if err != nil || len(out.Expired) != 1 || w.Has("u-ana", accesstest.AdminARN) {
			t.Fatalf("expire: %+v %v", out, err)
		}
		entries, err := s.DB.SearchAudit(ctx, db.AuditFilter{ObjectPrefix: "access"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Actor+" "+e.Action+" "+e.Outcome)
		}
		want := []string{
			"bo@acme.example access.request error: permission denied",
			"ana@acme.example access.request error: invalid request",
			"ana@acme.example access.request ok",
			"ana@acme.example access.approve error: permission denied",
			"cy@acme.example access.approve error: permission denied",
			"bo@acme.example access.approve error: not found",
			"bo@acme.example access.approve ok",
			"bo@acme.example access.approve error: conflict",
			"berth access.expire ok",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if del, _ := s.DB.SearchAudit(ctx, db.AuditFilter{Action: "access.grant.delete"}); len(del) != 1 || del[0].Outcome != "ok" {
			t.Errorf("grant delete audit: %+v", del)
		}
		if n, err := s.DB.VerifyAudit(ctx); err != nil || n == 0 {
			t.Errorf("audit chain: %d %v", n, err)
		}
	})
}

// TestAccessRevokeRetried: a revoke that fails twice is shown and retried
// by the worker until it succeeds.
func TestAccessRevokeRetried(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, _ func() string) {
		ctx := context.Background()
		w := accesstest.NewWorld(t)
		clock := &testClock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
		s.Now = clock.Now
		s.Access = accessEngine(t, s.DB, w, clock.Now, "replica-a")
		c := accessHub(t, s)
		r, err := c["ana"].RequestAccess(ctx, "pay-prod", "AdministratorAccess", time.Hour, "incident")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c["bo"].DecideAccess(ctx, r.ID, "approve", ""); err != nil {
			t.Fatal(err)
		}
		w.DeleteFailures = []string{"throttle", "failed"}
		rv, err := c["ana"].DecideAccess(ctx, r.ID, "revoke", "done")
		if err != nil || rv.Status != "revoked" || rv.Grant == nil || !rv.Grant.Pending || rv.Grant.Attempts != 1 || !strings.Contains(rv.Grant.LastError, "ThrottlingException") {
			t.Fatalf("revoke: %+v %v", rv, err)
		}
		if id, _ := c["ana"].AccessWhoAmI(ctx); len(id.Removing) != 1 || len(id.Active) != 0 {
			t.Errorf("whoami while removing: %+v", id)
		}
		for i := 1; i <= 2; i++ {
			clock.Add(access.Backoff(i))
			if _, err := s.AccessPass(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if w.Has("u-ana", accesstest.AdminARN) || w.Deletes != 3 {
			t.Errorf("after retries: assigned %v, %d deletes", w.Has("u-ana", accesstest.AdminARN), w.Deletes)
		}
		if id, _ := c["ana"].AccessWhoAmI(ctx); len(id.Removing) != 0 {
			t.Errorf("still removing: %+v", id.Removing)
		}
		del, _ := s.DB.SearchAudit(ctx, db.AuditFilter{Action: "access.grant.delete"})
		if len(del) != 2 || del[0].Outcome != "error: unavailable" || !strings.Contains(del[0].Detail, "attempt 2 failed") || del[1].Outcome != "ok" {
			t.Errorf("audit of the retries: %+v", del)
		}
		rev, _ := s.DB.SearchAudit(ctx, db.AuditFilter{Action: "access.revoke"})
		if len(rev) != 1 || !strings.Contains(rev[0].Detail, "attempt 1") {
			t.Errorf("audit of the revoke: %+v", rev)
		}
	})
}

// TestAccessWorkersRace: two replicas, each with its own connection to the
// database, expire the same grants at once; each assignment is deleted
// once.
func TestAccessWorkersRace(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { accessRace(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db")) })
	t.Run("postgres", func(t *testing.T) { accessRace(t, testenv.StartPostgres(t).URL) })
}

func accessRace(t *testing.T, url string) {
	{
		s := newServer(t, url)
		ctx := context.Background()
		w := accesstest.NewWorld(t)
		clock := &testClock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
		s.Now = clock.Now
		s.Access = accessEngine(t, s.DB, w, clock.Now, "replica-a")
		c := accessHub(t, s)
		// Two grants: ana's AdministratorAccess and ReadOnlyAccess.
		for _, ps := range []string{"AdministratorAccess", "ReadOnlyAccess"} {
			r, err := c["ana"].RequestAccess(ctx, "pay-prod", ps, time.Hour, "x")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c["bo"].DecideAccess(ctx, r.ID, "approve", ""); err != nil {
				t.Fatal(err)
			}
		}
		clock.Add(time.Hour)
		other := newServer(t, url).DB
		b := &hub.Server{DB: other, Now: clock.Now, Access: accessEngine(t, other, w, clock.Now, "replica-b")}
		var wg sync.WaitGroup
		var outs [2]*access.Outcome
		for i, srv := range []*hub.Server{s, b} {
			wg.Go(func() {
				out, err := srv.AccessPass(ctx)
				if err != nil {
					t.Error(err)
				}
				outs[i] = out
			})
		}
		wg.Wait()
		if w.Deletes != 2 || w.Has("u-ana", accesstest.AdminARN) || w.Has("u-ana", accesstest.ReadARN) {
			t.Errorf("%d deletes, want 2 (one per grant)", w.Deletes)
		}
		if n := len(outs[0].Expired) + len(outs[1].Expired); n != 2 {
			t.Errorf("%d expiries, want 2", n)
		}
	}
}
