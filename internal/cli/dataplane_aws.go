package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/deploy"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/policy"
	"github.com/berth-dev/berth/store"
)

// awsCaller loads the AWS configuration for region (empty: AWS_REGION or the
// profile's) and asks STS who the caller is, so that missing or expired
// credentials fail first, with a message that names where they came from.
func (g *Globals) awsCaller(ctx context.Context, region string) (aws.Config, awsx.CallerIdentity, error) {
	cfg, err := awsx.Load(ctx, awsx.Options{Profile: g.Profile, Region: region})
	if err != nil {
		return aws.Config{}, awsx.CallerIdentity{}, fmt.Errorf("%w: %w", err, store.ErrPermissionDenied)
	}
	if cfg.Region == "" {
		return aws.Config{}, awsx.CallerIdentity{}, usageErr(errors.New("no AWS region: pass --region or set AWS_REGION"))
	}
	id, err := awsx.Identity(ctx, cfg, awsx.CredentialSource(g.Env, g.Profile))
	if err != nil {
		return aws.Config{}, awsx.CallerIdentity{}, err
	}
	g.log.Debug("caller", "arn", id.ARN, "account", id.Account, "region", cfg.Region)
	return cfg, id, nil
}

// deployer returns a Deployer for cfg in region whose events go to w.
func (g *Globals) deployer(cfg aws.Config, region string, w io.Writer) *deploy.Deployer {
	rc := cfg.Copy()
	rc.Region = region
	d := &deploy.Deployer{CFN: cloudformation.NewFromConfig(rc), Region: region, Poll: g.StackPoll}
	if !g.Quiet && w != nil {
		d.Events = w
	}
	return d
}

// linePrefixer puts a prefix before every line written to w. Deployers
// write one whole line per Write, so lines of several regions sharing one
// mutex never mix.
type linePrefixer struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			out.WriteString(p.prefix)
			out.WriteString(line)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// awsTarget holds the flags that name the account, role and regions of the
// data plane commands.
type awsTarget struct {
	account    string
	externalID string
	regions    []string
	qualifier  string
}

func (t *awsTarget) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&t.account, "account", "", "AWS account ID (12 digits) that holds the bootstrap stack")
	fl.StringVar(&t.externalID, "external-id", "", "external ID the bootstrap roles require (from berth bootstrap deploy)")
	fl.StringSliceVar(&t.regions, "regions", nil, "regions, comma-separated, in download order")
	fl.StringVar(&t.qualifier, "qualifier", policy.DefaultQualifier, "prefix of every resource name; the bootstrap's qualifier")
}

func (t *awsTarget) target() dataplane.AWSTarget {
	return dataplane.AWSTarget{Account: t.account, ExternalID: t.externalID, Regions: t.regions, Qualifier: t.qualifier}
}

// assume checks the target and the caller's own credentials, then assumes
// the bootstrap's role in the target account. Stack events go to stderr,
// each line prefixed with its region.
func (g *Globals) assume(ctx context.Context, t *awsTarget, role dataplane.Role) (*dataplane.AWS, error) {
	target := t.target()
	if err := target.Validate(); err != nil {
		return nil, err
	}
	cfg, id, err := g.awsCaller(ctx, target.Regions[0])
	if err != nil {
		return nil, err
	}
	a, err := dataplane.AssumeAWS(ctx, cfg, id.ARN, target, role)
	if err != nil {
		return nil, err
	}
	g.info("berth: acting as %s", a.RoleARN)
	a.Poll = g.StackPoll
	if !g.Quiet {
		var mu sync.Mutex
		a.Events = func(region string) io.Writer { return &linePrefixer{mu: &mu, w: g.Stderr, prefix: region + ": "} }
	}
	return a, nil
}

