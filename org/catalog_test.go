package org_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/org"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// head is a valid preamble the table cases add accounts and classes to.
const head = `version: 1
ous:
  - name: Workloads
    children:
      - name: Dev
      - name: Prod
`

func TestExampleIsValid(t *testing.T) {
	data, err := os.ReadFile("../examples/accounts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := org.Parse("accounts.yaml", data)
	if err != nil {
		t.Fatalf("the example catalog has errors:\n%v", err)
	}
	if len(c.Accounts) != 5 || c.CountOUs() != 6 {
		t.Fatalf("accounts: %d, want 5; OUs: %d, want 6", len(c.Accounts), c.CountOUs())
	}
	dev := c.Accounts[1]
	if dev.Name != "payments-dev" || dev.Budget.Amount != org.DefaultBudget || dev.Budget.Approval != nil || dev.OU != "Workloads/Dev" {
		t.Errorf("payments-dev: %+v", dev)
	}
	prod := c.Accounts[2]
	if prod.Budget.Amount != 2500 || prod.Budget.Approval == nil || prod.Budget.Approval.Ref != "https://github.com/acme/accounts/pull/42" {
		t.Errorf("payments-prod budget: %+v", prod.Budget)
	}
	if !c.Accounts[4].Close {
		t.Error("legacy-dev: close not read")
	}
	esc := c.AccessClasses[org.ClassTeamProd].Escalations
	if len(esc) != 2 || esc[0].MaxDuration != 8*time.Hour || !esc[0].ForbidSelfApproval {
		t.Errorf("team-prod escalations: %+v (forbid_self_approval defaults to true)", esc)
	}
	if st := c.AccessClasses[org.ClassTeamDev].Standing; len(st) != 2 || st[0].Group != "{owner}-developers" {
		t.Errorf("team-dev standing: %+v", st)
	}
	if p := dev.PosOf("email"); p.Line != 26 || p.Column != 12 {
		t.Errorf("payments-dev email position %+v, want 26:12", p)
	}
}

// TestValidate: each case is one mistake; want lists LINE:COL: substring
// of every error expected, in order.
func TestValidate(t *testing.T) {
	acct := func(extra string) string {
		return head + "accounts:\n  - name: app-dev\n    email: aws+app-dev@example.com\n    ou: Workloads/Dev\n    owner: app\n    class: team-dev\n" + extra
	}
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"clean", acct(""), nil},
		{"empty lists", "version: 1\nous:\naccounts:\n", nil},
		{"ous not a list", "version: 1\nous: Workloads\n", []string{"2:6: catalog: ous must be a list"}},
		{"no version", "ous: []\n", []string{"1:1: catalog: version is required"}},
		{"version 2", "version: 2\n", []string{"1:10: catalog: version \"2\" is not supported"}},
		{"top level list", "- a\n", []string{"1:1: catalog must be a mapping"}},
		{"empty file", "", []string{"1:1: the catalog is empty"}},
		{"unknown top key", head + "acounts: []\n", []string{"7:1: catalog: unknown key \"acounts\""}},
		{"unknown account key", acct("    budgte: 900\n"), []string{"13:5: account app-dev: unknown key \"budgte\""}},
		{"duplicate key", acct("    class: team-prod\n"), []string{"13:5: account app-dev: key \"class\" appears twice (first at line 12)"}},
		{"missing email", head + "accounts:\n  - name: x\n    ou: Root\n    owner: a\n    class: team-dev\n", []string{"8:5: account x: email is required"}},
		{"bad email", strings.Replace(acct(""), "aws+app-dev@example.com", "Team <a@example.com>", 1), []string{"9:12: account app-dev: e-mail \"Team <a@example.com>\" is not a plain address"}},
		{"email without domain dot", strings.Replace(acct(""), "aws+app-dev@example.com", "root@localhost", 1), []string{"9:12: account app-dev: e-mail \"root@localhost\" is not a plain address"}},
		{"duplicate email case-insensitive", acct("  - name: app-prod\n    email: AWS+app-dev@example.com\n    ou: Workloads/Prod\n    owner: app\n    class: team-prod\n"),
			[]string{"14:12: account app-prod: e-mail AWS+app-dev@example.com is already used by the account at line 8"}},
		{"duplicate name", acct("  - name: app-dev\n    email: other@example.com\n    ou: Root\n    owner: app\n    class: team-dev\n"),
			[]string{"13:11: account \"app-dev\" appears twice (first at line 8)"}},
		{"bad name", strings.Replace(acct(""), "app-dev\n", "App_Dev\n", 1), []string{"8:11: account \"App_Dev\": names are"}},
		{"unknown ou", strings.Replace(acct(""), "Workloads/Dev", "Workloads/Staging", 1), []string{"10:9: account app-dev: ou \"Workloads/Staging\" is not in the ous tree"}},
		{"unknown class", strings.Replace(acct(""), "class: team-dev", "class: sandbox", 1), []string{"12:12: account app-dev: class \"sandbox\" is unknown"}},
		{"budget above default without approval", acct("    budget:\n      amount: 900\n"), []string{"14:7: account app-dev: a budget of 900 USD is above the default 500 and needs approval"}},
		{"budget approval without ref", acct("    budget:\n      amount: 900\n      approval:\n        by: finance\n"), []string{"16:9: account app-dev budget approval: ref is required"}},
		{"budget at default needs no approval", acct("    budget:\n      amount: 500\n"), nil},
		{"budget not a number", acct("    budget:\n      amount: lots\n"), []string{"14:15: account app-dev: budget amount must be a whole number"}},
		{"budget zero", acct("    budget:\n      amount: 0\n"), []string{"14:15: account app-dev: budget amount must be more than 0"}},
		{"budget in euros", acct("    budget:\n      currency: EUR\n"), []string{"14:17: account app-dev: budget currency \"EUR\" is not supported"}},
		{"close not bool", acct("    close: yes please\n"), []string{"13:12: account app-dev: close must be true or false"}},
		{"aws tag", acct("    tags: {aws:owner: x}\n"), []string{"13:12: account app-dev: tag \"aws:owner\": the aws: prefix is reserved"}},
		{"duplicate ou", head + "  - name: Workloads\n", []string{"7:11: ou \"Workloads\" appears twice under the same parent (first at line 3)"}},
		{"ou named Root", "version: 1\nous:\n  - name: Root\n", []string{"3:11: ou \"Root\": the name Root stands for the organisation's root"}},
		{"two management accounts", head + "accounts:\n  - {name: m1, email: m1@example.com, ou: Root, owner: p, class: management}\n  - {name: m2, email: m2@example.com, ou: Root, owner: p, class: management}\n",
			[]string{"9:5: account m2: only one account can be the management account (m1 at line 8 is already)"}},
		{"standing access to prod", head + "access_classes:\n  team-prod:\n    standing:\n      - group: devs\n        permission_set: ReadOnlyAccess\n",
			[]string{"10:9: access class team-prod: no standing access to production accounts"}},
		{"standing access to management", head + "access_classes:\n  management:\n    standing:\n      - {group: admins, permission_set: AdministratorAccess}\n",
			[]string{"10:9: access class management: no standing access to production accounts"}},
		{"standing access to dev", head + "access_classes:\n  team-dev:\n    standing:\n      - {group: \"{owner}-devs\", permission_set: PowerUserAccess}\n", nil},
		{"unknown placeholder", head + "access_classes:\n  team-dev:\n    standing:\n      - {group: \"{team}-devs\", permission_set: PowerUserAccess}\n",
			[]string{"10:9: access class team-dev: group \"{team}-devs\": the only placeholder is {owner}"}},
		{"unknown access class", head + "access_classes:\n  staging: {}\n", []string{"8:3: access_classes: unknown key \"staging\""}},
		{"escalation too long", head + "access_classes:\n  team-prod:\n    escalations:\n      - {permission_set: Admin, eligible: a, approvers: b, max_duration: 24h}\n",
			[]string{"10:74: access class team-prod escalation: max_duration 24h is out of range: between 15m and 12h"}},
		{"escalation too short", head + "access_classes:\n  team-prod:\n    escalations:\n      - {permission_set: Admin, eligible: a, approvers: b, max_duration: 1m}\n",
			[]string{"10:74: access class team-prod escalation: max_duration 1m is out of range"}},
		{"escalation bad duration", head + "access_classes:\n  team-prod:\n    escalations:\n      - {permission_set: Admin, eligible: a, approvers: b, max_duration: 2 hours}\n",
			[]string{"10:74: access class team-prod escalation: max_duration \"2 hours\" is not a duration"}},
		{"escalation missing approvers", head + "access_classes:\n  team-prod:\n    escalations:\n      - {permission_set: Admin, eligible: a, max_duration: 1h}\n",
			[]string{"10:9: access class team-prod escalation: approvers is required"}},
		{"self approval allowed in prod", head + "access_classes:\n  customer-prod:\n    escalations:\n      - {permission_set: Admin, eligible: a, approvers: a, max_duration: 1h, forbid_self_approval: false}\n",
			[]string{"10:9: access class customer-prod: a may both request and approve Admin while self-approval is allowed"}},
		{"duplicate escalation", head + "access_classes:\n  team-prod:\n    escalations:\n      - {permission_set: Admin, eligible: a, approvers: b, max_duration: 1h}\n      - {permission_set: Admin, eligible: a, approvers: c, max_duration: 2h}\n",
			[]string{"11:9: access class team-prod: an escalation to Admin for a already exists at line 10"}},
		{"bad permission set", head + "access_classes:\n  team-dev:\n    standing:\n      - {group: g, permission_set: \"Power User\"}\n",
			[]string{"10:36: access class team-dev: permission set \"Power User\" is not a valid name"}},
		{"anchor and alias", acct("    tags: &t {a: b}\n  - name: x\n    email: x@example.com\n    ou: Root\n    owner: o\n    class: team-dev\n    tags: *t\n"),
			[]string{"13:11: anchors (&t) are not allowed", "19:11: aliases (*t) are not allowed"}},
		{"explicit tag", acct("    owner2: !!str x\n"), []string{"13:13: explicit tags (!!str) are not allowed"}},
		{"two documents", acct("---\nversion: 1\n"), []string{"13:1: a catalog is one YAML document"}},
		{"several errors at once", head + "accounts:\n  - name: a\n    email: nope\n    ou: Nowhere\n    owner: t\n    class: prod\n",
			[]string{"9:12: account a: e-mail \"nope\"", "10:9: account a: ou \"Nowhere\"", "12:12: account a: class \"prod\" is unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := org.Parse("accounts.yaml", []byte(tt.yaml))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want no errors, got:\n%v", err)
				}
				if c == nil {
					t.Fatal("no catalog returned")
				}
				return
			}
			var es org.Errors
			if !errors.As(err, &es) {
				t.Fatalf("want org.Errors, got %T %v", err, err)
			}
			if !errors.Is(err, org.ErrInvalid) || errors.Is(err, errkind.Invalid) {
				t.Errorf("error kind: %v is not ErrInvalid, or is errkind.Invalid (exit 2, not 1)", err)
			}
			if c != nil {
				t.Error("a catalog with errors was returned")
			}
			if len(es) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(es), len(tt.want), err)
			}
			for i, w := range tt.want {
				got := strings.TrimPrefix(es[i].String(), "accounts.yaml:")
				if !strings.HasPrefix(got, w) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, got, w)
				}
			}
		})
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := org.Parse("accounts.yaml", []byte("version: 1\naccounts:\n  - name: a\n   email: [\n"))
	var se *org.SyntaxError
	if !errors.As(err, &se) || !errors.Is(err, org.ErrSyntax) {
		t.Fatalf("want a *SyntaxError, got %T %v", err, err)
	}
	if errors.Is(err, org.ErrInvalid) || !errors.Is(err, errkind.Invalid) {
		t.Error("a syntax error must not read as an invalid catalog (exit 2, not 1)")
	}
	if se.Line == 0 || !strings.HasPrefix(err.Error(), "accounts.yaml:") {
		t.Errorf("syntax error without a line: %v", err)
	}
}

