package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/store"
)

func newDataplaneCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataplane",
		Short: "Deploy, inspect and remove the regional data plane (buckets, keys, policies)",
		Long: `The data plane is one artifact bucket per region with its KMS key, the
bucket-name parameter and the artifact-read, artifact-write and configure managed
policies, deployed as the CloudFormation stack QUALIFIER-dataplane in each region
through the roles of the bootstrap stack (see "berth bootstrap deploy").

On an S3-compatible service without CloudFormation, deploy --endpoint creates the
buckets (and, on MinIO, writer and reader identities) directly.

"berth dataplane network" deploys the data plane's VPC and its links (S3 gateway
endpoint, VPC peering, PrivateLink) as the stack QUALIFIER-dataplane-network.`,
		Example: `  berth dataplane deploy --account 111122223333 --external-id 7d1f --regions eu-west-1,us-east-1
  berth dataplane status --account 111122223333 --external-id 7d1f --regions eu-west-1,us-east-1
  berth dataplane deploy --endpoint eu=https://s3.eu.example.com --bucket releases --yes`,
	}
	cmd.AddCommand(newDataplaneDeployCommand(g), newDataplaneStatusCommand(g), newDataplaneDriftCommand(g), newDataplaneDestroyCommand(g))
	cmd.AddCommand(newDataplaneNetworkCommand(g))
	cmd.AddCommand(newDataplaneQuotasCommand(g))
	return cmd
}

type dataplaneDeployOpts struct {
	endpoints    []string
	bucket       string
	prefix       string
	noIdentities bool
	rotate       bool
	credsDir     string
	yes          bool
	cacheBucket  string // --endpoint: the cache bucket
	cacheDays    int

	// AWS (CloudFormation) deploys.
	target          awsTarget
	kmsKey          string
	bootstrapRegion string
}

