package hub

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/policy"
)

// vendInput is one AssumeRole call: as identity, at endpoint (empty: AWS's
// regional STS), narrowed by the session policy.
type vendInput struct {
	// Config, when set, holds the caller's credentials and endpoints (the
	// hub's own AWS configuration); else AccessKeyID and SecretKey at
	// Endpoint are used.
	Config      *aws.Config
	Region      string
	Endpoint    string
	AccessKeyID string
	SecretKey   string
	RoleARN     string // AWS: the data plane's artifact role; S3-compatible: ignored
	ExternalID  string
	SessionName string
	Policy      *policy.Document
	Duration    time.Duration
	// HTTP is the client calls go through (Server.awsHTTP) unless Config
	// brings its own.
	HTTP aws.HTTPClient
}

// vend asks STS for temporary credentials. The session can do only what
// both the identity's (or role's) policies and the session policy allow.
func vend(ctx context.Context, in vendInput) (aws.Credentials, error) {
	cfg := aws.Config{
		Region:      in.Region,
		Credentials: credentials.NewStaticCredentialsProvider(in.AccessKeyID, in.SecretKey, ""),
	}
	if in.Config != nil {
		cfg = in.Config.Copy()
		cfg.Region = in.Region
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = in.HTTP
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

// awsCredentials vends credentials of an AWS data plane: in each region,
// AssumeRole on the stack's artifact reader or writer role (which trusts
// the hub's principal with the data plane's external ID), narrowed by the
// project's session policy, for at most an hour.
func (s *Server) awsCredentials(w http.ResponseWriter, r *http.Request, u *db.User, p *db.Project, dp *db.DataPlane, role string) error {
	if s.AWSPrincipal == "" {
		return errNoAWSPrincipal
	}
	st, ext, err := s.awsDataPlane(r.Context(), dp)
	if err != nil {
		return err
	}
	if len(st.Buckets) == 0 {
		return fmt.Errorf("data plane %s has no buckets yet: deploy it (a plan job, then its approval) before asking for credentials: %w", dp.Name, errkind.PreconditionFailed)
	}
	var names []string
	for _, b := range st.Buckets {
		names = append(names, b.Name)
	}
	part := dataplane.PartitionOf(s.AWSPrincipal)
	session, err := policy.SessionPolicy(policy.SessionParams{Partition: part, Account: st.Account, Buckets: names, Prefix: p.Prefix})
	if err != nil {
		return fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	identity := "reader"
	if role == "write" {
		identity = "writer"
	}
	out := struct {
		Project     string              `json:"project"`
		Role        string              `json:"role"`
		Prefix      string              `json:"prefix"`
		StorePrefix string              `json:"store_prefix"`
		Regions     []regionCredentials `json:"regions"`
	}{Project: p.Name, Role: role, Prefix: p.Prefix, StorePrefix: st.Prefix}
	for _, b := range st.Buckets {
		roleARN := fmt.Sprintf("arn:%s:iam::%s:role/%s", part, st.Account, policy.HubRoleName(st.Qualifier, identity, b.Region))
		c, err := vend(r.Context(), vendInput{Config: &s.AWS, Region: b.Region, RoleARN: roleARN, ExternalID: ext,
			SessionName: sessionName(u.Email), Policy: session, Duration: credentialTTL})
		if err != nil {
			return err
		}
		out.Regions = append(out.Regions, regionCredentials{Region: b.Region, Bucket: b.Name,
			AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: c.Expires})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// projectDataPlaneAllowed refuses credentials for a project whose data
// plane breaks the organisation's enforced usage.
func (s *Server) projectDataPlaneAllowed(ctx context.Context, u *db.User, dp *db.DataPlane) error {
	org, err := s.userOrg(ctx, u)
	if err != nil {
		return err
	}
	if err := s.ownDataPlane(ctx, org, dp); err != nil {
		return fmt.Errorf("no credentials: %w", err)
	}
	return nil
}

func mustCompact(d *policy.Document) []byte {
	b, err := d.MarshalJSON()
	if err != nil {
		panic("hub: marshal session policy: " + err.Error()) // strings, maps and slices only
	}
	return b
}
