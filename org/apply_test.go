package org_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/org"
)

const management = "111111111111"

// world is the organisation the scenarios start from: payments-dev does
// not exist yet, payments-prod sits at the root with a stale tag and the
// default budget, legacy-dev is active and marked close: true.
func world() *awsfake.Org {
	return &awsfake.Org{
		OUs: []*awsfake.OrgOU{
			{ID: "ou-workloads", Name: "Workloads", Parent: "r-root"},
			{ID: "ou-dev", Name: "Dev", Parent: "ou-workloads"},
			{ID: "ou-suspended", Name: "Suspended", Parent: "r-root"},
		},
		Accounts: []*awsfake.OrgAccount{
			{ID: management, Name: "acme-management", Email: "aws+management@acme.example", State: "ACTIVE", Parent: "r-root"},
			{ID: "222222222222", Name: "payments-prod", Email: "aws+payments-prod@acme.example", State: "ACTIVE", Parent: "r-root",
				Tags: map[string]string{"cost-center": "2100", "owner": "someone"}},
			{ID: "333333333333", Name: "legacy-dev", Email: "aws+legacy-dev@acme.example", State: "ACTIVE", Parent: "ou-suspended", Tags: map[string]string{}},
		},
		Budgets: map[string]*awsfake.OrgBudget{
			"berth-payments-prod": {Amount: "500.0", Linked: []string{"222222222222"}},
		},
		PermissionSets: map[string]string{"PowerUserAccess": "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-power"},
		Groups:         map[string]string{"payments-developers": "g-payments-dev"},
	}
}

type harness struct {
	srv    *awsfake.Server
	org    *awsfake.Org
	runner *org.Runner
	sleeps []time.Duration
	log    bytes.Buffer
	text   []byte
	cat    *org.Catalog
}

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, o *awsfake.Org) *harness {
	t.Helper()
	h := &harness{srv: awsfake.New(t), org: o}
	h.srv.AddOrg(o)
	cfg := aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider(awsfake.AccessKeyID, awsfake.SecretAccessKey, ""),
		BaseEndpoint: aws.String(h.srv.URL),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
	h.runner = &org.Runner{
		Clients:  org.NewClients(cfg, management, ""),
		Progress: &h.log,
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.sleeps = append(h.sleeps, d)
			return ctx.Err()
		},
		Now: func() time.Time { return now },
	}
	var err error
	if h.text, err = os.ReadFile("testdata/plan/catalog.yaml"); err != nil {
		t.Fatal(err)
	}
	if h.cat, err = org.Parse("accounts.yaml", h.text); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) plan(t *testing.T) *org.Plan {
	t.Helper()
	p, err := h.runner.Plan(context.Background(), "accounts.yaml", h.text, h.cat, org.PlanOptions{})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

// roundTrip saves and reads back a plan, as apply PLAN does.
func roundTrip(t *testing.T, p *org.Plan) (*org.Plan, *org.Catalog) {
	t.Helper()
	var b bytes.Buffer
	if err := org.WritePlan(&b, p); err != nil {
		t.Fatal(err)
	}
	p2, cat, err := org.ReadPlan(&b)
	if err != nil {
		t.Fatalf("read plan: %v", err)
	}
	return p2, cat
}

func actions(p *org.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Action+" "+s.Account+s.OU)
	}
	return out
}

