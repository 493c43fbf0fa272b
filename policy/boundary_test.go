package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/golden"
	"github.com/berth-dev/berth/policy/iamdata"
)

// TestIAMConditionKeys checks the provisioner's IAM statements against the
// embedded service reference (AWS's "Actions, resources, and condition keys
// for AWS Identity and Access Management (IAM)" table): every action an
// iam:PermissionsBoundary condition guards takes that key, so the condition
// is never silently ignored; the policy version actions take none, which is
// why they are denied by resource instead.
func TestIAMConditionKeys(t *testing.T) {
	table := iamdata.MustLoad()
	takes := func(action, key string) bool {
		a, ok := table.Action(action)
		if !ok {
			t.Fatalf("%s is not in the IAM table", action)
		}
		for _, k := range a.ConditionKeys {
			if strings.EqualFold(k, key) {
				return true
			}
		}
		return false
	}
	guarded := 0
	for _, s := range iamStatements(renderCases["full"]) {
		for _, keys := range s.Condition {
			for key := range keys {
				for _, a := range s.Action {
					if !takes(a, key) {
						t.Errorf("%s: %s does not take %s: IAM would not apply the condition", s.Sid, a, key)
					}
					if key == "iam:PermissionsBoundary" {
						guarded++
					}
				}
			}
		}
	}
	if guarded < 4 {
		t.Errorf("only %d actions guarded by iam:PermissionsBoundary", guarded)
	}
	for _, a := range []string{"iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:AttachRolePolicy", "iam:PutRolePolicy",
		"iam:UpdateAssumeRolePolicy", "iam:DeleteRolePermissionsBoundary"} {
		if !takes(a, "iam:PermissionsBoundary") {
			t.Errorf("%s no longer takes iam:PermissionsBoundary", a)
		}
	}
	for _, a := range []string{"iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion"} {
		if takes(a, "iam:PermissionsBoundary") {
			t.Errorf("%s now takes iam:PermissionsBoundary: reconsider ProtectBootstrapPolicies", a)
		}
	}
}

// TestDataPlaneBoundaryGolden renders the boundary for each render case; it
// lints clean as a policy document.
func TestDataPlaneBoundaryGolden(t *testing.T) {
	for name, p := range renderCases {
		d, err := DataPlaneBoundary(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		golden.Check(t, "render/"+name+"-dataplane-boundary.json", d.JSON())
		fs, err := Lint(name, d.JSON())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			t.Errorf("%s: %s", name, f)
		}
	}
}

// TestRenderLimits: every rendered policy fits IAM's quotas (see
// MaxManagedPolicySize for the source): a role's managed policies 6,144
// characters each and at most 10 attached, its inline policy 10,240, and
// the plain kinds and the boundary 6,144, as people attach them as managed
// policies. cfn's TestPolicyLimits checks the templates with the longest
// substitutions.
func TestRenderLimits(t *testing.T) {
	for name, p := range renderCases {
		p.Qualifier = strings.Repeat("q", 20)
		p.ParameterPrefix = "/" + p.Qualifier + "/" + strings.Repeat("a", 60)
		for _, k := range Kinds {
			r, err := Render(k, p)
			if err != nil {
				t.Fatalf("%s/%s: %v", name, k, err)
			}
			check := func(what string, d *Document, limit int) {
				if n := d.CompactLen(); n > limit {
					t.Errorf("%s/%s: %s is %d characters; IAM allows %d", name, k, what, n, limit)
				}
			}
			if r.Policy != nil {
				check("the policy", r.Policy, MaxManagedPolicySize)
				continue
			}
			if r.Role.Policy != nil {
				check("the inline policy", r.Role.Policy, MaxRoleInlineSize)
			}
			for _, m := range r.Role.Managed {
				check(m.Name, m.Document, MaxManagedPolicySize)
			}
			if n := len(r.Role.Managed) + len(r.Role.ManagedPolicyARNs); n > MaxAttachedManagedPolicies {
				t.Errorf("%s/%s: %d managed policies; IAM attaches %d", name, k, n, MaxAttachedManagedPolicies)
			}
			check("the trust policy", r.Role.Trust, MaxTrustPolicySize)
		}
		d, err := DataPlaneBoundary(p)
		if err != nil {
			t.Fatal(err)
		}
		if n := d.CompactLen(); n > MaxManagedPolicySize {
			t.Errorf("%s: the boundary is %d characters; IAM allows %d", name, n, MaxManagedPolicySize)
		}
	}
}

// TestLintManagedPolicies: a role file's ManagedPolicies are linted as
// managed policies, and too many attached policies are an error.
func TestLintManagedPolicies(t *testing.T) {
	var keys []string
	for i := 0; i < 70; i++ {
		keys = append(keys, fmt.Sprintf(`"arn:aws:s3:::bucket/%02d%s"`, i, strings.Repeat("k", 90)))
	}
	big := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":[` + strings.Join(keys, ",") + `]}]}`
	role := func(managed string, arns int) string {
		var a []string
		for i := 0; i < arns; i++ {
			a = append(a, `"arn:aws:iam::123456789012:policy/p`+string(rune('a'+i))+`"`)
		}
		return `{"AssumeRolePolicyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]},` +
			`"ManagedPolicyArns":[` + strings.Join(a, ",") + `],"ManagedPolicies":[{"ManagedPolicyName":"x","PolicyDocument":` + managed + `}]}`
	}
	small := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/k"}]}`
	for _, c := range []struct {
		name, data, want string
	}{
		{"fits", role(small, 9), ""},
		{"too large", role(big, 1), "policy-size"},
		{"too many", role(small, 10), "too-many-managed-policies"},
	} {
		fs, err := Lint(c.name, []byte(c.data))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, f := range fs {
			ids = append(ids, f.ID)
		}
		got := strings.Join(ids, ",")
		if (c.want == "" && got != "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: findings %q, want %q", c.name, got, c.want)
		}
	}
}
