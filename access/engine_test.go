package access_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/access/accesstest"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/org"
)

// clock is the injected time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	w     *accesstest.World
	e     *access.Engine
	clock *clock
	store *memStore
	hook  *[]string
	polls *int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c, err := org.Parse("accounts.yaml", []byte(accesstest.Catalog))
	if err != nil {
		t.Fatal(err)
	}
	w := accesstest.NewWorld(t)
	center, dir, accounts := access.NewAWS(w.Config(), accesstest.InstanceARN, accesstest.StoreID)
	polls := 0
	center.Sleep = func(ctx context.Context, d time.Duration) error { polls++; return nil }
	var hooks []string
	var hmu sync.Mutex
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var body map[string]string
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook body %s: %v", b, err)
		}
		hmu.Lock()
		hooks = append(hooks, body["text"])
		hmu.Unlock()
	}))
	t.Cleanup(hook.Close)
	ck := &clock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	store := newMemStore()
	e := &access.Engine{
		Catalog: c, Directory: dir, Accounts: accounts, Center: center, Store: store,
		Notify: &access.Webhook{URL: hook.URL}, Now: ck.Now,
		Warn: func(msg string, err error) { t.Errorf("%s: %v", msg, err) },
	}
	return &env{w: w, e: e, clock: ck, store: store, hook: &hooks, polls: &polls}
}

func (v *env) ask(t *testing.T, who, ps string, d time.Duration) *access.Request {
	t.Helper()
	r, err := v.e.Ask(context.Background(), who, "pay-prod", ps, d, "incident 42")
	if err != nil {
		t.Fatalf("ask: %v", err)
	}
	return r
}

func (v *env) approve(t *testing.T, who string, id int64) *access.Grant {
	t.Helper()
	_, g, err := v.e.Approve(context.Background(), who, id, "ok")
	if err != nil {
		t.Fatalf("approve %d: %v", id, err)
	}
	return g
}

func (v *env) reconcile(t *testing.T, worker string) *access.Outcome {
	t.Helper()
	out, err := v.e.Reconcile(context.Background(), worker)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	return out
}

