package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/policy"
)

// ErrCheckFailed is the kind of a check the account answered with no: no
// such bucket, bucket in another region, key disabled.
var ErrCheckFailed = errors.New("check failed")

// CheckInput is what a check asks about: the bucket and key berth will use
// and the policy kind (artifact-write or artifact-read) the caller needs.
type CheckInput struct {
	Bucket, Region, KMSKey, Prefix, ParameterPrefix string
	Kind                                            policy.Kind
}

// Params returns the policy parameters of the input, validated.
func (in CheckInput) Params() (policy.Params, error) {
	p := policy.Params{Bucket: in.Bucket, Prefix: strings.Trim(in.Prefix, "/"), ParameterPrefix: in.ParameterPrefix, Region: in.Region, KMSKeyARN: in.KMSKey}
	if err := p.Validate(); err != nil {
		return policy.Params{}, fmt.Errorf("check: %w: %w", err, errkind.Invalid)
	}
	return p, nil
}

// CheckResult is one check. Field names the flag (or "credentials",
// "permissions") the user has to fix when OK is false.
type CheckResult struct {
	Field   string           `json:"field"`
	OK      bool             `json:"ok"`
	Message string           `json:"message"`
	Missing []MissingAction  `json:"missing,omitempty"`
	Snippet *policy.Document `json:"snippet,omitempty"` // grants the missing actions
	// Kind says what a failure is: ErrCheckFailed (the account said no),
	// errkind.PermissionDenied, errkind.Unavailable or errkind.Invalid.
	Kind error `json:"-"`
}

// MissingAction is a request berth's policy grants that the caller may not
// make.
type MissingAction struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
	Decision string `json:"decision"`
	stmt     int    // index of the statement of berth's policy that grants it
}

// Check asks AWS, as the caller whose credentials cfg holds (id, loaded
// from source), whether berth will work with in: the caller, the bucket
// and its region, the key, and every request berth's policy of in.Kind
// grants (iam:SimulatePrincipalPolicy). It makes no change.
func Check(ctx context.Context, cfg aws.Config, id awsx.CallerIdentity, source string, in CheckInput) ([]CheckResult, error) {
	p, err := in.Params()
	if err != nil {
		return nil, err
	}
	results := []CheckResult{{Field: "credentials", OK: true,
		Message: fmt.Sprintf("%s (account %s) from %s", id.ARN, id.Account, source)}}
	bucketRegion := in.Region
	if in.Bucket != "" {
		r, found := checkBucket(ctx, cfg, in.Bucket, in.Region, p.Prefix)
		results = append(results, r...)
		if found != "" {
			bucketRegion = found
		}
	}
	if in.KMSKey != "" {
		results = append(results, checkKey(ctx, cfg, in.KMSKey, bucketRegion, in.Kind == policy.KindArtifactWrite))
	}
	if in.Bucket != "" {
		p.Account, p.Region = id.Account, bucketRegion
		results = append(results, checkSimulated(ctx, cfg, id, in.Kind, p))
	}
	return results, nil
}

// checkBucket asks HeadBucket in the stated region and reads where S3 says
// the bucket is; S3 sends x-amz-bucket-region with success, with the 301 of
// a wrong regional endpoint and with a 403.
//
// HeadBucket needs s3:ListBucket without a prefix, which berth's own
// artifact policies do not grant; for those credentials a 403 is followed by
// a listing under the prefix, which they do grant.
func checkBucket(ctx context.Context, cfg aws.Config, bucket, stated, prefix string) ([]CheckResult, string) {
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
		return []CheckResult{{Field: "--bucket", Message: fmt.Sprintf("there is no bucket %s (HeadBucket: 404 Not Found)", bucket), Kind: ErrCheckFailed}}, ""
	case actual != "" && stated != "" && actual != stated:
		return []CheckResult{
			{Field: "--bucket", OK: true, Message: fmt.Sprintf("bucket %s exists", bucket)},
			{Field: "--region", Message: fmt.Sprintf("bucket %s is in %s, not %s: pass --region %s", bucket, actual, stated, actual), Kind: ErrCheckFailed},
		}, actual
	case err == nil:
		where := actual
		if where == "" {
			where = stated
		}
		return []CheckResult{{Field: "--bucket", OK: true, Message: fmt.Sprintf("bucket %s exists in %s", bucket, where)}}, actual
	case status == 403 && listsUnder(ctx, cfg, bucket, firstOf(actual, stated), prefix):
		return []CheckResult{{Field: "--bucket", OK: true, Message: fmt.Sprintf("bucket %s exists in %s (HeadBucket is refused to these credentials, as berth's policies intend; listing under the prefix works)", bucket, firstOf(actual, stated, "its region"))}}, actual
	case status == 403:
		return []CheckResult{{Field: "--bucket", Message: fmt.Sprintf("access to bucket %s denied (HeadBucket: 403): the credentials lack s3:ListBucket on it, or it belongs to another account", bucket),
			Kind: errkind.PermissionDenied}}, actual
	}
	return []CheckResult{{Field: "--bucket", Message: fmt.Sprintf("check bucket %s: %v", bucket, err), Kind: kindOr(err, errkind.Unavailable)}}, actual
}

