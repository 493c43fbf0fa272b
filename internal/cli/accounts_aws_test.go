package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/awsfake"
)

const orgCatalog = "../../org/testdata/plan/catalog.yaml"

// orgFake is an organisation in which payments-dev must be created,
// payments-prod moved, retagged and its budget raised, and legacy-dev
// closed. Nothing in it polls, so no test sleeps.
func orgFake(t *testing.T) (*awsfake.Server, *awsfake.Org) {
	t.Helper()
	s := awsfake.New(t)
	s.Setenv(t, "eu-west-1")
	s.Handle("sts", "GetCallerIdentity", awsfake.CallerIdentity("111111111111", "arn:aws:iam::111111111111:role/platform-admin"))
	o := &awsfake.Org{
		OUs: []*awsfake.OrgOU{
			{ID: "ou-workloads", Name: "Workloads", Parent: "r-root"},
			{ID: "ou-dev", Name: "Dev", Parent: "ou-workloads"},
			{ID: "ou-prod", Name: "Prod", Parent: "ou-workloads"},
			{ID: "ou-suspended", Name: "Suspended", Parent: "r-root"},
		},
		Accounts: []*awsfake.OrgAccount{
			{ID: "222222222222", Name: "payments-prod", Email: "aws+payments-prod@acme.example", State: "ACTIVE", Parent: "r-root", Tags: map[string]string{}},
			{ID: "333333333333", Name: "legacy-dev", Email: "aws+legacy-dev@acme.example", State: "ACTIVE", Parent: "ou-suspended", Tags: map[string]string{}},
		},
		Budgets:        map[string]*awsfake.OrgBudget{"berth-payments-prod": {Amount: "500.0", Linked: []string{"222222222222"}}},
		PermissionSets: map[string]string{"PowerUserAccess": "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-power"},
		Groups:         map[string]string{"payments-developers": "g-payments-dev"},
	}
	s.AddOrg(o)
	return s, o
}

