// Package awsx loads AWS configuration the way the AWS CLI does: the
// standard credential chain, shared config and credentials files, profiles
// (SSO included), AWS_REGION and the AWS_ENDPOINT_URL* variables.
package awsx

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Options override the environment and shared config.
type Options struct {
	Profile     string // --profile; empty means AWS_PROFILE or "default"
	Region      string // region for this client
	MaxAttempts int    // 0 means the SDK default
}

// Load returns an aws.Config for opts.
func Load(ctx context.Context, opts Options) (aws.Config, error) {
	var lo []func(*config.LoadOptions) error
	if opts.Profile != "" {
		lo = append(lo, config.WithSharedConfigProfile(opts.Profile))
	}
	if opts.Region != "" {
		lo = append(lo, config.WithRegion(opts.Region))
	}
	if opts.MaxAttempts > 0 {
		lo = append(lo, config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = opts.MaxAttempts })
		}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		where := "the default credential chain"
		if opts.Profile != "" {
			where = fmt.Sprintf("profile %q", opts.Profile)
		}
		return aws.Config{}, fmt.Errorf("load AWS configuration from %s: %w", where, err)
	}
	return cfg, nil
}
