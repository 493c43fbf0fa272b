package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/policy"
)

// vendInput is one AssumeRole call: as identity, at endpoint (empty: AWS's
// regional STS), narrowed by the session policy.
type vendInput struct {
	Region      string
	Endpoint    string
	AccessKeyID string
	SecretKey   string
	RoleARN     string // AWS: the data plane's artifact role; S3-compatible: ignored
	ExternalID  string
	SessionName string
	Policy      *policy.Document
	Duration    time.Duration
}

// vend asks STS for temporary credentials. The session can do only what
// both the identity's (or role's) policies and the session policy allow.
func vend(ctx context.Context, in vendInput) (aws.Credentials, error) {
	cfg := aws.Config{
		Region:      in.Region,
		Credentials: credentials.NewStaticCredentialsProvider(in.AccessKeyID, in.SecretKey, ""),
	}
	client := sts.NewFromConfig(cfg, func(o *sts.Options) {
		if in.Endpoint != "" {
			o.BaseEndpoint = aws.String(in.Endpoint)
		}
	})
	role := in.RoleARN
	if role == "" {
		role = "arn:aws:iam::000000000000:role/berth" // required by the SDK; S3-compatible services ignore it
	}
	req := &sts.AssumeRoleInput{
		RoleArn:         aws.String(role),
		RoleSessionName: aws.String(in.SessionName),
		Policy:          aws.String(string(mustCompact(in.Policy))),
		DurationSeconds: aws.Int32(int32(in.Duration / time.Second)),
	}
	if in.ExternalID != "" {
		req.ExternalId = aws.String(in.ExternalID)
	}
	out, err := client.AssumeRole(ctx, req)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("assume role in %s: %w", in.Region, awserr.Classify(err))
	}
	c := out.Credentials
	return aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken: aws.ToString(c.SessionToken), CanExpire: true, Expires: aws.ToTime(c.Expiration)}, nil
}

func mustCompact(d *policy.Document) []byte {
	b, err := d.MarshalJSON()
	if err != nil {
		panic("hub: marshal session policy: " + err.Error()) // strings, maps and slices only
	}
	return b
}
