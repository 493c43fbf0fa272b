package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/policy"
	"github.com/berth-dev/berth/store"
)

type checkOpts struct {
	bucket, region, kmsKey, prefix, parameterPrefix string
	role                                            string // writer or reader
	policyFile, principal                           string // offline
}

// checkResult is one line of the report. Field names the flag (or
// "credentials", "permissions") the user has to fix when OK is false.
type checkResult struct {
	Field   string           `json:"field"`
	OK      bool             `json:"ok"`
	Message string           `json:"message"`
	Missing []missingAction  `json:"missing,omitempty"`
	Snippet *policy.Document `json:"snippet,omitempty"` // grants the missing actions
	// kind decides the exit code of a failure: errNo (the account said
	// no), store.ErrPermissionDenied, or store.ErrUnavailable.
	kind error
}

type missingAction struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
	Decision string `json:"decision"`
	stmt     int    // index of the statement of berth's policy that grants it
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
	kind := policy.KindArtifactWrite
	switch o.role {
	case "writer":
	case "reader":
		kind = policy.KindArtifactRead
	default:
		return usageErr(fmt.Errorf("--role %q: use writer or reader", o.role))
	}
	o.prefix = strings.Trim(o.prefix, "/")
	p := policy.Params{Bucket: o.bucket, Prefix: o.prefix, ParameterPrefix: o.parameterPrefix, Region: o.region, KMSKeyARN: o.kmsKey}
	if err := p.Validate(); err != nil {
		return usageErr(fmt.Errorf("check: %w", err))
	}
	var results []checkResult
	if o.policyFile != "" {
		if o.bucket == "" {
			return usageErr(errors.New("--policy needs --bucket: the actions to check are on that bucket"))
		}
		r, err := g.checkOffline(o, kind, p)
		if err != nil {
			return err
		}
		results = append(results, r)
	} else {
		results = g.checkOnline(ctx, o, kind, p)
	}
	return g.reportChecks(results)
}

func (g *Globals) checkOnline(ctx context.Context, o checkOpts, kind policy.Kind, p policy.Params) []checkResult {
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
		return []checkResult{{Field: "credentials", Message: err.Error(), kind: store.ErrPermissionDenied}}
	}
	results := []checkResult{{Field: "credentials", OK: true,
		Message: fmt.Sprintf("%s (account %s) from %s", id.ARN, id.Account, awsx.CredentialSource(g.Env, g.Profile))}}

	bucketRegion := o.region
	if o.bucket != "" {
		r, found := checkBucket(ctx, cfg, o.bucket, o.region)
		results = append(results, r...)
		if found != "" {
			bucketRegion = found
		}
	}
	if o.kmsKey != "" {
		results = append(results, checkKey(ctx, cfg, o.kmsKey, bucketRegion, kind == policy.KindArtifactWrite))
	}
	if o.bucket != "" {
		p.Account, p.Region = id.Account, bucketRegion
		results = append(results, checkSimulated(ctx, cfg, id, kind, p))
	}
	return results
}

// checkBucket asks HeadBucket in the stated region and reads where S3 says
// the bucket is; S3 sends x-amz-bucket-region with success, with the 301 of
// a wrong regional endpoint and with a 403.
func checkBucket(ctx context.Context, cfg aws.Config, bucket, stated string) ([]checkResult, string) {
	out, err := s3.NewFromConfig(cfg).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	actual, status := "", 200
	if err == nil {
		actual = aws.ToString(out.BucketRegion)
	} else {
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			status = re.HTTPStatusCode()
			if re.Response != nil {
				actual = re.Response.Header.Get("X-Amz-Bucket-Region")
			}
		}
	}
	switch {
	case status == 404:
		return []checkResult{{Field: "--bucket", Message: fmt.Sprintf("there is no bucket %s (HeadBucket: 404 Not Found)", bucket), kind: errNo}}, ""
	case actual != "" && stated != "" && actual != stated:
		return []checkResult{
			{Field: "--bucket", OK: true, Message: fmt.Sprintf("bucket %s exists", bucket)},
			{Field: "--region", Message: fmt.Sprintf("bucket %s is in %s, not %s: pass --region %s", bucket, actual, stated, actual), kind: errNo},
		}, actual
	case err == nil:
		where := actual
		if where == "" {
			where = stated
		}
		return []checkResult{{Field: "--bucket", OK: true, Message: fmt.Sprintf("bucket %s exists in %s", bucket, orDash(where))}}, actual
	case status == 403:
		return []checkResult{{Field: "--bucket", Message: fmt.Sprintf("access to bucket %s denied (HeadBucket: 403): the credentials lack s3:ListBucket on it, or it belongs to another account", bucket),
			kind: store.ErrPermissionDenied}}, actual
	}
	return []checkResult{{Field: "--bucket", Message: fmt.Sprintf("check bucket %s: %v", bucket, err), kind: kindOr(err, store.ErrUnavailable)}}, actual
}

