package dataplane

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/policy"
)

// DefaultCacheExpirationDays matches the data plane template's default.
const DefaultCacheExpirationDays = 14

const cacheRuleID = "berth-cache-expiry"

func cacheIdentity(k policy.Kind) bool {
	return k == policy.KindCacheRead || k == policy.KindCacheWrite
}

func (in *S3CompatInput) cacheDays() int {
	if in.CacheExpirationDays == 0 {
		return DefaultCacheExpirationDays
	}
	return in.CacheExpirationDays
}

func (in *S3CompatInput) checkCache() error {
	if in.CacheBucket == "" {
		if in.CacheExpirationDays != 0 {
			return fmt.Errorf("a cache expiration needs a cache bucket: %w", ErrInvalid)
		}
		return nil
	}
	if !bucketName(in.CacheBucket) {
		return fmt.Errorf("cache bucket %q: use 3-63 lower-case letters, digits, '.' and '-': %w", in.CacheBucket, ErrInvalid)
	}
	if in.CacheBucket == in.Bucket {
		return fmt.Errorf("cache bucket %q is the artifact bucket: the cache bucket expires what it holds, so give it its own name: %w", in.CacheBucket, ErrInvalid)
	}
	if d := in.CacheExpirationDays; d < 0 || d > 3650 {
		return fmt.Errorf("cache expiration %d days: use 1 to 3650: %w", d, ErrInvalid)
	}
	return nil
}

// planCacheBucket adds what the cache bucket of t lacks: the bucket (never
// versioned: an expired entry should be gone, not kept as a noncurrent
// version) and its expiration rule.
func (p *S3CompatPlan) planCacheBucket(ctx context.Context, t Target) error {
	in := &p.in
	bucket := aws.String(in.CacheBucket)
	_, err := t.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: bucket})
	exists := err == nil
	var nf *s3types.NotFound
	if err != nil && !errors.As(err, &nf) && !strings.Contains(err.Error(), "NotFound") {
		return fmt.Errorf("head bucket %s: %w", in.CacheBucket, awserr.Classify(err))
	}
	if !exists {
		p.add(t, "create-bucket", in.CacheBucket, "cache, location "+t.Name, func(ctx context.Context) error {
			cin := &s3.CreateBucketInput{Bucket: bucket}
			if t.Name != "us-east-1" {
				cin.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(t.Name)}
			}
			_, err := t.S3.CreateBucket(ctx, cin)
			var owned *s3types.BucketAlreadyOwnedByYou
			if errors.As(err, &owned) {
				return nil
			}
			return err
		})
	}
	days := int32(in.cacheDays())
	if exists {
		lc, err := t.S3.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: bucket})
		if err == nil {
			for _, r := range lc.Rules {
				if aws.ToString(r.ID) == cacheRuleID && r.Expiration != nil && aws.ToInt32(r.Expiration.Days) == days {
					return nil
				}
			}
		}
	}
	note := fmt.Sprintf("expire cache entries after %d days; abort incomplete multipart uploads after 1 day", days)
	p.add(t, "set-lifecycle", in.CacheBucket, note, func(ctx context.Context) error {
		rule := s3types.LifecycleRule{
			ID: aws.String(cacheRuleID), Status: s3types.ExpirationStatusEnabled,
			Filter:                         &s3types.LifecycleRuleFilter{Prefix: aws.String("")},
			Expiration:                     &s3types.LifecycleExpiration{Days: aws.Int32(days)},
			AbortIncompleteMultipartUpload: &s3types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(1)},
		}
		_, err := t.S3.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: bucket,
			LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{rule}}})
		if isNotImplemented(err) {
			return errUnsupported
		}
		return err
	})
	return nil
}