func (g *Globals) deployDataPlaneAWS(ctx context.Context, o dataplaneDeployOpts) error {
	target := o.target.target()
	if err := target.Validate(); err != nil {
		return err
	}
	for _, r := range target.Regions {
		if _, err := dataplane.RegionalKey(o.kmsKey, r); err != nil {
			return err // before any AWS call
		}
	}
	a, err := g.assume(ctx, &o.target, dataplane.Provisioner)
	if err != nil {
		return err
	}
	bootstrapRegion := o.bootstrapRegion
	if bootstrapRegion == "" {
		bootstrapRegion = target.Regions[0]
	}
	warning, err := a.CheckBootstrapVersion(ctx, bootstrapRegion)
	if err != nil {
		return err
	}
	if warning != "" {
		g.info("berth: warning: %s", warning)
	}
	plan, err := a.PlanDeploy(ctx, dataplane.DeployInput{Prefix: o.prefix, KMSKey: o.kmsKey, CacheExpirationDays: o.cacheDays})
	if err != nil {
		return err
	}
	discard := func() {
		if err := plan.Discard(context.WithoutCancel(ctx)); err != nil {
			g.log.Warn("discard plan", "err", err)
		}
	}
	if !g.json() {
		for _, r := range plan.Regions {
			if err := deploy.FormatPlan(g.Stdout, r.Plan); err != nil {
				return err
			}
		}
	}
	if plan.Changes() {
		ok, err := g.confirm(o.yes, fmt.Sprintf("apply these changes in %d region(s)?", len(plan.Regions)))
		if err != nil || !ok {
			discard()
			return err
		}
	}
	if err := plan.Apply(ctx); err != nil {
		var done []string
		for _, r := range plan.Regions {
			if r.Result != nil {
				done = append(done, r.Region)
			}
		}
		if len(done) > 0 {
			g.info("berth: deployed in %s; berth's config was not written: fix the failed region(s) and deploy again", strings.Join(done, ", "))
		}
		return err
	}
	buckets, err := plan.Buckets()
	if err != nil {
		return err
	}

	// berth's config: one s3 store per region, and latest pointers in SSM
	// under /QUALIFIER, the prefix the stack's artifact policies grant
	// (GetParameter on /QUALIFIER/*, PutParameter on /QUALIFIER/*/latest),
	// so readers with the artifact-read policy find the latest version
	// without listing.
	c := &config.Config{Prefix: strings.Trim(o.prefix, "/"), Pointers: "ssm:/" + target.Qualifier}
	for _, b := range buckets {
		c.Regions = append(c.Regions, config.Region{Name: b.Region, Store: fmt.Sprintf("s3://%s?region=%s", b.Name, b.Region), Cache: cacheURL(b.Cache, b.Region)})
	}
	cfgPath := g.ConfigPath
	if cfgPath == "" {
		cfgPath = config.DefaultPath(g.Env)
	}
	if err := config.Write(cfgPath, c, true); err != nil {
		return fmt.Errorf("write berth config: %w", err)
	}
	if g.json() {
		return g.printJSON(struct {
			Account string                    `json:"account"`
			Role    string                    `json:"role"`
			Regions []*dataplane.RegionDeploy `json:"regions"`
			Config  string                    `json:"config"`
		}{target.Account, a.RoleARN, plan.Regions, cfgPath})
	}
	if !plan.Changes() {
		fmt.Fprintln(g.Stdout, "no changes: the data plane is as configured")
	}
	fmt.Fprintf(g.Stdout, "\nwrote %s: berth stage now writes to %d region(s)\n", cfgPath, len(buckets))
	w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  REGION\tBUCKET\tKEY")
	for _, b := range buckets {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", b.Region, b.Name, orDash(b.KeyARN))
	}
	w.Flush()
	first := plan.Regions[0]
	if arn := first.Result.Outputs["ArtifactWritePolicyArn"]; arn != "" {
		fmt.Fprintf(g.Stdout, "\nattach per region: %s for CI (stage), %s for deploy jobs (download)\n",
			strings.ReplaceAll(arn, first.Region, "REGION"),
			strings.ReplaceAll(first.Result.Outputs["ArtifactReadPolicyArn"], first.Region, "REGION"))
	}
	if arn := first.Result.Outputs["CacheWritePolicyArn"]; arn != "" {
		fmt.Fprintf(g.Stdout, "for berth cache: %s (save), %s (restore)\n", strings.ReplaceAll(arn, first.Region, "REGION"),
			strings.ReplaceAll(first.Result.Outputs["CacheReadPolicyArn"], first.Region, "REGION"))
	}
	return nil
}

func newDataplaneStatusCommand(g *Globals) *cobra.Command {
	var t awsTarget
	cmd := &cobra.Command{
		Use:   "status --account ID --external-id ID --regions R1,R2,...",
		Short: "Show the data plane stack of every region: status, bucket, key",
		Long: `status assumes the bootstrap's read-only ops role in the account and shows the
data plane stack of each region: its status, bucket, KMS key and outputs. A region
without the stack shows "not deployed".`,
		Example: "  berth dataplane status --account 111122223333 --external-id 7d1f --regions eu-west-1,us-east-1\n" +
			"  berth dataplane status --account 111122223333 --external-id 7d1f --regions eu-west-1 --output json",
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, err := g.assume(ctx, &t, dataplane.Ops)
			if err != nil {
				return err
			}
			list, err := a.Status(ctx)
			if err != nil {
				return err
			}
			return g.printStacks(list, a.Target.StackName(), "BUCKET", "BucketName", "KEY", "KeyArn")
		},
	}
	t.register(cmd)
	return cmd
}

