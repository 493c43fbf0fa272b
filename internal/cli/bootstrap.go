package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/deploy"
	"github.com/berth-dev/berth/policy"
)

func newBootstrapCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Deploy and inspect the account bootstrap: the roles a provisioner assumes",
		Long: `The bootstrap stack (QUALIFIER-bootstrap) goes into a dedicated account once, deployed
by the account's owner. It creates two roles that exactly one trusted principal
may assume, and only with an external ID: QUALIFIER-provisioner, least privilege
for deploying and removing the data plane, and QUALIFIER-ops, read-only for status
and drift. The provisioner then runs "berth dataplane deploy" with those roles.`,
		Example: `  berth bootstrap deploy --trust-principal arn:aws:iam::444455556666:role/vendor --external-id 7d1f
  berth bootstrap status`,
	}
	cmd.AddCommand(newBootstrapDeployCommand(g), newBootstrapStatusCommand(g))
	return cmd
}

type bootstrapOpts struct {
	trustPrincipal string
	externalID     string
	qualifier      string
	administrator  bool
	boundary       string
	force          bool
	yes            bool
	region         string
}

// downgradeError refuses to replace a bootstrap stack that a newer berth
// deployed. It matches os.ErrExist, so it exits 3 (conflict, nothing
// changed) with the hint "pass --force to replace it".
type downgradeError struct {
	stack, region  string
	deployed, ours int
}

func (e *downgradeError) Error() string {
	return fmt.Sprintf("deploy bootstrap: stack %s in %s has bootstrap version %d and this berth deploys version %d; refusing to downgrade (use a newer berth, or --force)",
		e.stack, e.region, e.deployed, e.ours)
}

func (e *downgradeError) Unwrap() error { return os.ErrExist }