func TestPlanGolden(t *testing.T) {
	h := newHarness(t, world())
	p := h.plan(t)
	want := []string{
		"create-ou Workloads/Prod",
		"create-account payments-dev", "move-account payments-devWorkloads/Dev", "tag-account payments-dev",
		"create-budget payments-dev", "assign payments-dev",
		"move-account payments-prodWorkloads/Prod", "tag-account payments-prod", "update-budget payments-prod",
		"close-account legacy-dev",
	}
	if got := actions(p); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for name, format := range map[string]func(*bytes.Buffer, *org.Plan) error{
		"plan.txt": func(b *bytes.Buffer, p *org.Plan) error { return org.FormatPlan(b, p) },
		"plan.md":  func(b *bytes.Buffer, p *org.Plan) error { return org.FormatMarkdown(b, p) },
		"plan.json": func(b *bytes.Buffer, p *org.Plan) error {
			q := *p
			q.CatalogText = "(omitted)"
			return org.WritePlan(b, &q)
		},
	} {
		var b bytes.Buffer
		if err := format(&b, p); err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("testdata/plan", name), b.Bytes())
	}
	// The plan reads; it never writes.
	for _, c := range h.srv.Calls() {
		if !strings.HasPrefix(c.Action, "List") && !strings.HasPrefix(c.Action, "Describe") && c.Action != "GetGroupId" {
			t.Errorf("plan called %s %s", c.Service, c.Action)
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestApplyScenarios runs a plan against Organizations, Budgets and
// Identity Center at the wire, each scenario with its own faults.
func TestApplyScenarios(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*awsfake.Org)
		// wantErr is the error kind apply must fail with, nil for none.
		wantErr error
		errHas  string
		check   func(t *testing.T, h *harness, res *org.Result)
	}{
		{
			name:  "create with several IN_PROGRESS polls",
			setup: func(o *awsfake.Org) { o.CreatePolls, o.RoleWaits, o.AssignPolls = 3, 2, 1 },
			check: func(t *testing.T, h *harness, res *org.Result) {
				if n := len(h.srv.Called("organizations", "DescribeCreateAccountStatus")); n != 4 {
					t.Errorf("DescribeCreateAccountStatus called %d times, want 4 (3 IN_PROGRESS, then SUCCEEDED)", n)
				}
				if n := len(h.srv.Called("sts", "AssumeRole")); n != 3 {
					t.Errorf("AssumeRole called %d times, want 3 (refused twice while IAM learns the role)", n)
				}
				// Backoff: each wait longer than the one before, up to the cap.
				if len(h.sleeps) < 3 || h.sleeps[0] != 5*time.Second || h.sleeps[1] != 10*time.Second || h.sleeps[2] != 20*time.Second {
					t.Errorf("sleeps %v, want 5s, 10s, 20s first", h.sleeps)
				}
				a := h.org.Account("aws+payments-dev@acme.example")
				if a == nil || a.Parent != "ou-dev" || a.Tags["environment"] != "dev" || a.Tags["cost-center"] != "2100" {
					t.Fatalf("payments-dev is %+v", a)
				}
				if !h.org.Assignments[a.ID+" arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-power g-payments-dev"] {
					t.Errorf("no assignment of PowerUserAccess to payments-developers: %v", h.org.Assignments)
				}
				b := h.org.Budgets["berth-payments-dev"]
				if b == nil || b.Amount != "500" || len(b.Linked) != 1 || b.Linked[0] != a.ID {
					t.Fatalf("budget %+v", b)
				}
				var kinds []string
				for _, n := range b.Notifications {
					note := n["Notification"].(map[string]any)
					sub := n["Subscribers"].([]any)[0].(map[string]any)
					kinds = append(kinds, note["NotificationType"].(string)+" "+sub["Address"].(string))
				}
				if strings.Join(kinds, ",") != "ACTUAL payments@acme.example,FORECASTED payments@acme.example" {
					t.Errorf("budget alerts %v", kinds)
				}
				if !strings.Contains(h.log.String(), "payments-dev: IN_PROGRESS") {
					t.Errorf("progress does not show the creation's state:\n%s", h.log.String())
				}
				last := res.Steps[len(res.Steps)-1]
				if last.Action != org.ActionCloseAccount || last.ReopenUntil != "2027-03-02" {
					t.Errorf("close step %+v, want reopenable until 2027-03-02", last)
				}
			},
		},
		{
			name:    "e-mail already in use",
			setup:   func(o *awsfake.Org) { o.CreateFailure = "EMAIL_ALREADY_EXISTS" },
			wantErr: errkind.Conflict,
			errHas:  "aws+payments-dev@acme.example: another AWS account already uses it",
			check: func(t *testing.T, h *harness, res *org.Result) {
				if res.Steps[1].Status != org.StatusFailed || res.Steps[2].Status != org.StatusNotStarted {
					t.Errorf("steps %s %s, want failed then not-started", res.Steps[1].Status, res.Steps[2].Status)
				}
				if n := len(h.srv.Called("organizations", "MoveAccount")); n != 0 {
					t.Errorf("apply went on after the failure: %d moves", n)
				}
			},
		},
		{
			name: "throttled then retried",
			setup: func(o *awsfake.Org) {
				o.Faults = map[string][]string{
					"CreateAccount": {"TooManyRequestsException", "TooManyRequestsException"},
					"MoveAccount":   {"ConcurrentModificationException"},
					"CreateBudget":  {"ThrottlingException"},
				}
			},
			check: func(t *testing.T, h *harness, res *org.Result) {
				if n := len(h.srv.Called("organizations", "CreateAccount")); n != 3 {
					t.Errorf("CreateAccount called %d times, want 3", n)
				}
				if n := len(h.srv.Called("organizations", "MoveAccount")); n != 3 {
					t.Errorf("MoveAccount called %d times, want 3 (one refused, two accounts)", n)
				}
				if h.sleeps[0] != time.Second || h.sleeps[1] != 2*time.Second {
					t.Errorf("retry waits %v, want 1s then 2s", h.sleeps[:2])
				}
			},
		},
		{
			name: "throttled until the retries run out",
			setup: func(o *awsfake.Org) {
				o.Faults = map[string][]string{"CreateAccount": slices.Repeat([]string{"TooManyRequestsException"}, 50)}
			},
			wantErr: errkind.Unavailable,
			errHas:  "step 2 of 10 (create-account payments-dev): create account payments-dev: gave up waiting after 3m11s (last error: ",
			check: func(t *testing.T, h *harness, res *org.Result) {
				var total time.Duration
				for _, d := range h.sleeps {
					total += d
				}
				if total < 3*time.Minute || total > 4*time.Minute {
					t.Errorf("waited %s in all (%v), want about 3 minutes", total, h.sleeps)
				}
			},
		},
		{
			name:    "close with the quota reached",
			setup:   func(o *awsfake.Org) { o.CloseQuota = true },
			wantErr: errkind.Unavailable,
			errHas:  "run apply again when the oldest closure of the last 30 days is 30 days old",
			check: func(t *testing.T, h *harness, res *org.Result) {
				if a := h.org.Account("aws+legacy-dev@acme.example"); a.State != "ACTIVE" {
					t.Errorf("legacy-dev is %s", a.State)
				}
				if last := res.Steps[len(res.Steps)-1]; last.Status != org.StatusFailed || last.ReopenUntil != "" {
					t.Errorf("close step %+v", last)
				}
			},
		},
		{
			name:  "close polls until SUSPENDED",
			setup: func(o *awsfake.Org) { o.ClosePolls = 2 },
			check: func(t *testing.T, h *harness, res *org.Result) {
				if n := len(h.srv.Called("organizations", "DescribeAccount")); n != 3 {
					t.Errorf("DescribeAccount called %d times, want 3", n)
				}
				if a := h.org.Account("aws+legacy-dev@acme.example"); a.State != "SUSPENDED" {
					t.Errorf("legacy-dev is %s", a.State)
				}
			},
		},
		{
			name: "budget raised with approval",
			check: func(t *testing.T, h *harness, res *org.Result) {
				if b := h.org.Budgets["berth-payments-prod"]; b.Amount != "2500" || b.Linked[0] != "222222222222" {
					t.Errorf("budget %+v, want 2500 for 222222222222", b)
				}
				for _, s := range res.Steps {
					if s.Action == org.ActionUpdateBudget && (s.ApprovedBy != "finance (Dana Reyes)" || s.Previous != "500 USD") {
						t.Errorf("update step %+v", s)
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := world()
			if tc.setup != nil {
				tc.setup(o)
			}
			h := newHarness(t, o)
			p, cat := roundTrip(t, h.plan(t))
			res, err := h.runner.Apply(context.Background(), p, cat)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("apply: %v\n%s", err, h.log.String())
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("apply: %v, want kind %v", err, tc.wantErr)
			case tc.errHas != "" && !strings.Contains(err.Error(), tc.errHas):
				t.Fatalf("apply: %v, want it to say %q", err, tc.errHas)
			}
			if res == nil {
				t.Fatalf("no result")
			}
			if n := len(h.srv.Called("organizations", "CreateAccount")); n == 0 {
				t.Errorf("CreateAccount never called")
			}
			if tc.wantErr == nil {
				for _, s := range res.Steps {
					if s.Status != org.StatusDone {
						t.Errorf("step %s %s is %s", s.Action, s.Account, s.Status)
					}
				}
				// Converged: a new plan has nothing to do.
				if p := h.plan(t); len(p.Steps) != 0 {
					t.Errorf("plan after apply: %v", actions(p))
				}
			}
			tc.check(t, h, res)
		})
	}
}

// TestApplyInterrupted stops apply at different points and runs the same
// plan again: it finishes, and the organisation has one account per
// e-mail.
func TestApplyInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stopAt is the sleep that cancels the apply.
		stopAt int
		// wantSecondCreate says whether the re-run must call CreateAccount
		// (it must not when the first run's request exists).
		wantDone int
	}{
		{name: "while the creation is in progress", stopAt: 1, wantDone: 1},
		{name: "while waiting for the role", stopAt: 3, wantDone: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := world()
			o.CreatePolls, o.RoleWaits = 2, 2
			h := newHarness(t, o)
			p, cat := roundTrip(t, h.plan(t))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sleep := h.runner.Sleep
			h.runner.Sleep = func(c context.Context, d time.Duration) error {
				if len(h.sleeps)+1 == tc.stopAt {
					cancel()
				}
				return sleep(c, d)
			}
			res, err := h.runner.Apply(ctx, p, cat)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("first apply: %v, want it cancelled", err)
			}
			if res.Steps[1].Status != org.StatusFailed {
				t.Errorf("the interrupted step reads %s", res.Steps[1].Status)
			}
			h.runner.Sleep = sleep
			res, err = h.runner.Apply(context.Background(), p, cat)
			if err != nil {
				t.Fatalf("second apply: %v\n%s", err, h.log.String())
			}
			if res.AlreadyDone != tc.wantDone {
				t.Errorf("already done %d, want %d", res.AlreadyDone, tc.wantDone)
			}
			if n := len(h.srv.Called("organizations", "CreateAccount")); n != 1 {
				t.Errorf("CreateAccount called %d times, want once", n)
			}
			n := 0
			for _, a := range o.Accounts {
				if a.Email == "aws+payments-dev@acme.example" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d accounts with payments-dev's e-mail", n)
			}
			if p := h.plan(t); len(p.Steps) != 0 {
				t.Errorf("plan after the re-run: %v", actions(p))
			}
		})
	}
}

