package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/deploy"
	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/internal/config"
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

// partitionOf returns the partition of an ARN ("aws" when unclear).
func partitionOf(arn string) string {
	if parts := strings.SplitN(arn, ":", 3); len(parts) == 3 && parts[0] == "arn" && parts[1] != "" {
		return parts[1]
	}
	return "aws"
}

// awsTarget is the account, role and regions of the data plane commands.
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

var regionRe = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

func (t *awsTarget) validate() error {
	var missing []string
	for _, f := range []struct{ name, v string }{{"--account", t.account}, {"--external-id", t.externalID}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(t.regions) == 0 {
		missing = append(missing, "--regions")
	}
	if len(missing) > 0 {
		return usageErr(fmt.Errorf("give %s (deploys to an S3-compatible service take --endpoint instead)", strings.Join(missing, ", ")))
	}
	if err := (policy.Params{Account: t.account, ExternalID: t.externalID, Qualifier: t.qualifier}).Validate(); err != nil {
		return usageErr(err)
	}
	seen := map[string]bool{}
	for i, r := range t.regions {
		r = strings.TrimSpace(r)
		t.regions[i] = r
		if !regionRe.MatchString(r) {
			return usageErr(fmt.Errorf("--regions: %q is not an AWS region such as eu-west-1", r))
		}
		if seen[r] {
			return usageErr(fmt.Errorf("--regions: %s is listed twice", r))
		}
		seen[r] = true
	}
	return nil
}

// assume checks the caller's own credentials, then assumes the bootstrap
// role named roleName in the target account with the external ID. The
// returned config's region is the first target region; deployer sets each.
func (g *Globals) assume(ctx context.Context, t *awsTarget, roleName func(cfn.Names) string) (aws.Config, string, error) {
	cfg, id, err := g.awsCaller(ctx, t.regions[0])
	if err != nil {
		return aws.Config{}, "", err
	}
	names, err := cfn.DeriveNames(t.qualifier, "")
	if err != nil {
		return aws.Config{}, "", usageErr(err)
	}
	roleARN := fmt.Sprintf("arn:%s:iam::%s:role/%s", partitionOf(id.ARN), t.account, roleName(names))
	// No session tags: the bootstrap trust policy allows sts:AssumeRole
	// only, and AWS refuses tags without sts:TagSession. The session name
	// (berth-USER) is what CloudTrail in the customer's account shows.
	assumed, err := awsx.AssumeRole(ctx, cfg, awsx.AssumeRoleInput{RoleARN: roleARN, ExternalID: t.externalID,
		Tags: map[string]string{"berth:qualifier": t.qualifier}})
	if err != nil {
		return aws.Config{}, "", err
	}
	g.info("berth: acting as %s", roleARN)
	return assumed, roleARN, nil
}

func provisionerRole(n cfn.Names) string { return n.ProvisionerRole }
func opsRole(n cfn.Names) string         { return n.OpsRole }

// regionRun is one region's part of a data plane command.
type regionRun struct {
	region string
	d      *deploy.Deployer
	stack  deploy.Stack
	plan   *deploy.Plan
	result *deploy.Result
	info   *deploy.StackInfo    // status; nil when the stack does not exist
	drift  *deploy.DriftReport  // drift
	delete *deploy.DeleteResult // destroy
	err    error
}

// forEachRegion runs f for every region at once and waits.
func forEachRegion(runs []*regionRun, f func(r *regionRun)) {
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Go(func() { f(r) })
	}
	wg.Wait()
}