func newBootstrapDeployCommand(g *Globals) *cobra.Command {
	var o bootstrapOpts
	cmd := &cobra.Command{
		Use:   "deploy --trust-principal ARN --external-id ID [--qualifier Q] [--yes]",
		Short: "Deploy the bootstrap stack into the current account and print what the provisioner needs",
		Long: `deploy deploys the bootstrap stack into the account of the current credentials
(--profile, AWS_PROFILE, AWS_ACCESS_KEY_ID) in --region or AWS_REGION.

It checks the credentials first, refuses to replace a bootstrap that a newer
berth deployed (its BootstrapVersion output is higher) unless --force, prints
the change set as a plan, applies it with --yes or after a yes at the prompt,
streams the stack events to stderr, and prints what to hand to the provisioner:
the account, both role ARNs, the external ID and the bootstrap version.

--administrator gives the provisioner AdministratorAccess instead of the least-
privilege policy, with a warning: the trusted principal could then do anything
in the account. --permissions-boundary sets a boundary on both roles.

Exit 3 when a downgrade was refused, 4 for missing or expired credentials, 5
when CloudFormation failed (the first failing resource and its reason are shown).`,
		Example: `  berth bootstrap deploy --trust-principal arn:aws:iam::444455556666:role/vendor \
      --external-id 7d1f0c2e --region eu-west-1
  berth bootstrap deploy --trust-principal arn:aws:iam::444455556666:root --external-id 7d1f0c2e \
      --qualifier acme --permissions-boundary arn:aws:iam::111122223333:policy/boundary --yes --output json`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.deployBootstrap(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.trustPrincipal, "trust-principal", "", "ARN of the one principal allowed to assume the roles (the provisioner)")
	fl.StringVar(&o.externalID, "external-id", "", "external ID the principal must pass (agreed with the provisioner)")
	fl.StringVar(&o.qualifier, "qualifier", policy.DefaultQualifier, "prefix of every resource name")
	fl.BoolVar(&o.administrator, "administrator", false, "give the provisioner AdministratorAccess (not recommended)")
	fl.StringVar(&o.boundary, "permissions-boundary", "", "managed policy ARN set as both roles' permissions boundary")
	fl.BoolVar(&o.force, "force", false, "deploy even over a bootstrap with a newer version")
	fl.BoolVar(&o.yes, "yes", false, "apply without asking")
	fl.StringVar(&o.region, "region", "", "AWS region of the stack (env AWS_REGION)")
	return cmd
}

func (g *Globals) deployBootstrap(ctx context.Context, o bootstrapOpts) error {
	if o.trustPrincipal == "" || o.externalID == "" {
		return usageErr(errors.New("give --trust-principal and --external-id: the roles trust exactly that principal, and only with that external ID"))
	}
	p := policy.Params{TrustPrincipal: o.trustPrincipal, ExternalID: o.externalID, PermissionsBoundary: o.boundary, Qualifier: o.qualifier}
	if err := p.Validate(); err != nil {
		return usageErr(err)
	}
	body, warnings, err := cfn.RenderKind("bootstrap", cfn.Params{Qualifier: o.qualifier, Administrator: o.administrator, PermissionsBoundary: o.boundary}, cfn.JSON)
	if err != nil {
		return usageErr(err)
	}
	names, err := cfn.DeriveNames(o.qualifier, "")
	if err != nil {
		return usageErr(err)
	}
	for _, w := range warnings {
		fmt.Fprintf(g.Stderr, "berth: warning: %s\n", w)
	}

	cfg, id, err := g.awsCaller(ctx, o.region)
	if err != nil {
		return err
	}
	g.info("berth: deploying as %s in account %s, %s", id.ARN, id.Account, cfg.Region)
	d := g.deployer(cfg, cfg.Region, g.Stderr)

	// Refuse to downgrade: a newer berth may have changed the roles in ways
	// its data plane deploys rely on.
	current, err := d.Status(ctx, names.BootstrapStack)
	switch {
	case errors.Is(err, deploy.ErrStackNotFound):
	case err != nil:
		return err
	default:
		if v, err := strconv.Atoi(current.Outputs["BootstrapVersion"]); err == nil && v > cfn.BootstrapVersion {
			if !o.force {
				return &downgradeError{stack: names.BootstrapStack, region: cfg.Region, deployed: v, ours: cfn.BootstrapVersion}
			}
			fmt.Fprintf(g.Stderr, "berth: warning: replacing bootstrap version %d with the older version %d (--force)\n", v, cfn.BootstrapVersion)
		}
	}

	plan, err := d.Plan(ctx, deploy.Stack{
		Name:         names.BootstrapStack,
		TemplateBody: string(body),
		Parameters:   map[string]string{"TrustPrincipal": o.trustPrincipal, "ExternalId": o.externalID},
		Tags:         map[string]string{policy.QualifierTagKey: o.qualifier},
		// The template names its roles.
		Capabilities: []string{"CAPABILITY_NAMED_IAM"},
	})
	if err != nil {
		return err
	}
	if !g.json() {
		if err := deploy.FormatPlan(g.Stdout, plan); err != nil {
			return err
		}
	}
	if !plan.NoChanges {
		ok, err := g.confirm(o.yes, "apply these changes?")
		if err != nil || !ok {
			if derr := d.Discard(context.WithoutCancel(ctx), plan); derr != nil {
				g.log.Warn("discard plan", "err", derr)
			}
			return err
		}
	}
	res, err := d.Apply(ctx, plan)
	if err != nil {
		return err
	}

	handoff := struct {
		Account          string `json:"account"`
		Region           string `json:"region"`
		Stack            string `json:"stack"`
		ProvisionerRole  string `json:"provisioner_role_arn"`
		OpsRole          string `json:"ops_role_arn"`
		ExternalID       string `json:"external_id"`
		BootstrapVersion string `json:"bootstrap_version"`
		Qualifier        string `json:"qualifier"`
	}{id.Account, cfg.Region, names.BootstrapStack, res.Outputs["ProvisionerRoleArn"], res.Outputs["OpsRoleArn"],
		o.externalID, res.Outputs["BootstrapVersion"], o.qualifier}
	if g.json() {
		return g.printJSON(map[string]any{"plan": plan, "result": res, "provisioner": handoff})
	}
	if plan.NoChanges {
		fmt.Fprintln(g.Stdout, "no changes: the bootstrap is up to date")
	}
	fmt.Fprintf(g.Stdout, "\nhand these to the provisioner:\n")
	w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "  account\t%s\n", handoff.Account)
	fmt.Fprintf(w, "  provisioner role\t%s\n", orDash(handoff.ProvisionerRole))
	fmt.Fprintf(w, "  ops role\t%s\n", orDash(handoff.OpsRole))
	fmt.Fprintf(w, "  external ID\t%s\n", handoff.ExternalID)
	fmt.Fprintf(w, "  bootstrap version\t%s\n", orDash(handoff.BootstrapVersion))
	w.Flush()
	qual := ""
	if o.qualifier != policy.DefaultQualifier {
		qual = " --qualifier " + o.qualifier
	}
	fmt.Fprintf(g.Stdout, "\nthe provisioner then runs:\n  berth dataplane deploy --account %s --external-id %s --regions %s%s\n",
		handoff.Account, handoff.ExternalID, cfg.Region, qual)
	return nil
}

