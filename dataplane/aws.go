package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/deploy"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/policy"
)

// AWSTarget is the account, regions and qualifier of a data plane deployed
// with CloudFormation through the bootstrap's roles.
type AWSTarget struct {
	Account    string
	ExternalID string
	Regions    []string // in download order
	Qualifier  string
}

var regionRe = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// Validate checks the target and trims its regions; errors are
// errkind.Invalid and name the flag to fix.
func (t *AWSTarget) Validate() error {
	var missing []string
	for _, f := range []struct{ name, v string }{{"--account", t.Account}, {"--external-id", t.ExternalID}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(t.Regions) == 0 {
		missing = append(missing, "--regions")
	}
	if len(missing) > 0 {
		return fmt.Errorf("give %s (deploys to an S3-compatible service take --endpoint instead): %w", strings.Join(missing, ", "), errkind.Invalid)
	}
	if err := (policy.Params{Account: t.Account, ExternalID: t.ExternalID, Qualifier: t.Qualifier}).Validate(); err != nil {
		return fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	seen := map[string]bool{}
	for i, r := range t.Regions {
		r = strings.TrimSpace(r)
		t.Regions[i] = r
		if !regionRe.MatchString(r) {
			return fmt.Errorf("--regions: %q is not an AWS region such as eu-west-1: %w", r, errkind.Invalid)
		}
		if seen[r] {
			return fmt.Errorf("--regions: %s is listed twice: %w", r, errkind.Invalid)
		}
		seen[r] = true
	}
	return nil
}

// StackName is the data plane stack's name in every region.
func (t *AWSTarget) StackName() string { return policy.DataPlaneStackName(t.Qualifier) }

// Role picks one of the bootstrap's roles.
type Role func(cfn.Names) string

// The bootstrap's roles: the provisioner deploys and deletes, ops reads.
var (
	Provisioner Role = func(n cfn.Names) string { return n.ProvisionerRole }
	Ops         Role = func(n cfn.Names) string { return n.OpsRole }
)

// AWS runs data plane operations in the target account through one of the
// bootstrap's roles, in every target region at once.
type AWS struct {
	Target AWSTarget
	// RoleARN is the assumed role.
	RoleARN string
	// Config holds the assumed role's credentials.
	Config aws.Config
	// Events, when set, returns where a region's stack events go.
	Events func(region string) io.Writer
	// Poll is the stack polling interval (deploy's default when zero).
	Poll time.Duration
}

// AssumeAWS assumes role in the target account with the external ID, using
// cfg's credentials (whose caller is callerARN; its partition is used).
// Sessions carry the qualifier as a session tag, which the bootstrap's
// trust policy allows (sts:TagSession, that tag key only), so CloudTrail in
// the customer's account shows which data plane a session worked on.
func AssumeAWS(ctx context.Context, cfg aws.Config, callerARN string, t AWSTarget, role Role) (*AWS, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	names, err := cfn.DeriveNames(t.Qualifier, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	roleARN := fmt.Sprintf("arn:%s:iam::%s:role/%s", PartitionOf(callerARN), t.Account, role(names))
	assumed, err := awsx.AssumeRole(ctx, cfg, awsx.AssumeRoleInput{RoleARN: roleARN, ExternalID: t.ExternalID,
		Tags: map[string]string{"berth:qualifier": t.Qualifier}})
	if err != nil {
		return nil, err
	}
	return &AWS{Target: t, RoleARN: roleARN, Config: assumed}, nil
}

// PartitionOf returns the partition of an ARN ("aws" when unclear).
func PartitionOf(arn string) string {
	if parts := strings.SplitN(arn, ":", 3); len(parts) == 3 && parts[0] == "arn" && parts[1] != "" {
		return parts[1]
	}
	return "aws"
}

// RegionalKey returns the KMS key ARN to use in region: the key itself in
// its own region, its replica for a multi-Region key (mrk-), else an error,
// since S3 can only use a key of the bucket's region.
func RegionalKey(keyARN, region string) (string, error) {
	if keyARN == "" {
		return "", nil
	}
	parts := strings.SplitN(keyARN, ":", 6)
	if len(parts) != 6 || parts[2] != "kms" {
		return "", fmt.Errorf("--kms-key %q: want arn:aws:kms:REGION:ACCOUNT:key/ID: %w", keyARN, errkind.Invalid)
	}
	if parts[3] == region {
		return keyARN, nil
	}
	if strings.HasPrefix(parts[5], "key/mrk-") {
		parts[3] = region
		return strings.Join(parts, ":"), nil
	}
	return "", fmt.Errorf("--kms-key is in %s and cannot encrypt a bucket in %s: pass a multi-Region key (mrk-...), deploy that region separately, or leave --kms-key out to create a key per region: %w", parts[3], region, errkind.Invalid)
}

func (a *AWS) deployer(region string) *deploy.Deployer {
	rc := a.Config.Copy()
	rc.Region = region
	d := &deploy.Deployer{CFN: cloudformation.NewFromConfig(rc), Region: region, Poll: a.Poll}
	if a.Events != nil {
		d.Events = a.Events(region)
	}
	return d
}

// forEachRegion runs f for every target region at once and returns the
// regions' errors joined in region order.
func (a *AWS) forEachRegion(f func(i int, d *deploy.Deployer) error) error {
	errs := make([]error, len(a.Target.Regions))
	var wg sync.WaitGroup
	for i, r := range a.Target.Regions {
		d := a.deployer(r)
		wg.Go(func() { errs[i] = f(i, d) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ErrBootstrapOutdated: the bootstrap's roles are older than this berth's
// templates need; nothing was deployed.
var ErrBootstrapOutdated = errkind.New("bootstrap outdated", errkind.Invalid)

// CheckBootstrapVersion refuses to deploy through a bootstrap older than
// this berth's: its roles may lack what the data plane template now needs,
// which would fail half-way through a deploy. A version that cannot be read
// (another region, no parameter) is not a refusal: the returned warning
// says so.
func (a *AWS) CheckBootstrapVersion(ctx context.Context, region string) (warning string, err error) {
	rc := a.Config.Copy()
	rc.Region = region
	name := policy.BootstrapVersionParameterName(a.Target.Qualifier)
	out, err := ssm.NewFromConfig(rc).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		return fmt.Sprintf("could not read the bootstrap version %s in %s (%v); pass --bootstrap-region with the bootstrap's region to have it checked",
			name, region, awserr.Code(err)), nil
	}
	v, err := strconv.Atoi(aws.ToString(out.Parameter.Value))
	if err != nil {
		return "", fmt.Errorf("bootstrap version %s in %s holds %q, not a number: %w", name, region, aws.ToString(out.Parameter.Value), errkind.Invalid)
	}
	if v < cfn.BootstrapVersion {
		return "", fmt.Errorf("the bootstrap in account %s is version %d and this berth needs %d: have the account owner run \"berth bootstrap deploy\" with this berth first: %w",
			a.Target.Account, v, cfn.BootstrapVersion, ErrBootstrapOutdated)
	}
	return "", nil
}

// DeployInput is what a data plane deploy sets beyond the target.
type DeployInput struct {
	Prefix string // artifact key prefix the policies grant
	KMSKey string // existing key ARN; empty: the stack creates one per region
	// HubPrincipal and HubExternalID, both or neither: the stack adds the
	// artifact roles a berth hub assumes (cfn.Params.HubPrincipal).
	HubPrincipal, HubExternalID string
	// CacheExpirationDays: cache entries expire after this many days (0: the template's default).
	CacheExpirationDays int
}

// RegionDeploy is one region's part of a deploy.
type RegionDeploy struct {
	Region string         `json:"region"`
	Plan   *deploy.Plan   `json:"plan"`
	Result *deploy.Result `json:"result"`
	stack  deploy.Stack
	d      *deploy.Deployer
}

// AWSDeploy is a planned deploy in every region: review Regions' plans,
// then Apply or Discard.
type AWSDeploy struct {
	Regions []*RegionDeploy
}

// PlanDeploy renders the data plane template for every region and creates
// a change set in each; nothing changes until Apply.
func (a *AWS) PlanDeploy(ctx context.Context, in DeployInput) (*AWSDeploy, error) {
	prefix := strings.Trim(in.Prefix, "/")
	p := &AWSDeploy{}
	for _, r := range a.Target.Regions {
		key, err := RegionalKey(in.KMSKey, r)
		if err != nil {
			return nil, err
		}
		body, _, err := cfn.RenderKind("dataplane", cfn.Params{Qualifier: a.Target.Qualifier, Prefix: prefix, KMSKeyARN: key, HubPrincipal: in.HubPrincipal, CacheExpirationDays: in.CacheExpirationDays}, cfn.JSON)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", err, errkind.Invalid)
		}
		var params map[string]string
		if in.HubPrincipal != "" {
			params = map[string]string{cfn.HubExternalIDParameter: in.HubExternalID}
		}
		p.Regions = append(p.Regions, &RegionDeploy{Region: r, d: a.deployer(r), stack: deploy.Stack{
			Name: a.Target.StackName(), TemplateBody: string(body), Parameters: params,
			// The template names its managed policies.
			Capabilities: []string{"CAPABILITY_NAMED_IAM"},
		}})
	}
	err := p.each(func(r *RegionDeploy) (err error) {
		r.Plan, err = r.d.Plan(ctx, r.stack)
		return err
	})
	if err != nil {
		p.Discard(context.WithoutCancel(ctx))
		return nil, err
	}
	return p, nil
}

func (p *AWSDeploy) each(f func(r *RegionDeploy) error) error {
	errs := make([]error, len(p.Regions))
	var wg sync.WaitGroup
	for i, r := range p.Regions {
		wg.Go(func() { errs[i] = f(r) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Changes tells whether any region's plan changes anything.
func (p *AWSDeploy) Changes() bool {
	for _, r := range p.Regions {
		if r.Plan != nil && !r.Plan.NoChanges {
			return true
		}
	}
	return false
}

// Discard deletes the unexecuted change sets. An unexecuted change set
// costs nothing, but the empty stack a CREATE change set leaves would be
// confusing.
func (p *AWSDeploy) Discard(ctx context.Context) error {
	return p.eachPlan("discard plan", func(r *RegionDeploy) error { return r.d.Discard(ctx, r.Plan) })
}

// eachPlan runs f for every region that has a plan, at once.
func (p *AWSDeploy) eachPlan(verb string, f func(r *RegionDeploy) error) error {
	return p.each(func(r *RegionDeploy) error {
		if r.Plan == nil {
			return nil
		}
		if err := f(r); err != nil {
			return fmt.Errorf("%s in %s: %w", verb, r.Region, err)
		}
		return nil
	})
}

// DeleteChangeSets deletes every region's change set, leaving the stacks
// as they are (see deploy.Deployer.DeleteChangeSet): for a plan a newer
// one replaced.
func (p *AWSDeploy) DeleteChangeSets(ctx context.Context) error {
	return p.eachPlan("delete change set", func(r *RegionDeploy) error { return r.d.DeleteChangeSet(ctx, r.Plan) })
}

// Apply executes every region's plan at once and waits. On failure, the
// regions whose Result is set were deployed.
func (p *AWSDeploy) Apply(ctx context.Context) error {
	return p.each(func(r *RegionDeploy) (err error) {
		r.Result, err = r.d.Apply(ctx, r.Plan)
		return err
	})
}

// Bucket is the artifact bucket a deployed region holds.
type Bucket struct {
	Region string
	Name   string
	KeyARN string
	Cache  string // the cache bucket; empty for a stack from before cache buckets
}

// Buckets reads the deployed buckets from the stacks' outputs, in region
// order.
func (p *AWSDeploy) Buckets() ([]Bucket, error) {
	var out []Bucket
	for _, r := range p.Regions {
		if r.Result == nil {
			return nil, fmt.Errorf("stack %s in %s was not deployed", r.stack.Name, r.Region)
		}
		name := r.Result.Outputs["BucketName"]
		if name == "" {
			return nil, fmt.Errorf("deploy stack %s in %s: the stack has no BucketName output; is it berth's data plane stack?", r.stack.Name, r.Region)
		}
		out = append(out, Bucket{Region: r.Region, Name: name, KeyARN: r.Result.Outputs["KeyArn"], Cache: r.Result.Outputs["CacheBucketName"]})
	}
	return out, nil
}

// RegionStatus is one region's data plane stack; Stack is nil when the
// region has none.
type RegionStatus struct {
	Region   string            `json:"region"`
	Deployed bool              `json:"deployed"`
	Stack    *deploy.StackInfo `json:"stack,omitempty"`
}

// Status describes the data plane stack of every region.
func (a *AWS) Status(ctx context.Context) ([]RegionStatus, error) {
	return a.stackStatus(ctx, a.Target.StackName())
}

// stackStatus describes stack name in every target region.
func (a *AWS) stackStatus(ctx context.Context, name string) ([]RegionStatus, error) {
	out := make([]RegionStatus, len(a.Target.Regions))
	err := a.forEachRegion(func(i int, d *deploy.Deployer) error {
		info, err := d.Status(ctx, name)
		if errors.Is(err, deploy.ErrStackNotFound) {
			err = nil
		}
		out[i] = RegionStatus{Region: a.Target.Regions[i], Deployed: info != nil, Stack: info}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Drift runs drift detection on the data plane stack of every region.
func (a *AWS) Drift(ctx context.Context) ([]*deploy.DriftReport, error) {
	out := make([]*deploy.DriftReport, len(a.Target.Regions))
	err := a.forEachRegion(func(i int, d *deploy.Deployer) (err error) {
		out[i], err = d.Drift(ctx, a.Target.StackName())
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Destroy deletes the data plane stack in every region. The template keeps
// the buckets and keys (DeletionPolicy Retain); each result lists them.
// Results are in region order, nil for a region whose delete failed.
func (a *AWS) Destroy(ctx context.Context) ([]*deploy.DeleteResult, error) {
	out := make([]*deploy.DeleteResult, len(a.Target.Regions))
	err := a.forEachRegion(func(i int, d *deploy.Deployer) (err error) {
		out[i], err = d.Delete(ctx, a.Target.StackName(), nil)
		return err
	})
	return out, err
}
