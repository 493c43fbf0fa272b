package access_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/org"
)

const catalogYAML = `version: 1
ous:
  - name: Workloads
accounts:
  - {name: pay-prod, email: aws+pay-prod@acme.example, ou: Workloads, owner: payments, class: team-prod}
  - {name: pay-dev, email: aws+pay-dev@acme.example, ou: Workloads, owner: payments, class: team-dev}
access_classes:
  team-prod:
    escalations:
      - {permission_set: AdministratorAccess, eligible: oncall, approvers: leads, max_duration: 2h}
      - {permission_set: ReadOnlyAccess, eligible: "{owner}-developers", approvers: leads, max_duration: 8h, forbid_self_approval: false}
`

const (
	instanceARN = "arn:aws:sso:::instance/ssoins-1111"
	storeID     = "d-1234567890"
	adminARN    = "arn:aws:sso:::permissionSet/ssoins-1111/ps-admin"
	readARN     = "arn:aws:sso:::permissionSet/ssoins-1111/ps-read"
	prodID      = "111122223333"
)

// world is Identity Center, the Identity Store and Organizations as the
// wire shows them: people, groups, permission sets, accounts and the
// assignments that exist.
type world struct {
	*awsfake.Server
	mu       sync.Mutex
	users    map[string]string   // e-mail -> user id
	groups   map[string]string   // display name -> group id
	members  map[string][]string // user id -> group ids
	assigned map[string]bool     // principal/account/permission set
	// deleteFailures scripts the next deletions: "throttle" answers the
	// call with ThrottlingException, "failed" lets the call start and its
	// status end FAILED.
	deleteFailures []string
	pending        map[string]string // request id -> what it does when polled
	creates        int
	deletes        int
	n              int
}