func newDataplaneDriftCommand(g *Globals) *cobra.Command {
	var t awsTarget
	cmd := &cobra.Command{
		Use:   "drift --account ID --external-id ID --regions R1,R2,...",
		Short: "Detect changes made to the data plane outside berth",
		Long: `drift assumes the bootstrap's read-only ops role and runs CloudFormation drift
detection on the data plane stack of every region at once, then prints for each
region every resource and, for each drifted one, the properties that differ from
the template.

Exit 0 when every region is in sync, 1 when drift was found.`,
		Example: "  berth dataplane drift --account 111122223333 --external-id 7d1f --regions eu-west-1,us-east-1",
		Args:    args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, err := g.assume(ctx, &t, dataplane.Ops)
			if err != nil {
				return err
			}
			list, err := a.Drift(ctx)
			if err != nil {
				return err
			}
			drifted := 0
			for i, rep := range list {
				if rep.Drifted > 0 {
					drifted++
				}
				if g.json() {
					continue
				}
				if i > 0 {
					fmt.Fprintln(g.Stdout)
				}
				if err := deploy.FormatDrift(g.Stdout, rep); err != nil {
					return err
				}
			}
			if g.json() {
				if err := g.printJSON(list); err != nil {
					return err
				}
			}
			if drifted > 0 {
				g.info("berth: drift found in %d of %d region(s); deploy again to restore the template's settings", drifted, len(list))
				return errNo
			}
			return nil
		},
	}
	t.register(cmd)
	return cmd
}

func newDataplaneDestroyCommand(g *Globals) *cobra.Command {
	var t awsTarget
	var yes bool
	cmd := &cobra.Command{
		Use:   "destroy --account ID --external-id ID --regions R1,R2,... [--yes]",
		Short: "Delete the data plane stacks; the buckets and keys, with their data, are kept",
		Long: `destroy deletes the data plane stack in every region through the provisioner
role. The artifact bucket and the KMS key have DeletionPolicy Retain in the
template: CloudFormation keeps them, with every artifact, and destroy lists what
was kept. The managed policies and the bucket-name parameter are deleted.

berth never deletes artifact data: the provisioner role has no s3:DeleteBucket
or kms:ScheduleKeyDeletion. To remove the data, the account owner empties and
deletes the kept buckets and schedules the keys' deletion.`,
		Example: "  berth dataplane destroy --account 111122223333 --external-id 7d1f --regions eu-west-1,us-east-1 --yes",
		Args:    args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			target := t.target()
			if err := target.Validate(); err != nil {
				return err
			}
			name := target.StackName()
			a, err := g.assume(ctx, &t, dataplane.Provisioner)
			if err != nil {
				return err
			}
			if !g.json() {
				fmt.Fprintf(g.Stdout, "delete stack %s in %s; the buckets and keys are kept with their data\n", name, strings.Join(target.Regions, ", "))
			}
			ok, err := g.confirm(yes, "delete the data plane stacks?")
			if err != nil || !ok {
				return err
			}
			results, err := a.Destroy(ctx)
			if g.json() {
				var list []*deploy.DeleteResult
				for _, res := range results {
					if res != nil {
						list = append(list, res)
					}
				}
				if err := g.printJSON(list); err != nil {
					return err
				}
				return err
			}
			for i, res := range results {
				region := target.Regions[i]
				switch {
				case res == nil:
					continue
				case res.NotFound:
					fmt.Fprintf(g.Stdout, "%s: no stack %s, nothing to delete\n", region, name)
					continue
				}
				fmt.Fprintf(g.Stdout, "%s: deleted stack %s\n", region, name)
				for _, k := range res.Retained {
					fmt.Fprintf(g.Stdout, "%s: kept %s %s (%s): it still holds data and may cost money; delete it yourself if you mean to\n",
						region, k.LogicalID, orDash(k.PhysicalID), k.Type)
				}
			}
			return err
		},
	}
	t.register(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "delete without asking")
	return cmd
}

// printStacks prints the stacks of a status command: JSON, or a table of
// region, stack, status and the outputs named by label/key pairs.
func (g *Globals) printStacks(list []dataplane.RegionStatus, stack string, columns ...string) error {
	if g.json() {
		return g.printJSON(list)
	}
	w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprint(w, "REGION\tSTACK\tSTATUS")
	for i := 0; i < len(columns); i += 2 {
		fmt.Fprint(w, "\t"+columns[i])
	}
	fmt.Fprintln(w)
	for _, r := range list {
		name, status := stack, "not deployed"
		if r.Stack != nil {
			name, status = r.Stack.Name, r.Stack.Status
		}
		fmt.Fprintf(w, "%s\t%s\t%s", r.Region, name, status)
		for i := 1; i < len(columns); i += 2 {
			v := ""
			if r.Stack != nil {
				v = r.Stack.Outputs[columns[i]]
			}
			fmt.Fprint(w, "\t"+orDash(v))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}