func TestApprove(t *testing.T) {
	v := newEnv(t)
	r := v.ask(t, "ana@acme.example", "AdministratorAccess", time.Hour)
	if r.Status != access.Pending || r.Key != (access.GrantKey{PrincipalID: "u-ana", AccountID: accesstest.ProdID, PermissionSetARN: accesstest.AdminARN}) || r.Approvers != "leads" {
		t.Fatalf("request %+v", r)
	}
	if len(*v.hook) != 1 || !strings.Contains((*v.hook)[0], "ana@acme.example asks for AdministratorAccess on pay-prod for 1h0m0s") ||
		!strings.Contains((*v.hook)[0], "berth access approve 1") {
		t.Errorf("webhook: %q", *v.hook)
	}
	if v.w.Has("u-ana", accesstest.AdminARN) {
		t.Fatal("assigned before approval")
	}
	g := v.approve(t, "bo@acme.example", r.ID)
	if g == nil || !g.Present || g.Due || !v.w.Has("u-ana", accesstest.AdminARN) {
		t.Fatalf("after approval: grant %+v, assigned %v", g, v.w.Has("u-ana", accesstest.AdminARN))
	}
	if *v.polls != 1 {
		t.Errorf("%d status polls, want 1 (IN_PROGRESS, then SUCCEEDED)", *v.polls)
	}
	got, _ := v.store.Request(context.Background(), r.ID)
	if got.Status != access.Approved || got.DecidedBy != "bo@acme.example" || !got.Expires.Equal(v.clock.Now().Add(time.Hour)) {
		t.Errorf("stored %+v", got)
	}
	// Approved once: a second approval is a conflict and calls nothing.
	if _, _, err := v.e.Approve(context.Background(), "bo@acme.example", r.ID, ""); !errors.Is(err, access.ErrNotPending) || !errors.Is(err, errkind.Conflict) {
		t.Errorf("approve twice: %v", err)
	}
	if v.w.Creates != 1 {
		t.Errorf("%d CreateAccountAssignment calls, want 1", v.w.Creates)
	}
	id, err := v.e.WhoAmI(context.Background(), "ana@acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != "u-ana" || len(id.Active) != 1 || id.Active[0].Left != time.Hour || id.Active[0].State != "active" ||
		strings.Join(id.Groups, ",") != "oncall,leads,payments-developers" || len(id.Eligible) != 2 {
		t.Errorf("whoami %+v", id)
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	for _, tc := range []struct {
		name, who, account, ps string
		d                      time.Duration
		reason                 string
		kind                   error
		want                   string
	}{
		{"ineligible requester", "bo@acme.example", "pay-prod", "AdministratorAccess", time.Hour, "x", access.ErrIneligible, "for members of group oncall, and bo@acme.example is not one"},
		{"owner group", "bo@acme.example", "pay-prod", "ReadOnlyAccess", time.Hour, "x", access.ErrIneligible, "group payments-developers"},
		{"unknown to identity store", "zed@acme.example", "pay-prod", "AdministratorAccess", time.Hour, "x", errkind.NotFound, "no user has this e-mail"},
		{"too long", "ana@acme.example", "pay-prod", "AdministratorAccess", 3 * time.Hour, "x", errkind.Invalid, "longer than the 2h0m0s"},
		{"no reason", "ana@acme.example", "pay-prod", "AdministratorAccess", time.Hour, " ", errkind.Invalid, "say why"},
		{"no escalation", "ana@acme.example", "pay-dev", "AdministratorAccess", time.Hour, "x", access.ErrNoEscalation, "has no escalation"},
		{"unknown account", "ana@acme.example", "nope", "AdministratorAccess", time.Hour, "x", errkind.NotFound, "not in the catalog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.e.Ask(ctx, tc.who, tc.account, tc.ps, tc.d, tc.reason)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ask = %v, want %v containing %q", err, tc.kind, tc.want)
			}
		})
	}
	if n, _ := v.store.Requests(ctx, access.Filter{}); len(n) != 0 {
		t.Errorf("refused requests were stored: %+v", n)
	}

	r := v.ask(t, "ana@acme.example", "AdministratorAccess", time.Hour)
	for _, tc := range []struct {
		name, who string
		kind      error
	}{
		{"self-approval refused", "ana@acme.example", access.ErrSelfApproval},
		{"not an approver", "cy@acme.example", access.ErrNotApprover},
		{"not in the identity store", "zed@acme.example", access.ErrNotApprover},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := v.e.Approve(ctx, tc.who, r.ID, "")
			if !errors.Is(err, tc.kind) || !errors.Is(err, errkind.PermissionDenied) {
				t.Errorf("approve = %v, want %v", err, tc.kind)
			}
		})
	}
	if v.w.Creates != 0 || len(v.w.Called("sso", "CreateAccountAssignment")) != 0 {
		t.Error("a refused approval created an assignment")
	}
	// Where the class allows it, the requester (a lead) approves their own.
	ro := v.ask(t, "ana@acme.example", "ReadOnlyAccess", time.Hour)
	if g := v.approve(t, "ana@acme.example", ro.ID); !g.Present {
		t.Errorf("self-approval where allowed: %+v", g)
	}
	// Deny: by an approver; the request is then final.
	if _, err := v.e.Deny(ctx, "cy@acme.example", r.ID, "no"); !errors.Is(err, access.ErrNotApprover) {
		t.Errorf("deny by a non-approver: %v", err)
	}
	if d, err := v.e.Deny(ctx, "bo@acme.example", r.ID, "not now"); err != nil || d.Status != access.Denied {
		t.Fatalf("deny: %+v %v", d, err)
	}
	if _, _, err := v.e.Approve(ctx, "bo@acme.example", r.ID, ""); !errors.Is(err, access.ErrNotPending) {
		t.Errorf("approve a denied request: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	v := newEnv(t)
	r := v.ask(t, "ana@acme.example", "AdministratorAccess", 2*time.Hour)
	v.approve(t, "bo@acme.example", r.ID)
	v.clock.Add(2*time.Hour - time.Millisecond)
	if out := v.reconcile(t, "w1"); len(out.Expired) != 0 || !v.w.Has("u-ana", accesstest.AdminARN) {
		t.Fatalf("a millisecond before expiry: %+v", out)
	}
	v.clock.Add(time.Millisecond)
	out := v.reconcile(t, "w1")
	if len(out.Expired) != 1 || out.Expired[0].ID != r.ID || len(out.Worked) != 1 || v.w.Has("u-ana", accesstest.AdminARN) {
		t.Fatalf("at expiry: %+v, assigned %v", out, v.w.Has("u-ana", accesstest.AdminARN))
	}
	if out := v.reconcile(t, "w1"); len(out.Expired)+len(out.Worked) != 0 || v.w.Deletes != 1 {
		t.Errorf("second pass did work: %+v, %d deletes", out, v.w.Deletes)
	}
	got, _ := v.store.Request(context.Background(), r.ID)
	if got.Status != access.Expired {
		t.Errorf("status %s", got.Status)
	}
}

// TestOverlappingGrants: TEAM issue 279. Two approved requests for the same
// user, account and permission set: the first expiry and a revoke of the
// first leave the assignment; it goes when the last ends.
func TestOverlappingGrants(t *testing.T) {
	for _, end := range []string{"expire", "revoke"} {
		t.Run(end, func(t *testing.T) {
			v := newEnv(t)
			first := v.ask(t, "ana@acme.example", "AdministratorAccess", time.Hour)
			v.approve(t, "bo@acme.example", first.ID)
			v.clock.Add(30 * time.Minute)
			second := v.ask(t, "ana@acme.example", "AdministratorAccess", 2*time.Hour)
			v.approve(t, "bo@acme.example", second.ID)
			if v.w.Creates != 1 {
				t.Errorf("%d creates; the second approval found the assignment in place", v.w.Creates)
			}
			switch end {
			case "expire":
				v.clock.Add(30 * time.Minute) // the first ends
				if out := v.reconcile(t, "w1"); len(out.Expired) != 1 {
					t.Fatalf("first expiry: %+v", out)
				}
			case "revoke":
				if _, _, err := v.e.Revoke(context.Background(), "ana@acme.example", first.ID, "done"); err != nil {
					t.Fatal(err)
				}
			}
			if !v.w.Has("u-ana", accesstest.AdminARN) || v.w.Deletes != 0 {
				t.Fatalf("the assignment went with the first request (%d deletes)", v.w.Deletes)
			}
			id, _ := v.e.WhoAmI(context.Background(), "ana@acme.example")
			if len(id.Active) != 1 || !id.Active[0].Expires.Equal(second.Created.Add(2*time.Hour)) {
				t.Errorf("whoami active %+v", id.Active)
			}
			v.clock.Add(2 * time.Hour)
			v.reconcile(t, "w1")
			if v.w.Has("u-ana", accesstest.AdminARN) || v.w.Deletes != 1 {
				t.Errorf("after the last ended: assigned %v, %d deletes", v.w.Has("u-ana", accesstest.AdminARN), v.w.Deletes)
			}
		})
	}
}

func TestRevokeFailsTwiceThenSucceeds(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	r := v.ask(t, "ana@acme.example", "AdministratorAccess", time.Hour)
	v.approve(t, "bo@acme.example", r.ID)
	v.w.DeleteFailures = []string{"throttle", "failed"}

	_, g, err := v.e.Revoke(ctx, "bo@acme.example", r.ID, "incident over")
	if err != nil {
		t.Fatal(err)
	}
	if g == nil || !g.Present || !g.Due || g.Attempts != 1 || !strings.Contains(g.LastError, "ThrottlingException") ||
		!g.NextAttempt.Equal(v.clock.Now().Add(access.Backoff(1))) {
		t.Fatalf("after the first failure: %+v", g)
	}
	// Shown, not forgotten.
	id, _ := v.e.WhoAmI(ctx, "ana@acme.example")
	if len(id.Active) != 0 || len(id.Removing) != 1 || id.Removing[0].Attempts != 1 {
		t.Errorf("whoami while the revoke fails: %+v", id)
	}
	// Not before the backoff.
	if out := v.reconcile(t, "w1"); len(out.Worked) != 0 {
		t.Errorf("retried before the backoff: %+v", out)
	}
	v.clock.Add(access.Backoff(1))
	out := v.reconcile(t, "w1")
	if len(out.Worked) != 1 || out.Worked[0].Attempts != 2 || !strings.Contains(out.Worked[0].LastError, "failed: Received a 500") || !v.w.Has("u-ana", accesstest.AdminARN) {
		t.Fatalf("second attempt: %+v", out)
	}
	v.clock.Add(access.Backoff(2))
	out = v.reconcile(t, "w1")
	if len(out.Worked) != 1 || out.Worked[0].Present || out.Worked[0].Due || out.Worked[0].LastError != "" || v.w.Has("u-ana", accesstest.AdminARN) {
		t.Fatalf("third attempt: %+v", out)
	}
	if v.w.Deletes != 3 {
		t.Errorf("%d DeleteAccountAssignment calls, want 3", v.w.Deletes)
	}
	if id, _ := v.e.WhoAmI(ctx, "ana@acme.example"); len(id.Removing) != 0 {
		t.Errorf("still removing: %+v", id.Removing)
	}
}

// TestRevokeRefusals: only the requester or an approver revokes.
func TestRevokeRefusals(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	r := v.ask(t, "ana@acme.example", "AdministratorAccess", time.Hour)
	if _, _, err := v.e.Revoke(ctx, "cy@acme.example", r.ID, ""); !errors.Is(err, access.ErrNotApprover) {
		t.Errorf("revoke by another user: %v", err)
	}
	if _, g, err := v.e.Revoke(ctx, "ana@acme.example", r.ID, "never mind"); err != nil || g != nil {
		t.Errorf("withdraw a pending request: %+v %v", g, err)
	}
	if _, _, err := v.e.Revoke(ctx, "ana@acme.example", r.ID, ""); !errors.Is(err, errkind.Conflict) {
		t.Errorf("revoke twice: %v", err)
	}
	if _, _, err := v.e.Revoke(ctx, "ana@acme.example", 99, ""); !errors.Is(err, errkind.NotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
	if len(v.w.Called("sso", "DeleteAccountAssignment"))+len(v.w.Called("sso", "CreateAccountAssignment")) != 0 {
		t.Error("Identity Center was called")
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {7, 30 * time.Minute}, {100, 30 * time.Minute}} {
		if got := access.Backoff(tc.attempt); got != tc.want {
			t.Errorf("Backoff(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}

// TestApproveWhenIdentityCenterFails: the approval stands, the grant is
// pending and shown, and the worker creates it after the backoff.
func TestApproveWhenIdentityCenterFails(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	v.w.CreateFailures = []string{"failed"}
	r := v.ask(t, "ana@acme.example", "AdministratorAccess", time.Hour)
	req, g, err := v.e.Approve(ctx, "bo@acme.example", r.ID, "")
	if err != nil || req.Status != access.Approved || g.Present || !g.Due || g.Attempts != 1 || !strings.Contains(g.LastError, "create account assignment") {
		t.Fatalf("approve: %+v %+v %v", req, g, err)
	}
	id, _ := v.e.WhoAmI(ctx, "ana@acme.example")
	if len(id.Active) != 1 || id.Active[0].State != "pending" || id.Active[0].LastError == "" {
		t.Errorf("whoami: %+v", id.Active)
	}
	v.clock.Add(access.Backoff(1))
	if out := v.reconcile(t, "w1"); len(out.Worked) != 1 || out.Worked[0].Call != access.CallCreate || !v.w.Has("u-ana", accesstest.AdminARN) {
		t.Fatalf("retry: %+v", out)
	}
}

// TestWebhookFailure: a notice that cannot be sent does not fail the
// request, and the warning does not reveal the webhook's URL.
func TestWebhookFailure(t *testing.T) {
	v := newEnv(t)
	var warned []string
	v.e.Warn = func(msg string, err error) { warned = append(warned, msg+": "+err.Error()) }
	v.e.Notify = &access.Webhook{URL: "http://127.0.0.1:1/services/T000/B000/SECRETTOKEN"}
	r := v.ask(t, "ana@acme.example", "AdministratorAccess", time.Hour)
	if r.ID == 0 || len(warned) != 1 || strings.Contains(warned[0], "SECRETTOKEN") || !strings.Contains(warned[0], "post access webhook") {
		t.Errorf("request %+v, warnings %q", r, warned)
	}
}