func newWorld(t *testing.T) *world {
	w := &world{
		Server: awsfake.New(t),
		users:  map[string]string{"ana@acme.example": "u-ana", "bo@acme.example": "u-bo", "cy@acme.example": "u-cy"},
		groups: map[string]string{"oncall": "g-oncall", "leads": "g-leads", "payments-developers": "g-paydev"},
		members: map[string][]string{
			"u-ana": {"g-oncall", "g-paydev", "g-leads"},
			"u-bo":  {"g-leads"},
			"u-cy":  {"g-paydev"},
		},
		assigned: map[string]bool{},
		pending:  map[string]string{},
	}
	attr := func(r *awsfake.Request) string {
		ua := r.JSON["AlternateIdentifier"].(map[string]any)["UniqueAttribute"].(map[string]any)
		return fmt.Sprint(ua["AttributeValue"])
	}
	w.Handle("identitystore", "GetUserId", func(r *awsfake.Request) awsfake.Response {
		if id, ok := w.users[attr(r)]; ok {
			return awsfake.JSON(map[string]any{"UserId": id, "IdentityStoreId": storeID})
		}
		return awsfake.JSONError(400, "ResourceNotFoundException", "USER not found")
	})
	w.Handle("identitystore", "GetGroupId", func(r *awsfake.Request) awsfake.Response {
		if id, ok := w.groups[attr(r)]; ok {
			return awsfake.JSON(map[string]any{"GroupId": id, "IdentityStoreId": storeID})
		}
		return awsfake.JSONError(400, "ResourceNotFoundException", "GROUP not found")
	})
	w.Handle("identitystore", "ListGroupMembershipsForMember", func(r *awsfake.Request) awsfake.Response {
		uid := r.JSON["MemberId"].(map[string]any)["UserId"].(string)
		var ms []any
		for _, g := range w.members[uid] {
			ms = append(ms, map[string]any{"GroupId": g, "IdentityStoreId": storeID, "MembershipId": "m-" + g, "MemberId": map[string]any{"UserId": uid}})
		}
		return awsfake.JSON(map[string]any{"GroupMemberships": ms})
	})
	w.Handle("sso", "ListPermissionSets", func(*awsfake.Request) awsfake.Response {
		return awsfake.JSON(map[string]any{"PermissionSets": []string{adminARN, readARN}})
	})
	w.Handle("sso", "DescribePermissionSet", func(r *awsfake.Request) awsfake.Response {
		name := map[string]string{adminARN: "AdministratorAccess", readARN: "ReadOnlyAccess"}[r.JSON["PermissionSetArn"].(string)]
		return awsfake.JSON(map[string]any{"PermissionSet": map[string]any{"Name": name, "PermissionSetArn": r.JSON["PermissionSetArn"]}})
	})
	w.Handle("organizations", "ListAccounts", func(*awsfake.Request) awsfake.Response {
		return awsfake.JSON(map[string]any{"Accounts": []any{
			map[string]any{"Id": prodID, "Email": "aws+pay-prod@acme.example", "Name": "pay-prod", "Status": "ACTIVE"},
			map[string]any{"Id": "444455556666", "Email": "aws+pay-dev@acme.example", "Name": "pay-dev", "Status": "ACTIVE"},
		}})
	})
	key := func(r *awsfake.Request) string {
		if r.JSON["InstanceArn"] != instanceARN || r.JSON["PrincipalType"] != "USER" || r.JSON["TargetType"] != "AWS_ACCOUNT" {
			t.Errorf("%s: %v", r.Action, r.JSON)
		}
		return fmt.Sprintf("%s/%s/%s", r.JSON["PrincipalId"], r.JSON["TargetId"], r.JSON["PermissionSetArn"])
	}
	status := func(field, id, st, reason string) awsfake.Response {
		s := map[string]any{"RequestId": id, "Status": st}
		if reason != "" {
			s["FailureReason"] = reason
		}
		return awsfake.JSON(map[string]any{field: s})
	}
	w.Handle("sso", "CreateAccountAssignment", func(r *awsfake.Request) awsfake.Response {
		w.creates++
		w.n++
		id := fmt.Sprintf("create-%d", w.n)
		w.pending[id] = "create " + key(r)
		return status("AccountAssignmentCreationStatus", id, "IN_PROGRESS", "")
	})
	w.Handle("sso", "DeleteAccountAssignment", func(r *awsfake.Request) awsfake.Response {
		w.deletes++
		k := key(r)
		if len(w.deleteFailures) > 0 {
			f := w.deleteFailures[0]
			w.deleteFailures = w.deleteFailures[1:]
			if f == "throttle" {
				return awsfake.JSONError(400, "ThrottlingException", "Rate exceeded")
			}
			w.n++
			id := fmt.Sprintf("delete-%d", w.n)
			w.pending[id] = "fail " + k
			return status("AccountAssignmentDeletionStatus", id, "IN_PROGRESS", "")
		}
		w.n++
		id := fmt.Sprintf("delete-%d", w.n)
		w.pending[id] = "delete " + k
		return status("AccountAssignmentDeletionStatus", id, "IN_PROGRESS", "")
	})
	poll := func(field, idField string) awsfake.Handler {
		return func(r *awsfake.Request) awsfake.Response {
			id := r.JSON[idField].(string)
			op, k, _ := strings.Cut(w.pending[id], " ")
			switch op {
			case "create":
				w.assigned[k] = true
			case "delete":
				delete(w.assigned, k)
			case "fail":
				return status(field, id, "FAILED", "Received a 500 status error from the account")
			default:
				t.Errorf("poll of unknown request %s", id)
			}
			return status(field, id, "SUCCEEDED", "")
		}
	}
	w.Handle("sso", "DescribeAccountAssignmentCreationStatus", poll("AccountAssignmentCreationStatus", "AccountAssignmentCreationRequestId"))
	w.Handle("sso", "DescribeAccountAssignmentDeletionStatus", poll("AccountAssignmentDeletionStatus", "AccountAssignmentDeletionRequestId"))
	return w
}