func newBootstrapStatusCommand(g *Globals) *cobra.Command {
	var qualifier, region string
	cmd := &cobra.Command{
		Use:   "status [--qualifier Q] [--region R]",
		Short: "Show the bootstrap stack of the current account: status, version, outputs",
		Long: `status shows the bootstrap stack in the account of the current credentials:
its status, its bootstrap version compared with the one this berth deploys, and
its outputs (the role ARNs).

Exit 1 when there is no bootstrap stack.`,
		Example: "  berth bootstrap status --region eu-west-1\n  berth bootstrap status --qualifier acme --output json",
		Args:    args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			names, err := cfn.DeriveNames(qualifier, "")
			if err != nil {
				return usageErr(err)
			}
			cfg, id, err := g.awsCaller(ctx, region)
			if err != nil {
				return err
			}
			info, err := g.deployer(cfg, cfg.Region, nil).Status(ctx, names.BootstrapStack)
			if errors.Is(err, deploy.ErrStackNotFound) {
				return fmt.Errorf("no bootstrap in account %s: %w; deploy it with berth bootstrap deploy", id.Account, err)
			}
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]any{"account": id.Account, "stack": info, "bootstrap_version": info.Outputs["BootstrapVersion"], "berth_bootstrap_version": cfn.BootstrapVersion})
			}
			fmt.Fprintf(g.Stdout, "stack %s in %s (account %s): %s\n", info.Name, info.Region, id.Account, info.Status)
			if info.StatusReason != "" {
				fmt.Fprintf(g.Stdout, "  %s\n", info.StatusReason)
			}
			v, err := strconv.Atoi(info.Outputs["BootstrapVersion"])
			switch {
			case err != nil:
				fmt.Fprintf(g.Stdout, "bootstrap version: unknown (this berth deploys %d)\n", cfn.BootstrapVersion)
			case v < cfn.BootstrapVersion:
				fmt.Fprintf(g.Stdout, "bootstrap version: %d, older than this berth's %d: run berth bootstrap deploy to upgrade\n", v, cfn.BootstrapVersion)
			case v > cfn.BootstrapVersion:
				fmt.Fprintf(g.Stdout, "bootstrap version: %d, newer than this berth's %d\n", v, cfn.BootstrapVersion)
			default:
				fmt.Fprintf(g.Stdout, "bootstrap version: %d (current)\n", v)
			}
			if len(info.Outputs) > 0 {
				fmt.Fprintln(g.Stdout, "outputs:")
				w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
				for _, k := range sortedKeys(info.Outputs) {
					fmt.Fprintf(w, "  %s\t%s\n", k, info.Outputs[k])
				}
				w.Flush()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&qualifier, "qualifier", policy.DefaultQualifier, "prefix of every resource name")
	cmd.Flags().StringVar(&region, "region", "", "AWS region of the stack (env AWS_REGION)")
	return cmd
}
