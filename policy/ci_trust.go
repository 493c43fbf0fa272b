package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// KindCITrust renders the trust of a CI system's OIDC tokens: an IAM OIDC
// identity provider and a role only one repository and branch (GitHub
// Actions) or one workspace (HCP Terraform) can assume, so pipelines need
// no IAM user and no stored key. It takes CITrustParams, not Params.
const KindCITrust Kind = "ci-trust"

// CI providers.
const (
	ProviderGitHub         = "github"
	ProviderTerraformCloud = "terraform-cloud"
)

// The providers' issuers (host names, which are also their condition key
// prefixes) and the audiences berth pins.
const (
	githubAudience    = "sts.amazonaws.com"
	terraformIssuer   = "app.terraform.io"
	terraformAudience = "aws.workload.identity"
)

// CITrustParams are the inputs of RenderCITrust.
type CITrustParams struct {
	Provider  string // ProviderGitHub or ProviderTerraformCloud
	Account   string // the account that holds the provider and the role
	Partition string // "aws" when empty

	// GitHub.
	Repo   string // OWNER/REPO
	Branch string // "main" when empty
	// BranchWildcard allows * and ? in Branch (release/*); without it a
	// wildcard is refused, so a typo cannot widen the trust.
	BranchWildcard bool

	// HCP Terraform (Terraform Cloud).
	Organization string
	Workspace    string

	// NoProvider leaves the OIDC provider out of the template, for an
	// account that has one already (IAM allows one per issuer).
	NoProvider bool
}