func newDataplaneDeployCommand(g *Globals) *cobra.Command {
	var o dataplaneDeployOpts
	cmd := &cobra.Command{
		Use:   "deploy (--account ID --external-id ID --regions R1,R2,... | --endpoint NAME=URL...) [--yes]",
		Short: "Deploy the data plane and write berth's config so that stage works at once",
		Long: `deploy sets up one bucket per region and writes berth's configuration.

On AWS (--account, --external-id, --regions): assumes the bootstrap's provisioner
role QUALIFIER-provisioner in the account with the external ID, plans the data
plane stack QUALIFIER-dataplane in every region at once through a change set,
prints every plan, asks once (or --yes), applies in every region at once with each
region's stack events on stderr, and writes berth's config: one store per region,
s3://BUCKET?region=R from the stack's BucketName output, the --prefix, and latest
pointers in SSM under /QUALIFIER, which the stack's policies grant. Without
--kms-key each region's stack creates its own key; a key given with --kms-key must
be in the region, or a multi-Region key (mrk-) with a replica in each region.

With --endpoint (an S3-compatible service such as MinIO, one per region): creates
the bucket with versioning and a lifecycle rule that removes abandoned multipart
uploads (where the service supports them), and where the service has a MinIO
admin API, a writer identity for CI and a reader identity for deploys with the
rendered artifact-write and artifact-read policies. Each new secret is saved to
DIR/USER.env (mode 0600; --credentials-dir, default $XDG_CONFIG_HOME/berth/credentials)
before any server has it, so a deploy that fails later loses none, and the
secrets are printed once at the end. A second deploy creates what is missing and
shows no secrets; --rotate-credentials gives identities that exist already a new
secret (the old one stops working), for a secret that was lost or never shown.

The admin credentials come from the AWS credential chain (AWS_ACCESS_KEY_ID,
--profile). deploy prints the plan and applies it only with --yes or after a yes
at the prompt.`,
		Example: `  berth dataplane deploy --account 111122223333 --external-id 7d1f --regions eu-west-1,us-east-1 --prefix rel
  berth dataplane deploy --endpoint eu-west-1=https://s3.eu.example.com \
      --endpoint us-east-1=https://s3.us.example.com --bucket releases --prefix rel --yes`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			aws := o.target.account != "" || o.target.externalID != "" || len(o.target.regions) > 0 || o.kmsKey != ""
			switch {
			case len(o.endpoints) > 0 && aws:
				return usageErr(errors.New("give either --endpoint (S3-compatible) or --account, --external-id and --regions (AWS), not both"))
			case len(o.endpoints) > 0 && o.noIdentities && (o.rotate || o.credsDir != ""):
				return usageErr(errors.New("--rotate-credentials and --credentials-dir are about identities; drop them or --no-identities"))
			case len(o.endpoints) > 0:
				return g.deployS3Compat(cmd.Context(), o)
			case !aws:
				return usageErr(errors.New("give --account, --external-id and --regions to deploy to AWS, or --endpoint NAME=URL for each region of an S3-compatible service"))
			case cmd.Flags().Changed("bucket") || o.noIdentities || o.rotate || o.credsDir != "" || o.cacheBucket != "":
				return usageErr(errors.New("--bucket, --cache-bucket, --no-identities, --rotate-credentials and --credentials-dir are for --endpoint; on AWS the stack names the buckets QUALIFIER-ACCOUNT-REGION and QUALIFIER-cache-ACCOUNT-REGION"))
			}
			return g.deployDataPlaneAWS(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&o.endpoints, "endpoint", nil, "S3-compatible region as NAME=URL, repeatable, in download order")
	fl.StringVar(&o.bucket, "bucket", "berth-releases", "--endpoint: bucket name in every region")
	fl.StringVar(&o.prefix, "prefix", "", "key prefix for artifacts")
	fl.BoolVar(&o.noIdentities, "no-identities", false, "--endpoint: create buckets only, no writer and reader identities")
	fl.BoolVar(&o.rotate, "rotate-credentials", false, "--endpoint: give existing writer and reader identities new secrets")
	fl.StringVar(&o.credsDir, "credentials-dir", "", "--endpoint: where new secrets are saved, one 0600 file per identity (default $XDG_CONFIG_HOME/berth/credentials)")
	o.target.register(cmd) // --account, --external-id, --regions, --qualifier
	fl.StringVar(&o.kmsKey, "kms-key", "", "AWS: encrypt the buckets with this KMS key instead of one created per region")
	fl.StringVar(&o.bootstrapRegion, "bootstrap-region", "", "AWS: region of the bootstrap stack, whose version is checked (default: the first of --regions)")
	fl.BoolVar(&o.yes, "yes", false, "apply without asking")
	fl.StringVar(&o.cacheBucket, "cache-bucket", "", "--endpoint: also create this cache bucket in every region (for berth cache; no versioning, entries expire)")
	fl.IntVar(&o.cacheDays, "cache-days", 0, "days after which cache entries expire (default 14)")
	return cmd
}

func (g *Globals) deployS3Compat(ctx context.Context, o dataplaneDeployOpts) error {
	var targets []dataplane.Target
	var regions []config.Region
	for _, raw := range o.endpoints {
		ep, err := dataplane.ParseEndpoint(raw)
		if err != nil {
			return usageErr(err)
		}
		cfg, err := awsx.Load(ctx, awsx.Options{Profile: g.Profile, Region: ep.Name})
		if err != nil {
			return fmt.Errorf("%w: %w", err, store.ErrPermissionDenied)
		}
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			return fmt.Errorf("get admin credentials for %s from %s: %w", ep.Name, awsx.CredentialSource(g.Env, g.Profile), store.ErrPermissionDenied)
		}
		t := dataplane.Target{Endpoint: ep, S3: s3.NewFromConfig(cfg, func(so *s3.Options) {
			so.BaseEndpoint = aws.String(ep.URL)
			so.UsePathStyle = true
		})}
		if !o.noIdentities {
			if t.Admin, err = dataplane.NewAdmin(ep.URL, ep.Name, creds); err != nil {
				return err
			}
		}
		targets = append(targets, t)
		regions = append(regions, config.Region{Name: ep.Name, Store: fmt.Sprintf("s3://%s?region=%s&endpoint=%s", o.bucket, ep.Name, ep.URL),
			Cache: cacheURL(o.cacheBucket, ep.Name+"&endpoint="+ep.URL)})
	}
	credsDir := o.credsDir
	if credsDir == "" {
		credsDir = defaultCredentialsDir(g.Env)
	}
	var files []string
	keep := func(ctx context.Context, c dataplane.Credentials) error {
		path, err := saveCredentials(credsDir, o.bucket, c)
		if err != nil {
			return err
		}
		files = append(files, path)
		// Not subject to --quiet: this file is the only copy if a later step fails.
		fmt.Fprintf(g.Stderr, "berth: saved the new secret of the %s identity %s to %s (0600)\n", c.Role, c.AccessKeyID, path)
		return nil
	}
	in := dataplane.S3CompatInput{Targets: targets, Bucket: o.bucket, Prefix: strings.Trim(o.prefix, "/"), Identities: !o.noIdentities,
		Qualifier: o.target.qualifier, RotateCredentials: o.rotate, KeepCredentials: keep,
		CacheBucket: o.cacheBucket, CacheExpirationDays: o.cacheDays}
	plan, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		if errors.Is(err, dataplane.ErrInvalid) {
			return usageErr(err)
		}
		return err
	}
	if !g.json() {
		printS3CompatPlan(g, plan)
	}
	if plan.Changes() {
		ok, err := g.confirm(o.yes, "apply these changes?")
		if err != nil || !ok {
			return err
		}
	}
	res, err := dataplane.ApplyS3Compat(ctx, plan)
	if err != nil {
		return err
	}
	cfgPath := g.ConfigPath
	if cfgPath == "" {
		cfgPath = config.DefaultPath(g.Env)
	}
	c := &config.Config{Prefix: in.Prefix, Pointers: "store", Regions: regions}
	if err := config.Write(cfgPath, c, true); err != nil {
		return fmt.Errorf("write berth config: %w", err)
	}
	if g.json() {
		return g.printJSON(map[string]any{"plan": plan, "result": res, "config": cfgPath, "credentials_files": files})
	}
	for _, s := range res.Unsupported {
		fmt.Fprintf(g.Stdout, "  %s: %s %s: %s\n", s.Region, s.Action, s.Target, s.Note)
	}
	if plan.Changes() {
		fmt.Fprintf(g.Stdout, "applied %d change(s)\n", len(res.Applied))
	}
	fmt.Fprintf(g.Stdout, "wrote %s: berth stage now writes to %d region(s)\n", cfgPath, len(regions))
	if len(res.Credentials) > 0 {
		fmt.Fprintln(g.Stdout, "\nnew identities (the secrets are shown this once; store them now):")
		for _, c := range res.Credentials {
			fmt.Fprintf(g.Stdout, "  %s: AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n", c.Role, c.AccessKeyID, c.SecretAccessKey)
		}
		fmt.Fprintf(g.Stdout, "also saved in %s (0600); delete the files once the secrets are stored elsewhere\n", strings.Join(files, ", "))
	}
	return nil
}