// has reports whether the assignment of user on pay-prod exists.
func (w *world) has(user, psARN string) bool {
	w.Server.Calls() // the handlers ran under the server's lock; this orders the read after them
	return w.assigned[user+"/"+prodID+"/"+psARN]
}

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
	w     *world
	e     *access.Engine
	clock *clock
	store *memStore
	hook  *[]string
	polls *int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c, err := org.Parse("accounts.yaml", []byte(catalogYAML))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(awsfake.AccessKeyID, awsfake.SecretAccessKey, ""),
		BaseEndpoint:     aws.String(w.URL),
		RetryMaxAttempts: 1,
	}
	center, dir, accounts := access.NewAWS(cfg, instanceARN, storeID)
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
	if r.Status != access.Pending || r.Key != (access.GrantKey{PrincipalID: "u-ana", AccountID: prodID, PermissionSetARN: adminARN}) || r.Approvers != "leads" {
		t.Fatalf("request %+v", r)
	}
	if len(*v.hook) != 1 || !strings.Contains((*v.hook)[0], "ana@acme.example asks for AdministratorAccess on pay-prod for 1h0m0s") ||
		!strings.Contains((*v.hook)[0], "berth access approve 1") {
		t.Errorf("webhook: %q", *v.hook)
	}
	if v.w.has("u-ana", adminARN) {
		t.Fatal("assigned before approval")
	}
	g := v.approve(t, "bo@acme.example", r.ID)
	if g == nil || !g.Present || g.Due || !v.w.has("u-ana", adminARN) {
		t.Fatalf("after approval: grant %+v, assigned %v", g, v.w.has("u-ana", adminARN))
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
	if v.w.creates != 1 {
		t.Errorf("%d CreateAccountAssignment calls, want 1", v.w.creates)
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
	if v.w.creates != 0 || len(v.w.Called("sso", "CreateAccountAssignment")) != 0 {
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
	if out := v.reconcile(t, "w1"); len(out.Expired) != 0 || !v.w.has("u-ana", adminARN) {
		t.Fatalf("a millisecond before expiry: %+v", out)
	}
	v.clock.Add(time.Millisecond)
	out := v.reconcile(t, "w1")
	if len(out.Expired) != 1 || out.Expired[0].ID != r.ID || len(out.Worked) != 1 || v.w.has("u-ana", adminARN) {
		t.Fatalf("at expiry: %+v, assigned %v", out, v.w.has("u-ana", adminARN))
	}
	if out := v.reconcile(t, "w1"); len(out.Expired)+len(out.Worked) != 0 || v.w.deletes != 1 {
		t.Errorf("second pass did work: %+v, %d deletes", out, v.w.deletes)
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
			if v.w.creates != 1 {
				t.Errorf("%d creates; the second approval found the assignment in place", v.w.creates)
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
			if !v.w.has("u-ana", adminARN) || v.w.deletes != 0 {
				t.Fatalf("the assignment went with the first request (%d deletes)", v.w.deletes)
			}
			id, _ := v.e.WhoAmI(context.Background(), "ana@acme.example")
			if len(id.Active) != 1 || !id.Active[0].Expires.Equal(second.Created.Add(2*time.Hour)) {
				t.Errorf("whoami active %+v", id.Active)
			}
			v.clock.Add(2 * time.Hour)
			v.reconcile(t, "w1")
			if v.w.has("u-ana", adminARN) || v.w.deletes != 1 {
				t.Errorf("after the last ended: assigned %v, %d deletes", v.w.has("u-ana", adminARN), v.w.deletes)
			}
		})
	}
}

func TestRevokeFailsTwiceThenSucceeds(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	r := v.ask(t, "ana@acme.example", "AdministratorAccess", time.Hour)
	v.approve(t, "bo@acme.example", r.ID)
	v.w.deleteFailures = []string{"throttle", "failed"}

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
	if len(out.Worked) != 1 || out.Worked[0].Attempts != 2 || !strings.Contains(out.Worked[0].LastError, "failed: Received a 500") || !v.w.has("u-ana", adminARN) {
		t.Fatalf("second attempt: %+v", out)
	}
	v.clock.Add(access.Backoff(2))
	out = v.reconcile(t, "w1")
	if len(out.Worked) != 1 || out.Worked[0].Present || out.Worked[0].Due || out.Worked[0].LastError != "" || v.w.has("u-ana", adminARN) {
		t.Fatalf("third attempt: %+v", out)
	}
	if v.w.deletes != 3 {
		t.Errorf("%d DeleteAccountAssignment calls, want 3", v.w.deletes)
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
