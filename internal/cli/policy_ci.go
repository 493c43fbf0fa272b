package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/policy"
)

const ciTrustHelp = `

ci-trust prints a CloudFormation template (JSON) rather than a policy: the OIDC
identity provider of GitHub Actions (--provider github --repo OWNER/REPO
[--branch B], default main) or of HCP Terraform (--provider terraform-cloud
--organization O --workspace W), and a role in --account only that repository
and branch, or that workspace, can assume (sub and aud conditions; a wildcard
branch only with --branch-wildcard). Attach the role's permissions yourself
(ManagedPolicyArns). --no-provider leaves the provider out where the account
has one already (IAM keeps one per issuer).`

const ciTrustExample = `
  berth policy render ci-trust --provider github --repo acme/api --branch main --account 111122223333 -o ci.json`

// ciTrustFlags are the flags only ci-trust takes.
var ciTrustFlags = []string{"provider", "repo", "branch", "branch-wildcard", "organization", "workspace", "no-provider"}

func registerCITrustFlags(cmd *cobra.Command, c *policy.CITrustParams) {
	fl := cmd.Flags()
	fl.StringVar(&c.Provider, "provider", "", "ci-trust: github or terraform-cloud")
	fl.StringVar(&c.Repo, "repo", "", "ci-trust github: the one repository, OWNER/REPO")
	fl.StringVar(&c.Branch, "branch", "", "ci-trust github: the one branch that may assume the role (default main)")
	fl.BoolVar(&c.BranchWildcard, "branch-wildcard", false, "ci-trust github: allow * and ? in --branch (every matching branch may assume the role)")
	fl.StringVar(&c.Organization, "organization", "", "ci-trust terraform-cloud: the HCP Terraform organization")
	fl.StringVar(&c.Workspace, "workspace", "", "ci-trust terraform-cloud: the one workspace that may assume the role")
	fl.BoolVar(&c.NoProvider, "no-provider", false, "ci-trust: leave the OIDC provider out of the template (the account has one)")
}

// renderCITrust renders ci-trust; the other kinds' flags are refused, not
// ignored, since a user who passed them expected them to matter.
func (g *Globals) renderCITrust(cmd *cobra.Command, c policy.CITrustParams, p policy.Params, out string) error {
	fl := cmd.Flags()
	for _, name := range []string{"bucket", "prefix", "parameter-prefix", "region", "kms-key", "trust-principal", "external-id", "permissions-boundary", "administrator", "qualifier"} {
		if fl.Changed(name) {
			return usageErr(fmt.Errorf("ci-trust does not take --%s", name))
		}
	}
	c.Account, c.Partition = p.Account, p.Partition
	r, err := policy.RenderCITrust(c)
	if err != nil {
		return usageErr(err)
	}
	return g.writeOut(out, r.Template())
}

// refuseCITrustFlags refuses ci-trust's flags for the other kinds.
func refuseCITrustFlags(cmd *cobra.Command, kind string) error {
	for _, name := range ciTrustFlags {
		if cmd.Flags().Changed(name) {
			return usageErr(fmt.Errorf("--%s is for ci-trust, not %s", name, kind))
		}
	}
	return nil
}
