package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/golden"
)

var ciTrustCases = map[string]CITrustParams{
	"github":          {Provider: ProviderGitHub, Account: "123456789012", Repo: "acme/api", Branch: "main"},
	"github-default":  {Provider: ProviderGitHub, Account: "123456789012", Repo: "acme/api.go"},
	"github-wildcard": {Provider: ProviderGitHub, Account: "123456789012", Repo: "acme/api", Branch: "release/*", BranchWildcard: true},
	"github-existing": {Provider: ProviderGitHub, Account: "123456789012", Repo: "acme/api", Branch: "main", NoProvider: true, Partition: "aws-us-gov"},
	"terraform-cloud": {Provider: ProviderTerraformCloud, Account: "123456789012", Organization: "acme", Workspace: "network-prod"},
}

// TestCITrustGoldenAndLintClean: every rendering matches its golden file
// and berth's own linter finds nothing in it.
func TestCITrustGoldenAndLintClean(t *testing.T) {
	for name, p := range ciTrustCases {
		t.Run(name, func(t *testing.T) {
			c, err := RenderCITrust(p)
			if err != nil {
				t.Fatal(err)
			}
			tmpl := c.Template()
			golden.Check(t, "ci-trust/"+name+".json", tmpl)
			for what, data := range map[string][]byte{"template": tmpl, "trust policy": c.Trust.JSON()} {
				fs, err := Lint(name+".json", data)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range fs {
					t.Errorf("%s: lint finding %s %s: %s", what, f.Severity, f.ID, f.Message)
				}
			}
		})
	}
}

func TestCITrustConditions(t *testing.T) {
	tests := []struct {
		name string
		p    CITrustParams
		want string
	}{
		{"github", ciTrustCases["github"], `"Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com","token.actions.githubusercontent.com:sub":"repo:acme/api:ref:refs/heads/main"}}`},
		{"github wildcard", ciTrustCases["github-wildcard"], `"Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"},"StringLike":{"token.actions.githubusercontent.com:sub":"repo:acme/api:ref:refs/heads/release/*"}}`},
		{"terraform", ciTrustCases["terraform-cloud"], `"Condition":{"StringEquals":{"app.terraform.io:aud":"aws.workload.identity"},"StringLike":{"app.terraform.io:sub":"organization:acme:project:*:workspace:network-prod:run_phase:*"}}`},
		{"partition", ciTrustCases["github-existing"], `"Federated":"arn:aws-us-gov:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"`},
	}
	for _, tt := range tests {
		c, err := RenderCITrust(tt.p)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, _ := json.Marshal(c.Trust)
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: trust\n%s\ndoes not contain\n%s", tt.name, b, tt.want)
		}
	}
}

// withCondition returns the trust policy with condition c instead of its own.
func withCondition(d *Document, c Condition) []byte {
	st := d.Statement[0]
	st.Condition = c
	return doc(st).JSON()
}

// TestCITrustBroadenedIsFlagged: the same trust, widened by hand the ways
// people widen it, is an error for the linter.
func TestCITrustBroadenedIsFlagged(t *testing.T) {
	gh, err := RenderCITrust(ciTrustCases["github"])
	if err != nil {
		t.Fatal(err)
	}
	tf, err := RenderCITrust(ciTrustCases["terraform-cloud"])
	if err != nil {
		t.Fatal(err)
	}
	const key = "token.actions.githubusercontent.com:"
	aud := map[string]Values{key + "aud": {"sts.amazonaws.com"}}
	tests := []struct {
		name string
		doc  []byte
		want string
	}{
		{"sub removed", withCondition(gh.Trust, Condition{"StringEquals": aud}), "oidc-without-sub"},
		{"any repository", withCondition(gh.Trust, Condition{"StringEquals": aud, "StringLike": {key + "sub": {"repo:*"}}}), "oidc-without-sub"},
		{"any owner", withCondition(gh.Trust, Condition{"StringEquals": aud, "StringLike": {key + "sub": {"repo:*/api:*"}}}), "oidc-without-sub"},
		{"sub only if present", withCondition(gh.Trust, Condition{"StringEquals": aud, "StringEqualsIfExists": {key + "sub": {"repo:acme/api:ref:refs/heads/main"}}}), "oidc-without-sub"},
		{"terraform without conditions", withCondition(tf.Trust, nil), "trust-without-condition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := Lint("broad.json", tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range fs {
				found = found || (f.ID == tt.want && f.Severity == SeverityError)
			}
			if !found {
				t.Errorf("no %s error in\n%s\nfindings: %+v", tt.want, tt.doc, fs)
			}
		})
	}
}