// kindOr returns the store kind of an AWS error, or def.
func kindOr(err error, def error) error {
	if k := awserr.Kind(err); k != nil {
		return k
	}
	return def
}

// checkKey describes the key and, for writers, makes a data key with it.
// AccessDenied on these direct calls proves little: berth's policies allow
// the key only through S3 (kms:ViaService), which the simulation checks.
func checkKey(ctx context.Context, cfg aws.Config, keyARN, bucketRegion string, write bool) checkResult {
	keyRegion := strings.SplitN(keyARN, ":", 5)[3]
	if bucketRegion != "" && keyRegion != bucketRegion {
		return checkResult{Field: "--kms-key", Message: fmt.Sprintf("key %s is in %s, the bucket in %s: S3 can only use a key of the bucket's region", keyARN, keyRegion, bucketRegion), kind: errNo}
	}
	kc := cfg.Copy()
	kc.Region = keyRegion
	client := kms.NewFromConfig(kc)
	out, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
	switch {
	case errors.Is(awserr.Classify(err), store.ErrPermissionDenied):
		return checkResult{Field: "--kms-key", OK: true, Message: "not checked: kms:DescribeKey is denied (berth does not need it; the permissions check covers the key)"}
	case errors.Is(awserr.Classify(err), store.ErrNotFound):
		return checkResult{Field: "--kms-key", Message: fmt.Sprintf("there is no key %s", keyARN), kind: errNo}
	case err != nil:
		return checkResult{Field: "--kms-key", Message: fmt.Sprintf("describe key %s: %v", keyARN, err), kind: kindOr(err, store.ErrUnavailable)}
	}
	md := out.KeyMetadata
	if !md.Enabled || md.KeyState != kmstypes.KeyStateEnabled {
		return checkResult{Field: "--kms-key", Message: fmt.Sprintf("key %s is %s: S3 cannot encrypt or decrypt with it", keyARN, md.KeyState), kind: errNo}
	}
	if md.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt || md.KeySpec != kmstypes.KeySpecSymmetricDefault {
		return checkResult{Field: "--kms-key", Message: fmt.Sprintf("key %s is %s %s: S3 needs a symmetric encryption key", keyARN, md.KeySpec, md.KeyUsage), kind: errNo}
	}
	if !write {
		return checkResult{Field: "--kms-key", OK: true, Message: fmt.Sprintf("key %s is enabled", keyARN)}
	}
	_, err = client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyARN), KeySpec: kmstypes.DataKeySpecAes256})
	switch {
	case err == nil:
		return checkResult{Field: "--kms-key", OK: true, Message: fmt.Sprintf("key %s is enabled and makes data keys", keyARN)}
	case errors.Is(awserr.Classify(err), store.ErrPermissionDenied):
		return checkResult{Field: "--kms-key", OK: true, Message: fmt.Sprintf("key %s is enabled; direct kms:GenerateDataKey is denied, as it is when the key is allowed through S3 only", keyARN)}
	}
	return checkResult{Field: "--kms-key", Message: fmt.Sprintf("generate a data key with %s: %v", keyARN, err), kind: kindOr(err, store.ErrUnavailable)}
}