// TestApplyRefusesChangedWorld: a change to AWS that the plan does not
// explain stops apply before any write.
func TestApplyRefusesChangedWorld(t *testing.T) {
	o := world()
	h := newHarness(t, o)
	p, cat := roundTrip(t, h.plan(t))
	o.Accounts[1].Parent = "ou-dev" // someone moved payments-prod meanwhile
	before := len(h.srv.Calls())
	_, err := h.runner.Apply(context.Background(), p, cat)
	if !errors.Is(err, org.ErrChanged) || !errors.Is(err, errkind.Conflict) {
		t.Fatalf("apply: %v, want ErrChanged", err)
	}
	if !strings.Contains(err.Error(), "move-account payments-prod (222222222222) (Workloads/Dev -> Workloads/Prod)") {
		t.Errorf("error does not say what changed: %v", err)
	}
	for _, c := range h.srv.Calls()[before:] {
		if !strings.HasPrefix(c.Action, "List") && !strings.HasPrefix(c.Action, "Describe") && c.Action != "GetGroupId" {
			t.Errorf("apply wrote %s after refusing", c.Action)
		}
	}
}

// TestApplyRefusesBudgetWithoutApproval: a plan file edited to raise a
// budget without an approval is refused before any call.
func TestApplyRefusesBudgetWithoutApproval(t *testing.T) {
	h := newHarness(t, world())
	p := h.plan(t)
	for _, edit := range []struct {
		name string
		f    func(*org.Step)
	}{
		{"approval removed", func(s *org.Step) { s.ApprovedBy, s.ApprovalRef = "", "" }},
		{"amount raised", func(s *org.Step) { s.Amount = 9000 }},
	} {
		t.Run(edit.name, func(t *testing.T) {
			q := *p
			q.Steps = append([]org.Step(nil), p.Steps...)
			for i := range q.Steps {
				if q.Steps[i].Action == org.ActionUpdateBudget {
					edit.f(&q.Steps[i])
				}
			}
			var b bytes.Buffer
			if err := org.WritePlan(&b, &q); err != nil {
				t.Fatal(err)
			}
			before := len(h.srv.Calls())
			_, _, err := org.ReadPlan(&b)
			if !errors.Is(err, org.ErrBadPlan) || !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "update-budget payments-prod") {
				t.Fatalf("read plan: %v", err)
			}
			if _, err := h.runner.Apply(context.Background(), &q, h.cat); !errors.Is(err, org.ErrBadPlan) {
				t.Fatalf("apply: %v", err)
			}
			if n := len(h.srv.Calls()) - before; n != 0 {
				t.Errorf("%d calls made", n)
			}
		})
	}
	// And the catalog itself cannot ask for it: validate refuses.
	text := strings.Replace(string(h.text), `      approval: {by: finance (Dana Reyes), ref: "https://github.com/acme/accounts/pull/42"}`+"\n", "", 1)
	if _, err := org.Parse("accounts.yaml", []byte(text)); !errors.Is(err, org.ErrInvalid) || !strings.Contains(err.Error(), "needs approval") {
		t.Fatalf("catalog without approval: %v", err)
	}
}

