package cfn

import (
	"fmt"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
	"github.com/awslabs/goformation/v7/cloudformation/policies"
	"github.com/awslabs/goformation/v7/cloudformation/s3"
	"github.com/awslabs/goformation/v7/cloudformation/tags"

	"github.com/berth-dev/berth/policy"
)

// DefaultCacheExpirationDays is how long a cache entry lives when the
// template is rendered without Params.CacheExpirationDays: CI caches are
// rebuilt cheaply, and an unbounded cache only grows.
const DefaultCacheExpirationDays = 14

// CacheBucketName is the cache bucket's name with CloudFormation
// substitutions; it shares the qualifier prefix the provisioner is scoped to.
func CacheBucketName(qualifier string) string {
	if qualifier == "" {
		qualifier = policy.DefaultQualifier
	}
	return qualifier + "-cache-${AWS::AccountId}-${AWS::Region}"
}

func cacheDays(p Params) (int, error) {
	switch {
	case p.CacheExpirationDays == 0:
		return DefaultCacheExpirationDays, nil
	case p.CacheExpirationDays < 1 || p.CacheExpirationDays > 3650:
		return 0, fmt.Errorf("cache expiration %d days: use 1 to 3650", p.CacheExpirationDays)
	}
	return p.CacheExpirationDays, nil
}

// addCache adds the cache bucket beside the artifact bucket: the same
// public access block, encryption (kmsID) and TLS-only policy, but no
// versioning (an entry is immutable and an expired one should be gone),
// entries expiring after the configured days, incomplete uploads aborted
// after a day; and the cache-read and cache-write managed policies.
func addCache(t *cloudformation.Template, p Params, kmsID, keyARN string, qualifierTag []tags.Tag) error {
	days, err := cacheDays(p)
	if err != nil {
		return err
	}
	// The name fits S3's 63 characters: a qualifier has at most 20, and
	// "-cache-ACCOUNT-REGION" at most 35.
	t.Resources["CacheBucket"] = &s3.Bucket{
		BucketName: str(cloudformation.Sub(CacheBucketName(p.Qualifier))),
		PublicAccessBlockConfiguration: &s3.Bucket_PublicAccessBlockConfiguration{
			BlockPublicAcls: cloudformation.Bool(true), BlockPublicPolicy: cloudformation.Bool(true),
			IgnorePublicAcls: cloudformation.Bool(true), RestrictPublicBuckets: cloudformation.Bool(true),
		},
		BucketEncryption: &s3.Bucket_BucketEncryption{ServerSideEncryptionConfiguration: []s3.Bucket_ServerSideEncryptionRule{{
			BucketKeyEnabled: cloudformation.Bool(true),
			ServerSideEncryptionByDefault: &s3.Bucket_ServerSideEncryptionByDefault{
				SSEAlgorithm: "aws:kms", KMSMasterKeyID: str(kmsID),
			},
		}}},
		OwnershipControls: &s3.Bucket_OwnershipControls{Rules: []s3.Bucket_OwnershipControlsRule{{ObjectOwnership: str("BucketOwnerEnforced")}}},
		LifecycleConfiguration: &s3.Bucket_LifecycleConfiguration{Rules: []s3.Bucket_Rule{{
			Id: str("ExpireCacheEntries"), Status: "Enabled", ExpirationInDays: cloudformation.Int(days),
			AbortIncompleteMultipartUpload: &s3.Bucket_AbortIncompleteMultipartUpload{DaysAfterInitiation: 1},
		}}},
		Tags: qualifierTag,
		// Retained like the artifact bucket: the provisioner has no
		// s3:DeleteBucket, and CloudFormation cannot delete a bucket
		// that still holds entries.
		AWSCloudFormationDeletionPolicy:      policies.DeletionPolicy("Retain"),
		AWSCloudFormationUpdateReplacePolicy: policies.UpdateReplacePolicy("Retain"),
	}
	tlsOnly, err := subst(&policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{
		Sid: "TLSOnly", Effect: "Deny", Principal: &policy.Principal{All: true}, Action: policy.Values{"s3:*"},
		Resource:  policy.Values{"${CacheBucket.Arn}", "${CacheBucket.Arn}/*"},
		Condition: policy.Condition{"Bool": {"aws:SecureTransport": {"false"}}},
	}}})
	if err != nil {
		return err
	}
	t.Resources["CacheBucketPolicy"] = &s3.BucketPolicy{Bucket: cloudformation.Ref("CacheBucket"), PolicyDocument: tlsOnly}
	tp := templateParams(p, "${CacheBucket}", keyARN)
	for _, k := range []struct {
		kind    policy.Kind
		logical string
	}{{policy.KindCacheRead, "CacheReadPolicy"}, {policy.KindCacheWrite, "CacheWritePolicy"}} {
		r, err := policy.RenderForTemplate(k.kind, tp)
		if err != nil {
			return err
		}
		doc, err := subst(r.Policy)
		if err != nil {
			return err
		}
		t.Resources[k.logical] = &iam.ManagedPolicy{
			ManagedPolicyName: str(cloudformation.Sub(p.Qualifier + "-" + string(k.kind) + "-${AWS::Region}")),
			Description:       str("berth " + string(k.kind) + " for the cache bucket in this region"),
			PolicyDocument:    doc,
		}
		t.Outputs[k.logical+"Arn"] = cloudformation.Output{Value: cloudformation.Ref(k.logical)}
	}
	t.Outputs["CacheBucketName"] = cloudformation.Output{Value: cloudformation.Ref("CacheBucket")}
	return nil
}