// cacheURL is a region's cache store: "" (the artifact store's _cache/)
// without a cache bucket.
func cacheURL(bucket, query string) string {
	if bucket == "" {
		return ""
	}
	return fmt.Sprintf("s3://%s?region=%s", bucket, query)
}

// defaultCredentialsDir is $XDG_CONFIG_HOME/berth/credentials: in the
// user's own configuration, never beside a ./berth.yaml in a checkout.
func defaultCredentialsDir(env func(string) string) string {
	base := env("XDG_CONFIG_HOME")
	if base == "" || !filepath.IsAbs(base) {
		home := env("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "berth", "credentials")
}

// saveCredentials writes c to DIR/USER.env, readable by the owner only,
// replacing the file at once (temporary file, fsync, rename).
func saveCredentials(dir, bucket string, c dataplane.Credentials) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create credentials directory: %w", err)
	}
	path := filepath.Join(dir, c.AccessKeyID+".env")
	f, err := os.CreateTemp(dir, "."+c.AccessKeyID+".env-*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("save credentials of %s: %w", c.AccessKeyID, err)
	}
	defer os.Remove(f.Name()) // after a successful rename, there is nothing to remove
	body := fmt.Sprintf("# berth %s identity for bucket %s, saved %s\nAWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n",
		c.Role, bucket, time.Now().UTC().Format(time.RFC3339), c.AccessKeyID, c.SecretAccessKey)
	_, err = f.WriteString(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("save credentials of %s to %s: %w", c.AccessKeyID, path, err)
	}
	return path, nil
}

func printS3CompatPlan(g *Globals, p *dataplane.S3CompatPlan) {
	if !p.Changes() {
		fmt.Fprintln(g.Stdout, "no changes: the data plane is as configured")
		return
	}
	fmt.Fprintln(g.Stdout, "plan:")
	w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	for _, s := range p.Steps {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", s.Region, s.Action, s.Target, s.Note)
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(w, "  %s\tskip %s\t%s\t%s\n", s.Region, s.Action, s.Target, s.Note)
	}
	w.Flush()
}

// confirm asks on a terminal unless yes is set; without a terminal it
// refuses, so scripts must say --yes.
func (g *Globals) confirm(yes bool, question string) (bool, error) {
	if yes {
		return true, nil
	}
	if !g.StdinTerminal {
		return false, usageErr(errors.New("not applied: pass --yes to apply without a terminal"))
	}
	fmt.Fprintf(g.Stderr, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(g.Stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a == "y" || a == "yes" {
		return true, nil
	}
	g.info("berth: nothing applied")
	return false, nil
}