// listsUnder tells whether the credentials may list the bucket under prefix.
func listsUnder(ctx context.Context, cfg aws.Config, bucket, region, prefix string) bool {
	c := cfg.Copy()
	if region != "" {
		c.Region = region
	}
	p := strings.Trim(prefix, "/")
	if p != "" {
		p += "/"
	}
	_, err := s3.NewFromConfig(c).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(p), MaxKeys: aws.Int32(1)})
	return err == nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// kindOr returns the kind of an AWS error, or def.
func kindOr(err error, def error) error {
	if k := awserr.Kind(err); k != nil {
		return k
	}
	return def
}

// checkKey describes the key and, for writers, makes a data key with it.
// AccessDenied on these direct calls proves little: berth's policies allow
// the key only through S3 (kms:ViaService), which the simulation checks.
func checkKey(ctx context.Context, cfg aws.Config, keyARN, bucketRegion string, write bool) CheckResult {
	keyRegion := strings.SplitN(keyARN, ":", 5)[3]
	if bucketRegion != "" && keyRegion != bucketRegion {
		return CheckResult{Field: "--kms-key", Message: fmt.Sprintf("key %s is in %s, the bucket in %s: S3 can only use a key of the bucket's region", keyARN, keyRegion, bucketRegion), Kind: ErrCheckFailed}
	}
	kc := cfg.Copy()
	kc.Region = keyRegion
	client := kms.NewFromConfig(kc)
	out, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
	switch {
	case errors.Is(awserr.Classify(err), errkind.PermissionDenied):
		return CheckResult{Field: "--kms-key", OK: true, Message: "not checked: kms:DescribeKey is denied (berth does not need it; the permissions check covers the key)"}
	case errors.Is(awserr.Classify(err), errkind.NotFound):
		return CheckResult{Field: "--kms-key", Message: fmt.Sprintf("there is no key %s", keyARN), Kind: ErrCheckFailed}
	case err != nil:
		return CheckResult{Field: "--kms-key", Message: fmt.Sprintf("describe key %s: %v", keyARN, err), Kind: kindOr(err, errkind.Unavailable)}
	}
	md := out.KeyMetadata
	if !md.Enabled || md.KeyState != kmstypes.KeyStateEnabled {
		return CheckResult{Field: "--kms-key", Message: fmt.Sprintf("key %s is %s: S3 cannot encrypt or decrypt with it", keyARN, md.KeyState), Kind: ErrCheckFailed}
	}
	if md.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt || md.KeySpec != kmstypes.KeySpecSymmetricDefault {
		return CheckResult{Field: "--kms-key", Message: fmt.Sprintf("key %s is %s %s: S3 needs a symmetric encryption key", keyARN, md.KeySpec, md.KeyUsage), Kind: ErrCheckFailed}
	}
	if !write {
		return CheckResult{Field: "--kms-key", OK: true, Message: fmt.Sprintf("key %s is enabled", keyARN)}
	}
	_, err = client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyARN), KeySpec: kmstypes.DataKeySpecAes256})
	switch {
	case err == nil:
		return CheckResult{Field: "--kms-key", OK: true, Message: fmt.Sprintf("key %s is enabled and makes data keys", keyARN)}
	case errors.Is(awserr.Classify(err), errkind.PermissionDenied):
		return CheckResult{Field: "--kms-key", OK: true, Message: fmt.Sprintf("key %s is enabled; direct kms:GenerateDataKey is denied, as it is when the key is allowed through S3 only", keyARN)}
	}
	return CheckResult{Field: "--kms-key", Message: fmt.Sprintf("generate a data key with %s: %v", keyARN, err), Kind: kindOr(err, errkind.Unavailable)}
}