// joinErrs joins the regions' errors in region order.
func joinErrs(runs []*regionRun) error {
	var errs []error
	for _, r := range runs {
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return errors.Join(errs...)
}

// newRuns prepares one Deployer per region; events are prefixed with the
// region and go to stderr.
func (g *Globals) newRuns(cfg aws.Config, regions []string) []*regionRun {
	var mu sync.Mutex
	runs := make([]*regionRun, len(regions))
	for i, r := range regions {
		w := &linePrefixer{mu: &mu, w: g.Stderr, prefix: r + ": "}
		runs[i] = &regionRun{region: r, d: g.deployer(cfg, r, w)}
	}
	return runs
}

// regionalKey returns the KMS key ARN to use in region: the key itself in
// its own region, its replica for a multi-Region key (mrk-), else an error,
// since S3 can only use a key of the bucket's region.
func regionalKey(keyARN, region string) (string, error) {
	if keyARN == "" {
		return "", nil
	}
	parts := strings.SplitN(keyARN, ":", 6)
	if len(parts) != 6 || parts[2] != "kms" {
		return "", fmt.Errorf("--kms-key %q: want arn:aws:kms:REGION:ACCOUNT:key/ID", keyARN)
	}
	if parts[3] == region {
		return keyARN, nil
	}
	if strings.HasPrefix(parts[5], "key/mrk-") {
		parts[3] = region
		return strings.Join(parts, ":"), nil
	}
	return "", fmt.Errorf("--kms-key is in %s and cannot encrypt a bucket in %s: pass a multi-Region key (mrk-...), deploy that region separately, or leave --kms-key out to create a key per region", parts[3], region)
}

func (g *Globals) deployDataPlaneAWS(ctx context.Context, o dataplaneDeployOpts) error {
	t := &o.target
	if err := t.validate(); err != nil {
		return err
	}
	prefix := strings.Trim(o.prefix, "/")
	var stacks []deploy.Stack
	for _, r := range t.regions {
		key, err := regionalKey(o.kmsKey, r)
		if err != nil {
			return usageErr(err)
		}
		body, _, err := cfn.RenderKind("dataplane", cfn.Params{Qualifier: t.qualifier, Prefix: prefix, KMSKeyARN: key}, cfn.JSON)
		if err != nil {
			return usageErr(err)
		}
		stacks = append(stacks, deploy.Stack{
			Name: policy.DataPlaneStackName(t.qualifier), TemplateBody: string(body),
			// The template names its managed policies.
			Capabilities: []string{"CAPABILITY_NAMED_IAM"},
		})
	}
	cfg, roleARN, err := g.assume(ctx, t, provisionerRole)
	if err != nil {
		return err
	}
	bootstrapRegion := o.bootstrapRegion
	if bootstrapRegion == "" {
		bootstrapRegion = t.regions[0]
	}
	if err := g.checkBootstrapVersion(ctx, cfg, bootstrapRegion, t); err != nil {
		return err
	}
	runs := g.newRuns(cfg, t.regions)
	for i, r := range runs {
		r.stack = stacks[i]
	}

	forEachRegion(runs, func(r *regionRun) { r.plan, r.err = r.d.Plan(ctx, r.stack) })
	discard := func() {
		// Best effort: an unexecuted change set costs nothing, but an
		// empty stack left by a CREATE change set would be confusing.
		forEachRegion(runs, func(r *regionRun) {
			if r.plan != nil {
				if err := r.d.Discard(context.WithoutCancel(ctx), r.plan); err != nil {
					g.log.Warn("discard plan", "region", r.region, "err", err)
				}
			}
		})
	}
	if err := joinErrs(runs); err != nil {
		discard()
		return err
	}
	changes := false
	for _, r := range runs {
		changes = changes || !r.plan.NoChanges
		if !g.json() {
			if err := deploy.FormatPlan(g.Stdout, r.plan); err != nil {
				return err
			}
		}
	}
	if changes {
		ok, err := g.confirm(o.yes, fmt.Sprintf("apply these changes in %d region(s)?", len(runs)))
		if err != nil || !ok {
			discard()
			return err
		}
	}
	forEachRegion(runs, func(r *regionRun) { r.result, r.err = r.d.Apply(ctx, r.plan) })
	if err := joinErrs(runs); err != nil {
		var done []string
		for _, r := range runs {
			if r.err == nil {
				done = append(done, r.region)
			}
		}
		if len(done) > 0 {
			g.info("berth: deployed in %s; berth's config was not written: fix the failed region(s) and deploy again", strings.Join(done, ", "))
		}
		return err
	}

	// berth's config: one s3 store per region from the stack's BucketName
	// output, and latest pointers in SSM under /QUALIFIER, the prefix the
	// stack's artifact policies grant (GetParameter on /QUALIFIER/*,
	// PutParameter on /QUALIFIER/*/latest), so readers with the
	// artifact-read policy find the latest version without listing.
	c := &config.Config{Prefix: prefix, Pointers: "ssm:/" + t.qualifier}
	for _, r := range runs {
		bucket := r.result.Outputs["BucketName"]
		if bucket == "" {
			return fmt.Errorf("deploy stack %s in %s: the stack has no BucketName output; is it berth's data plane stack?", r.stack.Name, r.region)
		}
		c.Regions = append(c.Regions, config.Region{Name: r.region, Store: fmt.Sprintf("s3://%s?region=%s", bucket, r.region)})
	}
	cfgPath := g.ConfigPath
	if cfgPath == "" {
		cfgPath = config.DefaultPath(g.Env)
	}
	if err := config.Write(cfgPath, c, true); err != nil {
		return fmt.Errorf("write berth config: %w", err)
	}
	if g.json() {
		type regionOut struct {
			Region string         `json:"region"`
			Plan   *deploy.Plan   `json:"plan"`
			Result *deploy.Result `json:"result"`
		}
		out := struct {
			Account string      `json:"account"`
			Role    string      `json:"role"`
			Regions []regionOut `json:"regions"`
			Config  string      `json:"config"`
		}{Account: t.account, Role: roleARN, Config: cfgPath}
		for _, r := range runs {
			out.Regions = append(out.Regions, regionOut{r.region, r.plan, r.result})
		}
		return g.printJSON(out)
	}
	if !changes {
		fmt.Fprintln(g.Stdout, "no changes: the data plane is as configured")
	}
	fmt.Fprintf(g.Stdout, "\nwrote %s: berth stage now writes to %d region(s)\n", cfgPath, len(runs))
	w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  REGION\tBUCKET\tKEY")
	for _, r := range runs {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", r.region, r.result.Outputs["BucketName"], orDash(r.result.Outputs["KeyArn"]))
	}
	w.Flush()
	first := runs[0].result.Outputs
	if first["ArtifactWritePolicyArn"] != "" {
		fmt.Fprintf(g.Stdout, "\nattach per region: %s for CI (stage), %s for deploy jobs (download)\n",
			strings.ReplaceAll(first["ArtifactWritePolicyArn"], runs[0].region, "REGION"),
			strings.ReplaceAll(first["ArtifactReadPolicyArn"], runs[0].region, "REGION"))
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
			runs, name, err := g.opsRuns(ctx, &t)
			if err != nil {
				return err
			}
			forEachRegion(runs, func(r *regionRun) {
				r.info, r.err = r.d.Status(ctx, name)
				if errors.Is(r.err, deploy.ErrStackNotFound) {
					r.err = nil
				}
			})
			if err := joinErrs(runs); err != nil {
				return err
			}
			if g.json() {
				type regionOut struct {
					Region   string            `json:"region"`
					Deployed bool              `json:"deployed"`
					Stack    *deploy.StackInfo `json:"stack,omitempty"`
				}
				var out []regionOut
				for _, r := range runs {
					out = append(out, regionOut{r.region, r.info != nil, r.info})
				}
				return g.printJSON(out)
			}
			w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "REGION\tSTACK\tSTATUS\tBUCKET\tKEY")
			for _, r := range runs {
				if r.info == nil {
					fmt.Fprintf(w, "%s\t%s\tnot deployed\t-\t-\n", r.region, name)
					continue
				}
				in := r.info
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.region, in.Name, in.Status, orDash(in.Outputs["BucketName"]), orDash(in.Outputs["KeyArn"]))
			}
			return w.Flush()
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
			runs, name, err := g.opsRuns(ctx, &t)
			if err != nil {
				return err
			}
			forEachRegion(runs, func(r *regionRun) { r.drift, r.err = r.d.Drift(ctx, name) })
			if err := joinErrs(runs); err != nil {
				return err
			}
			drifted := 0
			var list []*deploy.DriftReport
			for i, r := range runs {
				rep := r.drift
				list = append(list, rep)
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
				g.info("berth: drift found in %d of %d region(s); deploy again to restore the template's settings", drifted, len(runs))
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
			if err := t.validate(); err != nil {
				return err
			}
			name := policy.DataPlaneStackName(t.qualifier)
			cfg, _, err := g.assume(ctx, &t, provisionerRole)
			if err != nil {
				return err
			}
			if !g.json() {
				fmt.Fprintf(g.Stdout, "delete stack %s in %s; the buckets and keys are kept with their data\n", name, strings.Join(t.regions, ", "))
			}
			ok, err := g.confirm(yes, "delete the data plane stacks?")
			if err != nil || !ok {
				return err
			}
			runs := g.newRuns(cfg, t.regions)
			forEachRegion(runs, func(r *regionRun) { r.delete, r.err = r.d.Delete(ctx, name, nil) })
			if g.json() {
				var list []*deploy.DeleteResult
				for _, r := range runs {
					if r.delete != nil {
						list = append(list, r.delete)
					}
				}
				if err := g.printJSON(list); err != nil {
					return err
				}
			} else {
				for _, r := range runs {
					res := r.delete
					switch {
					case res == nil:
						continue
					case res.NotFound:
						fmt.Fprintf(g.Stdout, "%s: no stack %s, nothing to delete\n", r.region, name)
						continue
					}
					fmt.Fprintf(g.Stdout, "%s: deleted stack %s\n", r.region, name)
					for _, k := range res.Retained {
						fmt.Fprintf(g.Stdout, "%s: kept %s %s (%s): it still holds data and may cost money; delete it yourself if you mean to\n",
							r.region, k.LogicalID, orDash(k.PhysicalID), k.Type)
					}
				}
			}
			return joinErrs(runs)
		},
	}
	t.register(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "delete without asking")
	return cmd
}