func TestAccountsPlanApply(t *testing.T) {
	s, o := orgFake(t)
	planFile := filepath.Join(t.TempDir(), "accounts.plan")

	code, stdout, stderr := berth(t, "accounts", "plan", "--catalog", orgCatalog, "--format", "markdown", "-o", planFile, "--sso-region", "eu-central-1")
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, stderr)
	}
	wantIn(t, "plan markdown", stdout, "| 1 | create-account | payments-dev | aws+payments-dev@acme.example |",
		"| 8 | update-budget | payments-prod (222222222222) | 500 USD -&gt; 2500 USD a month, approved by finance (Dana Reyes)",
		"> Closes legacy-dev.")
	if _, err := os.Stat(planFile); err != nil {
		t.Fatal(err)
	}

	code, _, stderr = berth(t, "accounts", "apply", planFile)
	if code != ExitUsage || !strings.Contains(stderr, "pass --yes") {
		t.Fatalf("apply without a terminal or --yes: exit %d: %s", code, stderr)
	}
	if n := len(s.Called("organizations", "CreateAccount")); n != 0 {
		t.Fatalf("apply without --yes created %d accounts", n)
	}

	code, stdout, stderr = berth(t, "accounts", "apply", planFile, "--yes")
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	wantIn(t, "apply progress", stderr, "[1/9] create-account payments-dev: aws+payments-dev@acme.example", "[1/9] create-account payments-dev (200000000002): done: created 200000000002, role OrganizationAccountAccessRole ready")
	wantIn(t, "apply result", stdout, "close-account   legacy-dev (333333333333)     done    SUSPENDED; can be reopened through AWS Support until ")
	if a := o.Account("aws+payments-dev@acme.example"); a == nil || a.Parent != "ou-dev" {
		t.Fatalf("payments-dev: %+v", a)
	}
	// Identity Center is called where the plan read it, without the flag
	// again; Organizations and Budgets in us-east-1.
	for _, c := range s.Calls() {
		if want := map[string]string{"sso": "eu-central-1", "identitystore": "eu-central-1", "organizations": "us-east-1", "budgets": "us-east-1"}[c.Service]; want != "" && c.Region != want {
			t.Errorf("%s %s called in %s, want %s", c.Service, c.Action, c.Region, want)
		}
	}

	// The same plan again: everything is done, nothing is created twice.
	code, stdout, stderr = berth(t, "--output", "json", "accounts", "apply", planFile, "--yes")
	if code != 0 {
		t.Fatalf("second apply: exit %d: %s", code, stderr)
	}
	var rep struct {
		OK          bool `json:"ok"`
		AlreadyDone int  `json:"already_done"`
		Steps       []struct {
			Status string `json:"status"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("apply --output json: %v\n%s", err, stdout)
	}
	if !rep.OK || rep.AlreadyDone != 9 || len(rep.Steps) != 0 {
		t.Fatalf("second apply: %+v", rep)
	}
	if n := len(s.Called("organizations", "CreateAccount")); n != 1 {
		t.Fatalf("CreateAccount called %d times", n)
	}

	code, stdout, _ = berth(t, "accounts", "plan", "--catalog", orgCatalog)
	if code != 0 || stdout != "catalog.yaml: no changes\n" {
		t.Fatalf("plan after apply: exit %d:\n%s", code, stdout)
	}
}

func TestAccountsApplyExitCodes(t *testing.T) {
	t.Run("changed since the plan", func(t *testing.T) {
		_, o := orgFake(t)
		planFile := filepath.Join(t.TempDir(), "accounts.plan")
		if code, _, stderr := berth(t, "accounts", "plan", "--catalog", orgCatalog, "-o", planFile); code != 0 {
			t.Fatal(stderr)
		}
		o.Accounts[0].Parent = "ou-dev"
		code, _, stderr := berth(t, "accounts", "apply", planFile, "--yes")
		if code != ExitConflict || !strings.Contains(stderr, "AWS changed since the plan") || !strings.Contains(stderr, "run berth accounts plan again") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		code, stdout, _ := berth(t, "--output", "json", "accounts", "apply", planFile, "--yes")
		var rep struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != ExitConflict || rep.OK || !strings.Contains(rep.Error, "AWS changed since the plan") {
			t.Fatalf("exit %d, %v: %s", code, err, stdout)
		}
	})
	t.Run("e-mail already in use", func(t *testing.T) {
		_, o := orgFake(t)
		o.CreateFailure = "EMAIL_ALREADY_EXISTS"
		code, stdout, stderr := berth(t, "accounts", "apply", "--catalog", orgCatalog, "--yes")
		if code != ExitConflict || !strings.Contains(stderr, "berth: step 1 of 9 (create-account payments-dev): create account payments-dev: AWS refused the e-mail") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		wantIn(t, "result", stdout, "create-account  payments-dev", "failed", "not-started")
		if strings.Contains(stderr, "applied") {
			t.Errorf("a failed apply reads as success:\n%s", stderr)
		}
	})
	t.Run("close quota", func(t *testing.T) {
		_, o := orgFake(t)
		o.CloseQuota = true
		code, _, stderr := berth(t, "accounts", "apply", "--catalog", orgCatalog, "--yes")
		if code != ExitUnavailable || !strings.Contains(stderr, "close-account legacy-dev") || !strings.Contains(stderr, "30 days") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
	t.Run("not the management account", func(t *testing.T) {
		s, _ := orgFake(t)
		s.Handle("organizations", "ListRoots", func(*awsfake.Request) awsfake.Response {
			return awsfake.JSONError(400, "AccessDeniedException", "You don't have permissions to access this resource.")
		})
		code, _, stderr := berth(t, "accounts", "plan", "--catalog", orgCatalog)
		if code != ExitDenied || !strings.Contains(stderr, "management account") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
	t.Run("edited plan", func(t *testing.T) {
		orgFake(t)
		planFile := filepath.Join(t.TempDir(), "accounts.plan")
		if code, _, stderr := berth(t, "accounts", "plan", "--catalog", orgCatalog, "-o", planFile); code != 0 {
			t.Fatal(stderr)
		}
		data, _ := os.ReadFile(planFile)
		os.WriteFile(planFile, []byte(strings.Replace(string(data), `"approved_by": "finance (Dana Reyes)",`, "", 1)), 0o644)
		code, _, stderr := berth(t, "accounts", "apply", planFile, "--yes")
		if code != ExitUsage || !strings.Contains(stderr, "the plan records no approval") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
}

func TestAccountsAudit(t *testing.T) {
	s, o := orgFake(t)
	o.Accounts = append(o.Accounts, &awsfake.OrgAccount{ID: "444444444444", Name: "shadow-it", Email: "shadow@acme.example", State: "ACTIVE", Parent: "r-root"})
	s.Handle("iam", "ListUsers", func(*awsfake.Request) awsfake.Response {
		return awsfake.Query("iam", "ListUsers", `<Users/><IsTruncated>false</IsTruncated>`)
	})
	code, stdout, _ := berth(t, "--output", "json", "accounts", "audit", "--catalog", orgCatalog)
	var fs []struct{ Kind, Account string }
	if err := json.Unmarshal([]byte(stdout), &fs); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if code != ExitNo || len(fs) != 1 || fs[0].Kind != "not-in-catalog" || fs[0].Account != "shadow-it" {
		t.Fatalf("exit %d, findings %+v", code, fs)
	}
	o.Accounts = o.Accounts[:len(o.Accounts)-1]
	if code, stdout, _ := berth(t, "accounts", "audit", "--catalog", orgCatalog); code != 0 || stdout != "no findings\n" {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
}

// TestExampleWorkflowCommands: every berth command line in the example CI
// workflow names a command and flags that exist.
func TestExampleWorkflowCommands(t *testing.T) {
	data, err := os.ReadFile("../../examples/accounts-workflow.yml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		line = strings.TrimPrefix(strings.TrimPrefix(line, "- "), "run: ")
		if !strings.HasPrefix(line, "berth ") {
			continue
		}
		if i := strings.IndexAny(line, ">|"); i >= 0 {
			line = line[:i]
		}
		argv := strings.Fields(line)[1:]
		root := NewRootCommand(&Globals{Env: os.Getenv})
		cmd, rest, err := root.Find(argv)
		if err != nil || cmd == root {
			t.Errorf("%s: no such command: %v", line, err)
			continue
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Errorf("%s: %v", line, err)
		}
		n++
	}
	if n < 4 {
		t.Fatalf("found %d berth commands in the workflow", n)
	}
}
