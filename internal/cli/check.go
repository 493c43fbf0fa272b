package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/policy"
)

type checkOpts struct {
	bucket, region, kmsKey, prefix, parameterPrefix string
	role                                            string // writer or reader
	policyFile, principal                           string // offline
}

func newCheckCommand(g *Globals) *cobra.Command {
	var o checkOpts
	cmd := &cobra.Command{
		Use:   "check [--bucket B] [--region R] [--kms-key ARN] [--role writer|reader] [--policy FILE]",
		Short: "Check credentials, bucket, region, key and permissions before saving a configuration",
		Long: `check tells, before anything is saved, whether berth will work with the current
credentials (--profile, AWS_PROFILE, AWS_ACCESS_KEY_ID) and the given settings:

  credentials  who the caller is (sts:GetCallerIdentity)
  --bucket     the bucket exists (s3:HeadBucket)
  --region     the bucket is in that region (the x-amz-bucket-region header); a
               wrong region says where the bucket really is
  --kms-key    the key exists, is enabled and in the bucket's region
               (kms:DescribeKey), and for --role writer can make data keys
               (kms:GenerateDataKey); a least-privilege policy that allows the
               key only through S3 makes these calls inconclusive, not failures
  permissions  every action the artifact-write (--role writer) or artifact-read
               (--role reader) policy grants, for this bucket and prefix, asked
               of iam:SimulatePrincipalPolicy for the caller (for an assumed-role
               session, its role); missing actions are listed by name with a
               policy statement that grants them

With --policy FILE, check makes no AWS call: it evaluates the identity policy in
FILE with berth's offline simulator for the same actions (as --principal, by
default a role in account 000000000000).

Exit 0 when every check passed, 1 when a check answered no (no such bucket,
bucket in another region, key disabled), 2 for malformed flags, 4 for missing
or expired credentials and missing permissions (these win over 1).`,
		Example: `  berth check --bucket releases-eu --region eu-west-1 --prefix rel
  berth check --bucket releases-eu --region eu-west-1 --kms-key arn:aws:kms:eu-west-1:111122223333:key/1234 --role reader
  berth check --bucket releases-eu --region eu-west-1 --policy ci-policy.json --output json`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.check(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.bucket, "bucket", "", "artifact bucket")
	fl.StringVar(&o.region, "region", "", "region the bucket should be in (env AWS_REGION)")
	fl.StringVar(&o.kmsKey, "kms-key", "", "KMS key ARN the bucket is encrypted with")
	fl.StringVar(&o.prefix, "prefix", "", "artifact key prefix in the bucket")
	fl.StringVar(&o.parameterPrefix, "parameter-prefix", "", "SSM parameter prefix for latest pointers, such as /berth")
	fl.StringVar(&o.role, "role", "writer", "what the credentials are for: writer (stage) or reader (download)")
	fl.StringVar(&o.policyFile, "policy", "", "check this identity policy FILE offline instead of asking AWS")
	fl.StringVar(&o.principal, "principal", "", "with --policy: the caller's ARN (its account is used in resource ARNs)")
	return cmd
}

func (g *Globals) check(ctx context.Context, o checkOpts) error {
	in := dataplane.CheckInput{Bucket: o.bucket, Region: o.region, KMSKey: o.kmsKey, Prefix: o.prefix,
		ParameterPrefix: o.parameterPrefix, Kind: policy.KindArtifactWrite}
	switch o.role {
	case "writer":
	case "reader":
		in.Kind = policy.KindArtifactRead
	default:
		return usageErr(fmt.Errorf("--role %q: use writer or reader", o.role))
	}
	if _, err := in.Params(); err != nil {
		return usageErr(err)
	}
	if o.policyFile != "" {
		if o.bucket == "" {
			return usageErr(errors.New("--policy needs --bucket: the actions to check are on that bucket"))
		}
		idPolicy, err := readPolicy(o.policyFile)
		if err != nil {
			return err
		}
		r, err := dataplane.CheckOffline(idPolicy, o.policyFile, o.principal, in)
		if err != nil {
			return usageErr(err)
		}
		return g.reportChecks([]dataplane.CheckResult{r})
	}
	cfg, id, err := g.awsCaller(ctx, o.region)
	if errors.Is(err, errUsage) && o.region == "" {
		// No region anywhere: STS and IAM answer from any region, and
		// HeadBucket tells where the bucket is.
		cfg, err = awsx.Load(ctx, awsx.Options{Profile: g.Profile, Region: "us-east-1"})
		if err == nil {
			id, err = awsx.Identity(ctx, cfg, awsx.CredentialSource(g.Env, g.Profile))
		}
	}
	if err != nil {
		return g.reportChecks([]dataplane.CheckResult{{Field: "credentials", Message: err.Error(), Kind: errkind.PermissionDenied}})
	}
	results, err := dataplane.Check(ctx, cfg, id, awsx.CredentialSource(g.Env, g.Profile), in)
	if err != nil {
		return err
	}
	return g.reportChecks(results)
}

// reportChecks prints the results and returns the error whose exit code
// fits the worst failure: credentials and permissions (4) before a "no"
// from the account (1).
func (g *Globals) reportChecks(results []dataplane.CheckResult) error {
	if g.json() {
		ok := true
		for _, r := range results {
			ok = ok && r.OK
		}
		if err := g.printJSON(map[string]any{"ok": ok, "checks": results}); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
		for _, r := range results {
			mark := "ok"
			if !r.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", mark, r.Field, r.Message)
		}
		w.Flush()
		for _, r := range results {
			if len(r.Missing) == 0 {
				continue
			}
			sort.SliceStable(r.Missing, func(i, j int) bool { return r.Missing[i].Action < r.Missing[j].Action })
			fmt.Fprintln(g.Stdout, "\nmissing:")
			mw := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			for _, m := range r.Missing {
				fmt.Fprintf(mw, "  %s\ton %s\t%s\n", m.Action, m.Resource, m.Decision)
			}
			mw.Flush()
			if r.Snippet != nil {
				fmt.Fprintln(g.Stdout, "\npolicy statements that grant them:")
				g.Stdout.Write(r.Snippet.JSON())
			}
		}
	}
	var failed []string
	var kinds []error
	for _, r := range results {
		if !r.OK {
			failed = append(failed, r.Field)
			kinds = append(kinds, r.Kind)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	for _, want := range []error{errkind.Invalid, errkind.PermissionDenied, errkind.Unavailable} {
		for _, k := range kinds {
			if errors.Is(k, want) {
				if want == errkind.Invalid {
					return silence(usageErr(fmt.Errorf("check failed: %s", strings.Join(failed, ", "))))
				}
				return silence(fmt.Errorf("check failed: %s: %w", strings.Join(failed, ", "), want))
			}
		}
	}
	return errNo
}
