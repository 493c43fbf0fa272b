package config

import (
	"context"
	"fmt"
	"path"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/filestore"
	"github.com/berth-dev/berth/store/s3store"
)

// OpenOptions tune how Open reaches the stores.
type OpenOptions struct {
	// Profile is the AWS profile (empty: AWS_PROFILE or the default chain).
	Profile string
	// S3 tunes the S3 driver (part size, concurrency).
	S3 s3store.Options
}

// Open opens the stores and latest pointers of every configured region, in
// download order, for an artifact.Client: the same regions the berth CLI
// uses with this configuration. AWS credentials come from the standard
// chain (environment, profiles, SSO); nothing is contacted except SSM when
// a bucket name is kept in a parameter.
//
//	cfg, err := config.Load(path)
//	regions, err := cfg.Open(ctx, config.OpenOptions{})
//	client := &artifact.Client{Regions: regions}
func (c *Config) Open(ctx context.Context, opts OpenOptions) ([]artifact.Region, error) {
	ssmPrefix, _ := c.SSMPrefix()
	var out []artifact.Region
	for _, r := range c.Regions {
		region, err := openStore(ctx, r, c.Prefix, ssmPrefix, opts)
		if err != nil {
			return nil, fmt.Errorf("open region %s: %w", r.Name, err)
		}
		out = append(out, region)
	}
	return out, nil
}

// CacheStore is one region's store for "berth cache".
type CacheStore struct {
	Name  string
	Store store.Store
}

// CachePrefix is where the cache lives in a region's artifact store when
// the region names no cache store: a prefix no project name can take.
const CachePrefix = "_cache"

// OpenCache opens the cache store of every configured region, in download
// order: the region's cache store under the configured prefix, or its
// artifact store under the prefix and CachePrefix.
func (c *Config) OpenCache(ctx context.Context, opts OpenOptions) ([]CacheStore, error) {
	var out []CacheStore
	for _, r := range c.Regions {
		raw, prefix := r.Cache, c.Prefix
		if raw == "" {
			raw, prefix = r.Store, path.Join(c.Prefix, CachePrefix)
		}
		s, err := openStore(ctx, Region{Name: r.Name, Store: raw}, prefix, "", opts)
		if err != nil {
			return nil, fmt.Errorf("open cache of region %s: %w", r.Name, err)
		}
		out = append(out, CacheStore{Name: r.Name, Store: s.Store})
	}
	return out, nil
}

func openStore(ctx context.Context, r Region, prefix, ssmPrefix string, opts OpenOptions) (artifact.Region, error) {
	u, err := ParseStore(r.Store)
	if err != nil {
		return artifact.Region{}, err
	}
	out := artifact.Region{Name: r.Name}
	var awsCfg aws.Config
	if u.Scheme == "s3" || ssmPrefix != "" {
		region := u.Region
		if region == "" {
			region = r.Name
		}
		awsCfg, err = awsx.Load(ctx, awsx.Options{Profile: opts.Profile, Region: region})
		if err != nil {
			return out, fmt.Errorf("%w: %w", err, store.ErrPermissionDenied)
		}
	}
	switch u.Scheme {
	case "file":
		s, err := filestore.New(filepath.Join(u.Dir, filepath.FromSlash(prefix)))
		if err != nil {
			return out, err
		}
		out.Store = s
	case "s3":
		bucket := u.Bucket
		if u.BucketParameter != "" {
			bucket, err = bucketFromSSM(ctx, ssm.NewFromConfig(awsCfg), u.BucketParameter)
			if err != nil {
				return out, err
			}
		}
		client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
			if u.Endpoint != "" {
				o.BaseEndpoint = aws.String(u.Endpoint)
			}
			o.UsePathStyle = u.PathStyle || u.Endpoint != ""
			// Ranged reads carry no whole-object checksum; berth checks
			// SHA-256 itself, so the SDK's note about it is noise.
			o.DisableLogOutputChecksumValidationSkipped = true
		})
		out.Store = s3store.New(client, bucket, prefix, opts.S3)
	}
	if ssmPrefix != "" {
		out.Pointer = pointer.SSM{Client: ssm.NewFromConfig(awsCfg), Prefix: ssmPrefix, Region: awsCfg.Region}
	} else {
		out.Pointer = pointer.InStore{Store: out.Store}
	}
	return out, nil
}

func bucketFromSSM(ctx context.Context, client *ssm.Client, name string) (string, error) {
	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("read bucket name from SSM parameter %s: %w", name, awserr.Classify(err))
	}
	b := aws.ToString(out.Parameter.Value)
	if _, err := ParseStore("s3://" + b + "?region=x"); err != nil || b == "" {
		return "", fmt.Errorf("SSM parameter %s holds %q, not a bucket name: %w", name, b, ErrInvalid)
	}
	return b, nil
}