func TestCITrustRefusesBadInput(t *testing.T) {
	gh := func(repo, branch string) CITrustParams {
		return CITrustParams{Provider: ProviderGitHub, Account: "123456789012", Repo: repo, Branch: branch}
	}
	tests := []struct {
		name string
		p    CITrustParams
		want string
	}{
		{"no provider", CITrustParams{Account: "123456789012"}, "give --provider"},
		{"unknown provider", CITrustParams{Provider: "gitlab", Account: "123456789012"}, `--provider "gitlab"`},
		{"no account", CITrustParams{Provider: ProviderGitHub, Repo: "acme/api"}, "--account"},
		{"no repo", gh("", ""), "needs --repo"},
		{"repo without owner", gh("api", ""), "OWNER/REPO"},
		{"wildcard owner", gh("*/api", ""), "OWNER/REPO"},
		{"wildcard repo", gh("acme/*", ""), "OWNER/REPO"},
		{"three parts", gh("acme/api/x", ""), "OWNER/REPO"},
		{"dot repo", gh("acme/..", ""), "OWNER/REPO"},
		{"owner with a double hyphen", gh("ac--me/api", ""), "OWNER/REPO"},
		{"wildcard branch", gh("acme/api", "release/*"), "--branch-wildcard"},
		{"question mark branch", gh("acme/api", "v?"), "--branch-wildcard"},
		{"full ref", gh("acme/api", "refs/heads/main"), "without refs/heads/"},
		{"branch with a quote", gh("acme/api", `main"`), "branch name"},
		{"branch with dots", gh("acme/api", "a..b"), "branch name"},
		{"terraform flags on github", CITrustParams{Provider: ProviderGitHub, Account: "123456789012", Repo: "acme/api", Workspace: "w"}, "--provider terraform-cloud"},
		{"github flags on terraform", CITrustParams{Provider: ProviderTerraformCloud, Account: "123456789012", Organization: "acme", Workspace: "w", Branch: "main"}, "--provider github"},
		{"no workspace", CITrustParams{Provider: ProviderTerraformCloud, Account: "123456789012", Organization: "acme"}, "--workspace"},
		{"wildcard workspace", CITrustParams{Provider: ProviderTerraformCloud, Account: "123456789012", Organization: "acme", Workspace: "*"}, "--workspace"},
		{"organization with a colon", CITrustParams{Provider: ProviderTerraformCloud, Account: "123456789012", Organization: "acme:project", Workspace: "w"}, "--organization"},
		{"partition", CITrustParams{Provider: ProviderGitHub, Account: "123456789012", Repo: "acme/api", Partition: "mars"}, "--partition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RenderCITrust(tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RenderCITrust = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// FuzzCITrust: whatever berth accepts, it renders a trust its linter finds
// nothing in, pinned to exactly the repository and branch (or workspace).
func FuzzCITrust(f *testing.F) {
	f.Add("acme/api", "main", false, "", "")
	f.Add("a/b", "release/*", true, "", "")
	f.Add("", "", false, "acme", "prod")
	f.Fuzz(func(t *testing.T, repo, branch string, wildcard bool, org, ws string) {
		p := CITrustParams{Provider: ProviderGitHub, Account: "123456789012", Repo: repo, Branch: branch, BranchWildcard: wildcard}
		if org != "" || ws != "" {
			p = CITrustParams{Provider: ProviderTerraformCloud, Account: "123456789012", Organization: org, Workspace: ws}
		}
		c, err := RenderCITrust(p)
		if err != nil {
			return
		}
		fs, err := Lint("fuzz.json", c.Template())
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) > 0 {
			t.Fatalf("accepted %+v but the linter finds %+v", p, fs)
		}
		b, _ := json.Marshal(c.Trust)
		if p.Provider == ProviderGitHub && strings.Count(string(b), `"repo:`+repo+`:ref:refs/heads/`) != 1 {
			t.Fatalf("the trust does not pin repo %q: %s", repo, b)
		}
	})
}
