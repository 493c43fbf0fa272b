package policy

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/golden"
)

// renderCases are the parameter sets every renderer is rendered, linted,
// golden-tested and simulated with.
var renderCases = map[string]Params{
	"full": {Bucket: "acme-artifacts", Prefix: "releases", ParameterPrefix: "/berth", Account: "123456789012",
		Region: "eu-west-1", KMSKeyARN: "arn:aws:kms:eu-west-1:123456789012:key/0b2c1f8e-1111-2222-3333-444455556666",
		TrustPrincipal: "arn:aws:iam::210987654321:role/vendor-deployer", ExternalID: "ext-8d1f0c"},
	"minimal": {Bucket: "acme-artifacts", TrustPrincipal: "arn:aws:iam::210987654321:role/vendor-deployer", ExternalID: "ext-8d1f0c",
		ParameterPrefix: "/berth"},
	"boundary": {Bucket: "acme.artifacts", Account: "123456789012", Partition: "aws-us-gov", Qualifier: "acme",
		TrustPrincipal: "arn:aws-us-gov:iam::210987654321:root", ExternalID: "ext-8d1f0c", ParameterPrefix: "/acme",
		PermissionsBoundary: "arn:aws-us-gov:iam::123456789012:policy/boundary"},
}

func TestRenderGolden(t *testing.T) {
	for name, p := range renderCases {
		for _, k := range Kinds {
			r, err := Render(k, p)
			if err != nil {
				t.Errorf("%s/%s: %v", name, k, err)
				continue
			}
			golden.Check(t, "render/"+name+"-"+string(k)+".json", r.JSON())
		}
	}
}

func TestRenderAdministrator(t *testing.T) {
	p := renderCases["full"]
	p.Administrator = true
	r, err := Render(KindProvisioner, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) == 0 || r.Role.Policy != nil || len(r.Role.ManagedPolicyARNs) != 1 {
		t.Errorf("administrator render: warnings %v, policy %v, managed %v", r.Warnings, r.Role.Policy, r.Role.ManagedPolicyARNs)
	}
	golden.Check(t, "render/full-provisioner-administrator.json", r.JSON())
}

func TestRenderErrors(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		p    Params
		want string
	}{
		{KindArtifactRead, Params{}, "bucket is required"},
		{KindArtifactRead, Params{Bucket: "Bad_Bucket"}, "invalid bucket"},
		{KindConfigure, Params{}, "parameter prefix is required"},
		{KindProvisioner, Params{TrustPrincipal: "arn:aws:iam::210987654321:role/x"}, "external ID is required"},
		{KindOps, Params{ExternalID: "abc"}, "trust principal ARN is required"},
		{KindBackend, Params{Bucket: strings.Repeat("b", 60)}, "IAM role name"},
		{KindArtifactRead, Params{Bucket: "b-b-b", Region: "mars"}, "invalid region"},
		{"nope", Params{}, "unknown policy kind"},
	} {
		_, err := Render(c.kind, c.p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Render(%s, %+v) = %v, want error containing %q", c.kind, c.p, err, c.want)
		}
	}
}

// TestActionsDoc keeps the generated tables of ACTIONS.md in step with the
// renderers (rewrite them with -update).
func TestActionsDoc(t *testing.T) {
	data, err := os.ReadFile("ACTIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "## Generated tables\n"
	head, _, ok := strings.Cut(string(data), marker)
	if !ok {
		t.Fatalf("ACTIONS.md has no %q section", strings.TrimSpace(marker))
	}
	var b strings.Builder
	b.WriteString(head + marker)
	type section struct {
		title string
		doc   *Document
	}
	var sections []section
	for _, k := range Kinds {
		r, err := Render(k, renderCases["full"])
		if err != nil {
			t.Fatal(err)
		}
		if r.Policy != nil {
			sections = append(sections, section{string(k), r.Policy})
			continue
		}
		if r.Role.Policy != nil {
			sections = append(sections, section{string(k), r.Role.Policy})
		}
		for _, m := range r.Role.Managed {
			sections = append(sections, section{string(k) + ": " + m.Name, m.Document})
		}
	}
	bd, err := DataPlaneBoundary(renderCases["full"])
	if err != nil {
		t.Fatal(err)
	}
	sections = append(sections, section{"data plane boundary: " + DataPlaneBoundaryName(""), bd})
	for _, sec := range sections {
		fmt.Fprintf(&b, "\n### %s\n\n| Sid | effect | actions | resources | condition |\n|---|---|---|---|---|\n", sec.title)
		for _, s := range sec.doc.Statement {
			var conds []string
			for op, keys := range s.Condition {
				for key, vals := range keys {
					conds = append(conds, op+" "+key+" = "+strings.Join(vals.normalized(), ", "))
				}
			}
			sort.Strings(conds)
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Sid, s.Effect, strings.Join(s.Action.normalized(), ", "),
				strings.Join(s.Resource.normalized(), ", "), strings.Join(conds, "; "))
		}
	}
	// -update is internal/golden's flag.
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile("ACTIONS.md", []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if b.String() != string(data) {
		t.Error("the generated tables of ACTIONS.md are stale: run go test ./policy -run TestActionsDoc -update")
	}
}