// TestBadCatalogs checks the corpus under testdata/bad: each catalog's
// errors, printed as FILE:LINE:COL: message, match its .golden file.
func TestBadCatalogs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = org.Parse(filepath.Base(f), data)
			var es org.Errors
			if !errors.As(err, &es) {
				t.Fatalf("want catalog errors, got %v", err)
			}
			var b strings.Builder
			for _, e := range es {
				b.WriteString(e.String() + "\n")
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if b.String() != string(want) {
				t.Errorf("errors differ from %s:\n got:\n%s\nwant:\n%s", golden, b.String(), want)
			}
		})
	}
}

// TestSchemaMatchesParser keeps the published JSON Schema and the parser's
// known keys in step: a key one accepts and the other refuses is a bug.
func TestSchemaMatchesParser(t *testing.T) {
	data, err := os.ReadFile("catalog.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]json.RawMessage) string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return strings.Join(ks, ",")
	}
	// The parser lists its known keys in its unknown-key errors.
	known := func(yaml string) string {
		_, err := org.Parse("x", []byte(yaml))
		msg := err.Error()
		i := strings.Index(msg, "(known: ")
		if i < 0 {
			t.Fatalf("no known keys in %v", err)
		}
		ks := strings.Split(msg[i+len("(known: "):strings.Index(msg[i:], ")")+i], ", ")
		sort.Strings(ks)
		return strings.Join(ks, ",")
	}
	for _, c := range []struct{ def, yaml string }{
		{"", "version: 1\nzz: 1\n"},
		{"ou", "version: 1\nous:\n  - {name: A, zz: 1}\n"},
		{"account", "version: 1\naccounts:\n  - {zz: 1}\n"},
		{"budget", "version: 1\naccounts:\n  - {budget: {zz: 1}}\n"},
		{"standing", "version: 1\naccess_classes: {team-dev: {standing: [{zz: 1}]}}\n"},
		{"escalation", "version: 1\naccess_classes: {team-dev: {escalations: [{zz: 1}]}}\n"},
		{"accessClass", "version: 1\naccess_classes: {team-dev: {zz: 1}}\n"},
	} {
		props := s.Properties
		if c.def != "" {
			props = s.Defs[c.def].Properties
		}
		if got, want := keys(props), known(c.yaml); got != want {
			t.Errorf("schema %q has keys %s, parser knows %s", c.def, got, want)
		}
	}
}
