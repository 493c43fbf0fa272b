package cfn

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/policy"
)

// worstSubst fills every substitution with the longest value it can take,
// so sizes measured after it are what IAM could count at most.
func worstSubst(q string) *strings.Replacer {
	const (
		partition = "aws-us-gov" // the longest partition name berth accepts
		account   = "123456789012"
		region    = "ap-southeast-14"
	)
	bucket := q + "-" + account + "-" + region
	cache := q + "-cache-" + account + "-" + region
	key := "arn:" + partition + ":kms:" + region + ":" + account + ":key/0b2c1f8e-1111-2222-3333-444455556666"
	return strings.NewReplacer("${AWS::Partition}", partition, "${AWS::AccountId}", account, "${AWS::Region}", region,
		"${ArtifactBucket.Arn}", "arn:"+partition+":s3:::"+bucket, "${ArtifactBucket}", bucket,
		"${CacheBucket.Arn}", "arn:"+partition+":s3:::"+cache, "${CacheBucket}", cache, "${ArtifactKey.Arn}", key,
		// External IDs may have 1,224 characters; principals a 64-character name.
		"${TrustPrincipal}", "arn:"+partition+":iam::210987654321:role/"+strings.Repeat("r", 64),
		"${ExternalId}", strings.Repeat("e", 1224), "${"+HubExternalIDParameter+"}", strings.Repeat("h", 1224))
}

var unresolved = regexp.MustCompile(`\$\{[^}]+\}`)

// TestPolicyLimits renders every template with long names and checks each
// policy against IAM's quotas after substitution (policy.MaxManagedPolicySize
// and the others cite the source: "IAM and AWS STS quotas", IAM User Guide):
// a managed policy 6,144 characters without whitespace, a role's inline
// policies 10,240 together, a trust policy 2,048 (the default quota), 10
// managed policies per role; an S3 bucket policy 20 KB (S3 User Guide,
// "Bucket policies").
func TestPolicyLimits(t *testing.T) {
	q := strings.Repeat("q", 20) // the longest qualifier
	hub := "arn:aws:iam::210987654321:role/" + strings.Repeat("h", 64)
	longKey := "arn:aws-us-gov:kms:ap-southeast-14:123456789012:key/0b2c1f8e-1111-2222-3333-444455556666"
	type rendered struct {
		name      string
		q         string
		resources map[string]templateResource
	}
	var all []rendered
	for _, c := range cases {
		cq := c.p.Qualifier
		if cq == "" {
			cq = policy.DefaultQualifier
		}
		all = append(all, rendered{c.name, cq, renderResources(t, c.kind, c.p)})
	}
	for _, c := range []struct {
		name, kind string
		p          Params
	}{
		{"long dataplane", "dataplane", Params{Qualifier: q, Prefix: strings.Repeat("p", 60), ParameterPrefix: "/" + q + "/" + strings.Repeat("a", 60),
			HubPrincipal: hub}},
		{"long dataplane given key", "dataplane", Params{Qualifier: q, KMSKeyARN: longKey, HubPrincipal: hub}},
		{"long bootstrap", "bootstrap", Params{Qualifier: q, ParameterPrefix: "/" + q + "/" + strings.Repeat("a", 60)}},
		{"long bootstrap given key", "bootstrap", Params{Qualifier: q, KMSKeyARN: longKey}},
	} {
		all = append(all, rendered{c.name, q, renderResources(t, c.kind, c.p)})
	}

	var managed []int
	for _, c := range all {
		r := worstSubst(c.q)
		size := func(what string, doc any) int {
			d := resolveDocument(t, c.name+" "+what, doc, r)
			if m := unresolved.FindString(string(d.JSON())); m != "" {
				t.Fatalf("%s %s: %s is not substituted: add its longest value to worstSubst", c.name, what, m)
			}
			return d.CompactLen()
		}
		check := func(what string, n, limit int) {
			if n > limit {
				t.Errorf("%s: %s is %d characters without whitespace; IAM allows %d", c.name, what, n, limit)
			}
		}
		var logicals []string
		for l := range c.resources {
			logicals = append(logicals, l)
		}
		sort.Strings(logicals)
		for _, l := range logicals {
			res := c.resources[l]
			switch res.Type {
			case "AWS::IAM::ManagedPolicy":
				n := size(l, res.Properties["PolicyDocument"])
				managed = append(managed, n)
				check(l, n, policy.MaxManagedPolicySize)
			case "AWS::IAM::Role":
				check(l+" trust policy", size(l+" trust", res.Properties["AssumeRolePolicyDocument"]), policy.MaxTrustPolicySize)
				total := 0
				pols, _ := res.Properties["Policies"].([]any)
				for _, p := range pols {
					total += size(l+" inline", p.(map[string]any)["PolicyDocument"])
				}
				check(l+" inline policies", total, policy.MaxRoleInlineSize)
				if arns, _ := res.Properties["ManagedPolicyArns"].([]any); len(arns) > policy.MaxAttachedManagedPolicies {
					t.Errorf("%s: %s attaches %d managed policies; IAM allows %d", c.name, l, len(arns), policy.MaxAttachedManagedPolicies)
				}
			case "AWS::S3::BucketPolicy":
				check(l, size(l, res.Properties["PolicyDocument"]), policy.MaxBucketPolicySize)
			}
		}
	}
	sort.Ints(managed)
	if len(managed) == 0 {
		t.Fatal("no managed policies measured")
	}
	t.Logf("%d managed policies measured; the largest is %d of %d characters", len(managed), managed[len(managed)-1], policy.MaxManagedPolicySize)
}