// checkBootstrapVersion refuses to deploy through a bootstrap older than
// this berth's: its roles may lack what the data plane template now needs,
// which would fail half-way through a deploy. A version that cannot be read
// (another region, no parameter) is a warning, not a refusal.
func (g *Globals) checkBootstrapVersion(ctx context.Context, cfg aws.Config, region string, t *awsTarget) error {
	rc := cfg.Copy()
	rc.Region = region
	name := policy.BootstrapVersionParameterName(t.qualifier)
	out, err := ssm.NewFromConfig(rc).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		g.info("berth: warning: could not read the bootstrap version %s in %s (%v); pass --bootstrap-region with the bootstrap's region to have it checked",
			name, region, awserr.Code(err))
		return nil
	}
	v, err := strconv.Atoi(aws.ToString(out.Parameter.Value))
	if err != nil {
		return fmt.Errorf("bootstrap version %s in %s holds %q, not a number: %w", name, region, aws.ToString(out.Parameter.Value), store.ErrInvalid)
	}
	if v < cfn.BootstrapVersion {
		return usageErr(fmt.Errorf("the bootstrap in account %s is version %d and this berth needs %d: have the account owner run \"berth bootstrap deploy\" with this berth first", t.account, v, cfn.BootstrapVersion))
	}
	return nil
}

// opsRuns validates the target, assumes the read-only ops role and returns
// one run per region with the data plane stack's name: what status and
// drift share.
func (g *Globals) opsRuns(ctx context.Context, t *awsTarget) ([]*regionRun, string, error) {
	if err := t.validate(); err != nil {
		return nil, "", err
	}
	cfg, _, err := g.assume(ctx, t, opsRole)
	if err != nil {
		return nil, "", err
	}
	return g.newRuns(cfg, t.regions), policy.DataPlaneStackName(t.qualifier), nil
}