// checkSimulated asks IAM whether the caller may do everything berth's
// policy of that kind grants.
func checkSimulated(ctx context.Context, cfg aws.Config, id awsx.CallerIdentity, kind policy.Kind, p policy.Params) checkResult {
	res := checkResult{Field: "permissions"}
	doc, err := renderForCheck(kind, p)
	if err != nil {
		res.Message, res.kind = err.Error(), errUsage
		return res
	}
	client := iam.NewFromConfig(cfg)
	principal, ok := simulationPrincipal(ctx, client, id.ARN)
	if !ok {
		res.OK, res.Message = true, fmt.Sprintf("not checked: IAM cannot simulate the policies of %s", id.ARN)
		return res
	}
	total := 0
	for i, st := range doc.Statement {
		resources := sampleResources(st.Resource)
		total += len(st.Action) * len(resources)
		in := &iam.SimulatePrincipalPolicyInput{PolicySourceArn: aws.String(principal), ActionNames: st.Action, ResourceArns: resources}
		for _, k := range sortedKeys(sampleContext(st.Condition)) {
			in.ContextEntries = append(in.ContextEntries, iamtypes.ContextEntry{
				ContextKeyName: aws.String(k), ContextKeyType: iamtypes.ContextKeyTypeEnumString,
				ContextKeyValues: []string{sampleContext(st.Condition)[k]},
			})
		}
		for {
			out, err := client.SimulatePrincipalPolicy(ctx, in)
			if err != nil {
				err = awserr.Classify(err)
				res.Message, res.kind = fmt.Sprintf("simulate the policies of %s: %v", principal, err), kindOr(err, store.ErrUnavailable)
				if errors.Is(err, store.ErrPermissionDenied) {
					res.Message += "; the caller needs iam:SimulatePrincipalPolicy on itself for this check (or check a policy file offline with --policy FILE)"
				}
				return res
			}
			for _, r := range out.EvaluationResults {
				action := aws.ToString(r.EvalActionName)
				if len(r.ResourceSpecificResults) > 0 {
					for _, rr := range r.ResourceSpecificResults {
						if rr.EvalResourceDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed {
							res.Missing = append(res.Missing, missingAction{action, aws.ToString(rr.EvalResourceName), string(rr.EvalResourceDecision), i})
						}
					}
					continue
				}
				if r.EvalDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed {
					res.Missing = append(res.Missing, missingAction{action, aws.ToString(r.EvalResourceName), string(r.EvalDecision), i})
				}
			}
			if !out.IsTruncated {
				break
			}
			in.Marker = out.Marker
		}
	}
	return permissionsResult(res, doc, principal, kind, total)
}

// simulationPrincipal is the ARN whose policies IAM simulates: an
// assumed-role session has its role's policies. The role ARN carries the
// role's path (SSO roles live under /aws-reserved/...), which only GetRole
// knows; without iam:GetRole berth guesses the path is "/".
func simulationPrincipal(ctx context.Context, client *iam.Client, arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		return "", false
	}
	res := parts[5]
	switch {
	case strings.HasPrefix(res, "user/") || strings.HasPrefix(res, "role/"):
		return arn, true
	case strings.HasPrefix(res, "assumed-role/"):
		name := strings.SplitN(strings.TrimPrefix(res, "assumed-role/"), "/", 2)[0]
		if out, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)}); err == nil && out.Role != nil {
			return aws.ToString(out.Role.Arn), true
		}
		return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], name), true
	}
	return "", false // root, federated users: IAM simulates users, groups and roles only
}

// renderForCheck renders the policy berth needs, with the resources the
// check will ask about.
func renderForCheck(kind policy.Kind, p policy.Params) (*policy.Document, error) {
	r, err := policy.Render(kind, p)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	return r.Policy, nil
}

// sample stands in for the wildcards of a policy's resources and condition
// values, so simulators get one concrete request that the statement is
// meant to allow.
const sample = "berth-check"

func sampleResources(vs policy.Values) []string {
	var out []string
	for _, v := range vs {
		out = append(out, strings.NewReplacer("*", sample, "?", "x").Replace(v))
	}
	return out
}

// sampleContext gives each condition key a value that satisfies its first
// value: s3:prefix for StringLike "rel/*" becomes "rel/berth-check".
func sampleContext(c policy.Condition) map[string]string {
	out := map[string]string{}
	for _, keys := range c {
		for k, vs := range keys {
			if len(vs) > 0 {
				out[k] = strings.NewReplacer("*", sample, "?", "x").Replace(vs[0])
			}
		}
	}
	return out
}