func TestPlanFileRoundTrip(t *testing.T) {
	h := newHarness(t, world())
	p := h.plan(t)
	p2, _ := roundTrip(t, p)
	a, _ := json.Marshal(p)
	b, _ := json.Marshal(p2)
	if !bytes.Equal(a, b) {
		t.Fatalf("plan changed on the way through its file:\n%s\n%s", a, b)
	}
}

// TestPlanNotes: what plan cannot or will not change is said, not hidden.
func TestPlanNotes(t *testing.T) {
	o := world()
	o.Requests = map[string]*awsfake.OrgCreateRequest{"car-9": {ID: "car-9", Name: "payments-dev", Email: "aws+payments-dev@acme.example", State: "IN_PROGRESS"}}
	o.Accounts[1].Name = "Payments Production"
	o.Accounts[2].State = "SUSPENDED"
	h := newHarness(t, o)
	text := strings.Replace(string(h.text), "    close: true\n", "", 1)
	text = strings.Replace(text, "access_classes:", `  - name: acme-management
    email: aws+management@acme.example
    ou: Root
    owner: platform
    class: management
    close: true
access_classes:`, 1)
	cat, err := org.Parse("accounts.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.runner.Plan(context.Background(), "accounts.yaml", []byte(text), cat, org.PlanOptions{Notify: "finops+{owner}@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`payments-dev is being created (request car-9): apply waits for it instead of creating it again`,
		`payments-prod (222222222222) is named "Payments Production" in AWS; berth matches accounts by e-mail and does not rename them`,
		`legacy-dev (333333333333) is SUSPENDED in AWS: mark it close: true in the catalog, or reopen it through AWS Support`,
		`acme-management is the management account: Organizations cannot close it; close it from its own root user after removing the organisation`,
	}
	if strings.Join(p.Notes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("notes:\n%s\nwant:\n%s", strings.Join(p.Notes, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range p.Steps {
		if s.Account == "legacy-dev" {
			t.Errorf("plan changes a suspended account: %+v", s)
		}
		if s.Action == org.ActionCreateBudget && s.Notify != "finops+payments@acme.example" {
			t.Errorf("budget alerts to %s", s.Notify)
		}
	}
}

// TestMarkdownEscapes: values from the catalog cannot break the comment's
// table or add markup to it.
func TestMarkdownEscapes(t *testing.T) {
	p := &org.Plan{Catalog: "accounts.yaml", Fingerprint: strings.Repeat("0", 64), Steps: []org.Step{
		{Action: org.ActionTagAccount, Account: "a", Tags: map[string]string{"k": "x|y <img src=z> [l](http://e) *b* `c`\nd"}},
	}}
	var b bytes.Buffer
	if err := org.FormatMarkdown(&b, p); err != nil {
		t.Fatal(err)
	}
	row := strings.Split(b.String(), "\n")[6]
	want := `| 1 | tag-account | a | +k=x\|y &lt;img src=z&gt; \[l\](http://e) \*b\* 'c' d |`
	if row != want {
		t.Fatalf("row\n%s\nwant\n%s\n(all:\n%s)", row, want, b.String())
	}
}