var (
	// GitHub: owners are 1-39 letters, digits and single hyphens;
	// repositories 1-100 letters, digits, '.', '_' and '-'.
	githubOwnerRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)
	githubRepoRe  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	// A branch as git allows it, minus what a condition value cannot
	// hold; * and ? only with BranchWildcard.
	branchRe = regexp.MustCompile(`^[A-Za-z0-9._/+@=,#%-]{1,255}$`)
	// HCP Terraform organization and workspace names.
	tfcNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,90}$`)
)

// Validate checks p; each error names the flag to fix.
func (p *CITrustParams) Validate() error {
	if !accountRe.MatchString(p.Account) {
		return fmt.Errorf("--account %q: give the 12-digit ID of the account that holds the role", p.Account)
	}
	if p.Partition != "" && !partitions[p.Partition] {
		return fmt.Errorf("--partition %q: use aws, aws-cn or aws-us-gov", p.Partition)
	}
	switch p.Provider {
	case ProviderGitHub:
		if p.Organization != "" || p.Workspace != "" {
			return errors.New("--organization and --workspace are for --provider terraform-cloud; GitHub takes --repo and --branch")
		}
		owner, repo, ok := strings.Cut(p.Repo, "/")
		switch {
		case p.Repo == "":
			return errors.New("--provider github needs --repo OWNER/REPO")
		case !ok || !githubOwnerRe.MatchString(owner) || !githubRepoRe.MatchString(repo) || repo == "." || repo == "..":
			return fmt.Errorf("--repo %q: write OWNER/REPO as on GitHub, such as acme/api (no wildcards: the trust is for one repository)", ciClip(p.Repo))
		}
		if p.Branch == "" {
			p.Branch = "main"
		}
		b := p.Branch
		if p.BranchWildcard {
			b = strings.NewReplacer("*", "x", "?", "x").Replace(b)
		} else if strings.ContainsAny(b, "*?") {
			return fmt.Errorf("--branch %q has a wildcard, which lets every matching branch assume the role: name one branch, or pass --branch-wildcard to mean it", ciClip(p.Branch))
		}
		if !branchRe.MatchString(b) || strings.Contains(b, "..") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") ||
			strings.HasPrefix(b, "refs/") {
			return fmt.Errorf("--branch %q: give a branch name such as main or release/2.x (without refs/heads/)", ciClip(p.Branch))
		}
	case ProviderTerraformCloud:
		if p.Repo != "" || p.Branch != "" || p.BranchWildcard {
			return errors.New("--repo and --branch are for --provider github; HCP Terraform takes --organization and --workspace")
		}
		if !tfcNameRe.MatchString(p.Organization) {
			return fmt.Errorf("--organization %q: give the HCP Terraform organization name (letters, digits, '-', '_')", ciClip(p.Organization))
		}
		if !tfcNameRe.MatchString(p.Workspace) {
			return fmt.Errorf("--workspace %q: give one workspace name (letters, digits, '-', '_'; no wildcards)", ciClip(p.Workspace))
		}
	case "":
		return errors.New("give --provider github or --provider terraform-cloud")
	default:
		return fmt.Errorf("--provider %q: use github or terraform-cloud", ciClip(p.Provider))
	}
	return nil
}

// CITrust is a rendered ci-trust: the role's trust policy and the
// provider it names.
type CITrust struct {
	Params CITrustParams
	// Issuer is the provider's URL, https://HOST.
	Issuer   string
	Audience string
	// ProviderARN is the OIDC provider the trust names.
	ProviderARN string
	Trust       *Document
}

// RenderCITrust renders the trust for p (see KindCITrust).
func RenderCITrust(p CITrustParams) (*CITrust, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("render %s: %w", KindCITrust, err)
	}
	part := p.Partition
	if part == "" {
		part = "aws"
	}
	var host, aud, subOp, sub string
	switch p.Provider {
	case ProviderGitHub:
		host, aud = githubOIDC, githubAudience
		subOp, sub = "StringEquals", "repo:"+p.Repo+":ref:refs/heads/"+p.Branch
		if strings.ContainsAny(p.Branch, "*?") {
			subOp = "StringLike"
		}
	case ProviderTerraformCloud:
		// run_phase: plan and apply; project: whichever holds the workspace
		// (a workspace name is unique within an organization).
		host, aud = terraformIssuer, terraformAudience
		subOp, sub = "StringLike", "organization:"+p.Organization+":project:*:workspace:"+p.Workspace+":run_phase:*"
	}
	providerARN := fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", part, p.Account, host)
	cond := Condition{"StringEquals": {host + ":aud": {aud}}}
	if subOp == "StringEquals" {
		cond["StringEquals"][host+":sub"] = Values{sub}
	} else {
		cond[subOp] = map[string]Values{host + ":sub": {sub}}
	}
	trust := doc(Statement{
		Sid:       "CITrust",
		Effect:    "Allow",
		Principal: &Principal{IDs: map[string]Values{"Federated": {providerARN}}},
		Action:    Values{"sts:AssumeRoleWithWebIdentity"},
		Condition: cond,
	})
	return &CITrust{Params: p, Issuer: "https://" + host, Audience: aud, ProviderARN: providerARN, Trust: trust}, nil
}

// Template renders a CloudFormation template (JSON) with the OIDC provider
// (unless NoProvider) and the role; attach the role's permissions (such as
// berth's artifact-write policy) with ManagedPolicyArns or Policies. IAM
// trusts these two issuers' certificates through its own root CAs, so no
// thumbprint is pinned.
func (c *CITrust) Template() []byte {
	type resource struct {
		Type       string
		DependsOn  []string `json:",omitempty"`
		Properties any
	}
	type output struct {
		Description string
		Value       any
	}
	what := "the GitHub repository " + c.Params.Repo + ", branch " + c.Params.Branch
	if c.Params.Provider == ProviderTerraformCloud {
		what = "the HCP Terraform workspace " + c.Params.Organization + "/" + c.Params.Workspace
	}
	resources := map[string]resource{
		"CITrustRole": {Type: "AWS::IAM::Role", Properties: map[string]any{
			"Description":              clipDescription("Assumed by " + what + " through OIDC (berth policy render ci-trust)"),
			"AssumeRolePolicyDocument": c.Trust,
			"MaxSessionDuration":       3600,
		}},
	}
	if !c.Params.NoProvider {
		resources["CIOIDCProvider"] = resource{Type: "AWS::IAM::OIDCProvider", Properties: map[string]any{
			"Url":          c.Issuer,
			"ClientIdList": []string{c.Audience},
		}}
		r := resources["CITrustRole"]
		r.DependsOn = []string{"CIOIDCProvider"}
		resources["CITrustRole"] = r
	}
	tmpl := struct {
		AWSTemplateFormatVersion string
		Description              string
		Resources                map[string]resource
		Outputs                  map[string]output
	}{
		AWSTemplateFormatVersion: "2010-09-09",
		Description:              "berth ci-trust: a role only " + what + " can assume",
		Resources:                resources,
		Outputs: map[string]output{
			"RoleArn": {Description: "the role CI assumes (role-to-assume)", Value: map[string]any{"Fn::GetAtt": []string{"CITrustRole", "Arn"}}},
		},
	}
	b, err := json.Marshal(tmpl)
	if err != nil {
		panic("policy: marshal ci-trust template: " + err.Error())
	}
	var buf bytes.Buffer
	_ = json.Indent(&buf, b, "", "  ")
	buf.WriteByte('\n')
	return buf.Bytes()
}

// clipDescription keeps a role description within IAM's 1000 characters.
func clipDescription(s string) string {
	if len(s) > 1000 {
		return s[:1000]
	}
	return s
}

func ciClip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