// checkSimulated asks IAM whether the caller may do everything berth's
// policy of that kind grants.
func checkSimulated(ctx context.Context, cfg aws.Config, id awsx.CallerIdentity, kind policy.Kind, p policy.Params) CheckResult {
	res := CheckResult{Field: "permissions"}
	doc, err := renderForCheck(kind, p)
	if err != nil {
		res.Message, res.Kind = err.Error(), errkind.Invalid
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
		sc := sampleContext(st.Condition)
		keys := make([]string, 0, len(sc))
		for k := range sc {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			in.ContextEntries = append(in.ContextEntries, iamtypes.ContextEntry{
				ContextKeyName: aws.String(k), ContextKeyType: iamtypes.ContextKeyTypeEnumString,
				ContextKeyValues: []string{sc[k]},
			})
		}
		for {
			out, err := client.SimulatePrincipalPolicy(ctx, in)
			if err != nil {
				err = awserr.Classify(err)
				res.Message, res.Kind = fmt.Sprintf("simulate the policies of %s: %v", principal, err), kindOr(err, errkind.Unavailable)
				if errors.Is(err, errkind.PermissionDenied) {
					res.Message += "; the caller needs iam:SimulatePrincipalPolicy on itself for this check (or check a policy file offline with --policy FILE)"
				}
				return res
			}
			for _, r := range out.EvaluationResults {
				action := aws.ToString(r.EvalActionName)
				if len(r.ResourceSpecificResults) > 0 {
					for _, rr := range r.ResourceSpecificResults {
						if rr.EvalResourceDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed {
							res.Missing = append(res.Missing, MissingAction{action, aws.ToString(rr.EvalResourceName), string(rr.EvalResourceDecision), i})
						}
					}
					continue
				}
				if r.EvalDecision != iamtypes.PolicyEvaluationDecisionTypeAllowed {
					res.Missing = append(res.Missing, MissingAction{action, aws.ToString(r.EvalResourceName), string(r.EvalDecision), i})
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
func permissionsResult(res CheckResult, doc *policy.Document, principal string, kind policy.Kind, total int) CheckResult {
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
	res.Kind = errkind.PermissionDenied
	res.Message = fmt.Sprintf("%s may not make %d of the %d requests (action on resource) berth's %s policy grants", principal, len(res.Missing), total, kind)
	return res
}

// CheckOffline evaluates the identity policy idPolicy (read from source,
// named in messages) with berth's own simulator for every request berth's
// policy of in.Kind grants, as principal (default: a role in account
// 000000000000, whose account is used in resource ARNs). No AWS call is
// made.
func CheckOffline(idPolicy *policy.Document, source, principal string, in CheckInput) (CheckResult, error) {
	p, err := in.Params()
	if err != nil {
		return CheckResult{}, err
	}
	if in.Bucket == "" {
		return CheckResult{}, fmt.Errorf("an offline check needs the bucket (--bucket): the actions to check are on that bucket: %w", errkind.Invalid)
	}
	kind := in.Kind
	if principal == "" {
		principal = "arn:aws:iam::000000000000:role/" + sample
	}
	account := strings.SplitN(principal, ":", 6)
	if len(account) != 6 {
		return CheckResult{}, fmt.Errorf("--principal %q: want an IAM role or user ARN: %w", principal, errkind.Invalid)
	}
	p.Account = account[4]
	doc, err := renderForCheck(kind, p)
	if err != nil {
		return CheckResult{}, fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	// KMS counts identity policies only when the key policy lets the
	// account's IAM decide, as the default key policy (and the one berth's
	// template writes) does.
	keyPolicy := &policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{
		Effect: "Allow", Principal: policy.AWSPrincipal(fmt.Sprintf("arn:%s:iam::%s:root", PartitionOf(principal), p.Account)),
		Action: policy.Values{"kms:*"}, Resource: policy.Values{"*"},
	}}}
	res := CheckResult{Field: "permissions"}
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
					return CheckResult{}, fmt.Errorf("check %s offline: %w: %w", source, err, errkind.Invalid)
				}
				if !d.Allowed() {
					res.Missing = append(res.Missing, MissingAction{action, resource, string(d.Outcome), i})
				}
			}
		}
	}
	res = permissionsResult(res, doc, principal, kind, total)
	res.Message += " (offline, " + source + ")"
	return res, nil
}