// permissionsResult turns the missing actions into the report line and a
// policy snippet: the statements of berth's policy that grant them, cut
// down to the missing actions.
func permissionsResult(res checkResult, doc *policy.Document, principal string, kind policy.Kind, total int) checkResult {
	if len(res.Missing) == 0 {
		res.OK = true
		res.Message = fmt.Sprintf("%s may make all %d requests (action on resource) berth's %s policy grants", principal, total, kind)
		return res
	}
	missing := map[string]bool{} // "statement action"
	for _, m := range res.Missing {
		missing[fmt.Sprint(m.stmt, " ", m.Action)] = true
	}
	snippet := &policy.Document{Version: policy.Version2012}
	for i, st := range doc.Statement {
		var actions policy.Values
		for _, a := range st.Action {
			if missing[fmt.Sprint(i, " ", a)] {
				actions = append(actions, a)
			}
		}
		if len(actions) > 0 {
			st.Action = actions
			snippet.Statement = append(snippet.Statement, st)
		}
	}
	res.Snippet = snippet
	res.kind = store.ErrPermissionDenied
	res.Message = fmt.Sprintf("%s may not make %d of the %d requests (action on resource) berth's %s policy grants", principal, len(res.Missing), total, kind)
	return res
}

// checkOffline evaluates the identity policy in a file with berth's own
// simulator; no AWS call is made.
func (g *Globals) checkOffline(o checkOpts, kind policy.Kind, p policy.Params) (checkResult, error) {
	idPolicy, err := readPolicy(o.policyFile)
	if err != nil {
		return checkResult{}, err
	}
	principal := o.principal
	if principal == "" {
		principal = "arn:aws:iam::000000000000:role/" + sample
	}
	account := strings.SplitN(principal, ":", 6)
	if len(account) != 6 {
		return checkResult{}, usageErr(fmt.Errorf("--principal %q: want an IAM role or user ARN", principal))
	}
	p.Account = account[4]
	doc, err := renderForCheck(kind, p)
	if err != nil {
		return checkResult{}, usageErr(err)
	}
	// KMS counts identity policies only when the key policy lets the
	// account's IAM decide, as the default key policy (and the one berth's
	// template writes) does.
	keyPolicy := &policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{
		Effect: "Allow", Principal: policy.AWSPrincipal(fmt.Sprintf("arn:%s:iam::%s:root", partitionOf(principal), p.Account)),
		Action: policy.Values{"kms:*"}, Resource: policy.Values{"*"},
	}}}
	res := checkResult{Field: "permissions"}
	total := 0
	for i, st := range doc.Statement {
		ctxVals := map[string][]string{"aws:PrincipalArn": {principal}}
		for k, v := range sampleContext(st.Condition) {
			ctxVals[k] = []string{v}
		}
		for _, action := range st.Action {
			for _, resource := range sampleResources(st.Resource) {
				total++
				pol := policy.Policies{Identity: []*policy.Document{idPolicy}}
				if strings.HasPrefix(action, "kms:") {
					pol.Resource = keyPolicy
				}
				d, err := policy.Evaluate(policy.Request{Action: action, Resource: resource, Principal: principal, Context: ctxVals}, pol)
				if err != nil {
					return checkResult{}, usageErr(fmt.Errorf("check %s offline: %w", o.policyFile, err))
				}
				if !d.Allowed() {
					res.Missing = append(res.Missing, missingAction{action, resource, string(d.Outcome), i})
				}
			}
		}
	}
	res = permissionsResult(res, doc, principal, kind, total)
	res.Message += " (offline, " + o.policyFile + ")"
	return res, nil
}

// reportChecks prints the results and returns the error whose exit code
// fits the worst failure: credentials and permissions (4) before a "no"
// from the account (1).
func (g *Globals) reportChecks(results []checkResult) error {
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
			kinds = append(kinds, r.kind)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	for _, want := range []error{errUsage, store.ErrPermissionDenied, store.ErrUnavailable} {
		for _, k := range kinds {
			if errors.Is(k, want) {
				if want == errUsage {
					return silence(usageErr(fmt.Errorf("check failed: %s", strings.Join(failed, ", "))))
				}
				return silence(fmt.Errorf("check failed: %s: %w", strings.Join(failed, ", "), want))
			}
		}
	}
	return errNo
}
