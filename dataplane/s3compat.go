// Package dataplane sets up where berth keeps artifacts: on AWS through the
// regional CloudFormation stack, and on S3-compatible services (MinIO,
// on-premises stores) directly through the S3 and admin APIs.
package dataplane

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/internal/minioadmin"
	"github.com/berth-dev/berth/policy"
	"github.com/berth-dev/berth/store"
)

// ErrInvalid marks unusable input; nothing was attempted.
var ErrInvalid = errors.New("invalid input")

// Endpoint is one region of an S3-compatible service.
type Endpoint struct {
	Name string // region name, also the bucket's location constraint
	URL  string
}

// Admin is the part of a MinIO-style admin API berth uses to create
// identities. *minioadmin.Client implements it.
type Admin interface {
	// UserInfo fails with minioadmin.ErrNoSuchUser for a missing user.
	UserInfo(ctx context.Context, name string) (minioadmin.UserInfo, error)
	// SetUser creates a user or gives an existing one a new secret.
	SetUser(ctx context.Context, name, secret string) error
	PutPolicy(ctx context.Context, name string, doc []byte) error
	AttachPolicy(ctx context.Context, user string, policies ...string) error
}

// Target is an endpoint with its clients.
type Target struct {
	Endpoint
	S3    *s3.Client
	Admin Admin // nil when the service has no admin API
}

// S3CompatInput says what to set up.
type S3CompatInput struct {
	Targets []Target
	Bucket  string
	Prefix  string
	// Identities creates a writer (CI) and a reader (deploys) identity with
	// the rendered least-privilege policies where an admin API exists.
	Identities bool
	Qualifier  string // names of identities and policies; default "berth"

	// CacheBucket, when set, is created in every region for `berth cache`:
	// no versioning, entries expiring after CacheExpirationDays (default
	// 14) and incomplete uploads aborted after a day where the service
	// supports lifecycle rules; identities also get cache-write (writer)
	// and cache-read (reader) on it.
	CacheBucket         string
	CacheExpirationDays int

	// RotateCredentials gives identities that exist already a new secret
	// (the old one stops working): for a secret that was never shown or
	// was lost.
	RotateCredentials bool
	// KeepCredentials is called with each new secret before any server
	// has it, so that no failure later in Apply can lose it; Apply stops
	// when it fails. Required with Identities.
	KeepCredentials func(ctx context.Context, c Credentials) error
}

// Step is one change of a plan.
type Step struct {
	Region string `json:"region"`
	Action string `json:"action"` // create-bucket, enable-versioning, set-lifecycle, put-policy, create-user, rotate-credentials, attach-policy
	Target string `json:"target"`
	Note   string `json:"note,omitempty"`

	apply  func(ctx context.Context) error
	secret *Credentials // the new secret this step sets; kept before the step runs
}

// S3CompatPlan lists the changes Apply would make; empty means none.
type S3CompatPlan struct {
	Bucket  string   `json:"bucket"`
	Steps   []Step   `json:"changes"`
	Skipped []Step   `json:"unsupported,omitempty"` // settings the service does not support
	Users   []string `json:"users,omitempty"`

	in S3CompatInput
}

// Credentials of an identity created by Apply; shown once.
type Credentials struct {
	Role            string `json:"role"` // writer or reader
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

func bucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 || strings.Contains(b, "..") {
		return false
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (i > 0 && i < len(b)-1 && (r == '-' || r == '.'))
		if !ok {
			return false
		}
	}
	return true
}

// qualifierName: it names users and policies and the files their secrets
// are saved in, so nothing that could leave a directory.
func qualifierName(q string) bool {
	if len(q) > 32 || strings.HasPrefix(q, "-") {
		return false
	}
	for _, r := range q {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// ParseEndpoint parses NAME=URL.
func ParseEndpoint(s string) (Endpoint, error) {
	name, raw, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return Endpoint{}, fmt.Errorf("endpoint %q: write NAME=URL, as in eu-west-1=https://s3.example.com: %w", s, ErrInvalid)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return Endpoint{}, fmt.Errorf("endpoint %q: %q is not an http(s) URL without a path: %w", s, raw, ErrInvalid)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return Endpoint{}, fmt.Errorf("endpoint %q: region name %q may hold only a-z, 0-9 and '-': %w", s, name, ErrInvalid)
		}
	}
	return Endpoint{Name: name, URL: strings.TrimSuffix(raw, "/")}, nil
}

func (in *S3CompatInput) qualifier() string {
	if in.Qualifier == "" {
		return "berth"
	}
	return in.Qualifier
}

// identities are the roles created on services with an admin API.
func (in *S3CompatInput) identities() []struct {
	role, user, policy string
	kind               policy.Kind
} {
	q := in.qualifier()
	ids := []struct {
		role, user, policy string
		kind               policy.Kind
	}{
		{"writer", q + "-writer", q + "-artifact-write", policy.KindArtifactWrite},
		{"reader", q + "-reader", q + "-artifact-read", policy.KindArtifactRead},
	}
	if in.CacheBucket != "" {
		// The same users, with a second policy each (see cacheIdentity).
		ids = append(ids, []struct {
			role, user, policy string
			kind               policy.Kind
		}{
			{"writer", q + "-writer", q + "-cache-write", policy.KindCacheWrite},
			{"reader", q + "-reader", q + "-cache-read", policy.KindCacheRead},
		}...)
	}
	return ids
}

// PlanS3Compat inspects every endpoint and lists what is missing. It
// changes nothing.
func PlanS3Compat(ctx context.Context, in S3CompatInput) (*S3CompatPlan, error) {
	if !bucketName(in.Bucket) {
		return nil, fmt.Errorf("bucket %q: use 3-63 lower-case letters, digits, '.' and '-': %w", in.Bucket, ErrInvalid)
	}
	if len(in.Targets) == 0 {
		return nil, fmt.Errorf("no endpoints given: %w", ErrInvalid)
	}
	if !qualifierName(in.Qualifier) {
		return nil, fmt.Errorf("qualifier %q: use up to 32 lower-case letters, digits and '-', starting with a letter or digit: %w", in.Qualifier, ErrInvalid)
	}
	if in.Identities && in.KeepCredentials == nil {
		return nil, fmt.Errorf("identities need KeepCredentials, or their secrets could be lost: %w", ErrInvalid)
	}
	if err := in.checkCache(); err != nil {
		return nil, err
	}
	p := &S3CompatPlan{Bucket: in.Bucket, in: in}
	for _, t := range in.Targets {
		if err := p.planBucket(ctx, t); err != nil {
			return nil, fmt.Errorf("inspect %s (%s): %w", t.Name, t.URL, err)
		}
		if in.CacheBucket == "" {
			continue
		}
		if err := p.planCacheBucket(ctx, t); err != nil {
			return nil, fmt.Errorf("inspect %s (%s): %w", t.Name, t.URL, err)
		}
	}
	if in.Identities {
		if err := p.planIdentities(ctx); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *S3CompatPlan) add(t Target, action, target, note string, apply func(context.Context) error) *Step {
	p.Steps = append(p.Steps, Step{Region: t.Name, Action: action, Target: target, Note: note, apply: apply})
	return &p.Steps[len(p.Steps)-1]
}

func (p *S3CompatPlan) planBucket(ctx context.Context, t Target) error {
	bucket := aws.String(p.Bucket)
	_, err := t.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: bucket})
	exists := err == nil
	var nf *s3types.NotFound
	if err != nil && !errors.As(err, &nf) && !strings.Contains(err.Error(), "NotFound") {
		return fmt.Errorf("head bucket %s: %w", p.Bucket, awserr.Classify(err))
	}
	if !exists {
		p.add(t, "create-bucket", p.Bucket, "location "+t.Name, func(ctx context.Context) error {
			in := &s3.CreateBucketInput{Bucket: bucket}
			if t.Name != "us-east-1" {
				in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(t.Name)}
			}
			_, err := t.S3.CreateBucket(ctx, in)
			var owned *s3types.BucketAlreadyOwnedByYou
			if errors.As(err, &owned) {
				return nil
			}
			return err
		})
	}
	versioned := false
	if exists {
		v, err := t.S3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bucket})
		if err != nil {
			return fmt.Errorf("get versioning of %s: %w", p.Bucket, awserr.Classify(err))
		}
		versioned = v.Status == s3types.BucketVersioningStatusEnabled
	}
	if !versioned {
		p.add(t, "enable-versioning", p.Bucket, "", func(ctx context.Context) error {
			_, err := t.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bucket,
				VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
			return err
		})
	}
	// Abandoned multipart uploads are removed by the service after a day,
	// where it supports that lifecycle rule.
	hasRule := false
	if exists {
		lc, err := t.S3.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: bucket})
		if err == nil {
			for _, r := range lc.Rules {
				if r.AbortIncompleteMultipartUpload != nil || aws.ToString(r.ID) == lifecycleRuleID {
					hasRule = true
				}
			}
		}
	}
	if !hasRule {
		p.add(t, "set-lifecycle", p.Bucket, "abort incomplete multipart uploads after 1 day; expire old object versions after 30 days", func(ctx context.Context) error {
			_, err := t.S3.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: bucket,
				LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
					ID:                             aws.String(lifecycleRuleID),
					Status:                         s3types.ExpirationStatusEnabled,
					Filter:                         &s3types.LifecycleRuleFilter{Prefix: aws.String("")},
					AbortIncompleteMultipartUpload: &s3types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(1)},
					NoncurrentVersionExpiration:    &s3types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(30)},
				}}}})
			if isNotImplemented(err) {
				return errUnsupported
			}
			return err
		})
	}
	return nil
}

const lifecycleRuleID = "berth-housekeeping"

var errUnsupported = errors.New("not supported by this service")

func isNotImplemented(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "NotImplemented") || strings.Contains(s, "not implemented")
}

func (p *S3CompatPlan) planIdentities(ctx context.Context) error {
	in := &p.in
	// A service without a MinIO-style admin API gets buckets only.
	for i := range in.Targets {
		t := &in.Targets[i]
		if t.Admin == nil {
			continue
		}
		_, err := t.Admin.UserInfo(ctx, in.qualifier()+"-probe")
		if err != nil && !errors.Is(err, minioadmin.ErrNoSuchUser) {
			// Refused or not ready is an admin API that exists: say so
			// rather than deploy without identities there.
			if c := awserr.Classify(err); errors.Is(c, store.ErrPermissionDenied) || errors.Is(c, store.ErrUnavailable) {
				return fmt.Errorf("use the admin API of %s: %w", t.Name, c)
			}
			p.Skipped = append(p.Skipped, Step{Region: t.Name, Action: "create-user", Target: "writer and reader", Note: "no admin API: " + err.Error()})
			t.Admin = nil
		}
	}
	for _, id := range in.identities() {
		bucket := in.Bucket
		if cacheIdentity(id.kind) {
			bucket = in.CacheBucket
		}
		doc, err := policy.Render(id.kind, policy.Params{Bucket: bucket, Prefix: in.Prefix, Partition: "aws"})
		if err != nil {
			return fmt.Errorf("render %s policy: %w", id.kind, err)
		}
		body := doc.JSON()
		existsIn, missingIn := []string{}, []string{}
		attached := map[string]bool{} // region -> the policy is attached
		for _, t := range in.Targets {
			if t.Admin == nil {
				continue
			}
			info, err := t.Admin.UserInfo(ctx, id.user)
			switch {
			case err == nil:
				existsIn = append(existsIn, t.Name)
				attached[t.Name] = slices.Contains(info.Policies, id.policy)
			case errors.Is(err, minioadmin.ErrNoSuchUser):
				missingIn = append(missingIn, t.Name)
			default:
				return fmt.Errorf("look up user %s in %s: %w", id.user, t.Name, awserr.Classify(err))
			}
		}
		if len(existsIn) > 0 && len(missingIn) > 0 && !in.RotateCredentials {
			return fmt.Errorf("user %s exists in %s but not in %s, and its secret cannot be read back to copy it; "+
				"deploy again with --rotate-credentials to give it a new secret in every region (the old one stops working): %w",
				id.user, strings.Join(existsIn, ","), strings.Join(missingIn, ","), ErrInvalid)
		}
		var creds *Credentials
		// A cache entry's user is the artifact entry's, created (and given
		// its secret) there; the cache entry only adds a policy.
		if !cacheIdentity(id.kind) && (len(missingIn) > 0 || (len(existsIn) > 0 && in.RotateCredentials)) {
			creds = &Credentials{Role: id.role, AccessKeyID: id.user, SecretAccessKey: randomSecret()}
			p.Users = append(p.Users, id.role+"="+id.user)
		}
		for _, t := range in.Targets {
			if t.Admin == nil {
				continue
			}
			// Policies are put every time: cheap, and it keeps them current.
			admin, name := t.Admin, id.policy
			p.add(t, "put-policy", name, string(id.kind), func(ctx context.Context) error {
				return admin.PutPolicy(ctx, name, body)
			})
		}
		for _, t := range in.Targets {
			if t.Admin == nil || creds == nil {
				continue
			}
			admin, user, secret := t.Admin, id.user, creds.SecretAccessKey
			action, note := "create-user", id.role+" identity"
			if slices.Contains(existsIn, t.Name) {
				action, note = "rotate-credentials", id.role+" identity gets a new secret; the old one stops working"
			}
			p.add(t, action, user, note, func(ctx context.Context) error {
				return admin.SetUser(ctx, user, secret)
			}).secret = creds
		}
		for _, t := range in.Targets {
			if t.Admin == nil || attached[t.Name] {
				continue
			}
			admin, name, user := t.Admin, id.policy, id.user
			p.add(t, "attach-policy", user, name, func(ctx context.Context) error {
				return admin.AttachPolicy(ctx, user, name)
			})
		}
	}
	return nil
}

// Changes reports whether the plan would change anything beyond
// refreshing policies.
func (p *S3CompatPlan) Changes() bool {
	for _, s := range p.Steps {
		if s.Action != "put-policy" {
			return true
		}
	}
	return false
}

// S3CompatResult is what Apply did.
type S3CompatResult struct {
	Applied     []Step        `json:"applied"`
	Unsupported []Step        `json:"unsupported,omitempty"`
	Credentials []Credentials `json:"credentials,omitempty"`
}

// ApplyS3Compat carries out the plan, step by step, stopping at the first
// failure; running it again picks up where it stopped. Each new secret goes
// to KeepCredentials before the first step that sets it, and into the
// result, also when a later step fails.
func ApplyS3Compat(ctx context.Context, p *S3CompatPlan) (*S3CompatResult, error) {
	res := &S3CompatResult{}
	for _, s := range p.Steps {
		if s.secret != nil && !slices.Contains(res.Credentials, *s.secret) {
			if err := p.in.KeepCredentials(ctx, *s.secret); err != nil {
				return res, fmt.Errorf("keep the new secret of %s before creating it: %w", s.secret.AccessKeyID, err)
			}
			res.Credentials = append(res.Credentials, *s.secret)
		}
		err := s.apply(ctx)
		if errors.Is(err, errUnsupported) {
			s.Note = "not supported by this service; skipped"
			res.Unsupported = append(res.Unsupported, s)
			continue
		}
		if err != nil {
			return res, fmt.Errorf("%s %s in %s: %w", s.Action, s.Target, s.Region, awserr.Classify(err))
		}
		res.Applied = append(res.Applied, s)
	}
	return res, nil
}

func randomSecret() string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 40)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(chars))))
		b[i] = chars[n.Int64()]
	}
	return string(b)
}

// NewAdmin returns a MinIO admin client for endpoint, signing for region.
func NewAdmin(endpoint, region string, creds aws.Credentials) (Admin, error) {
	c, err := minioadmin.New(endpoint, region, creds, nil)
	if err != nil {
		return nil, fmt.Errorf("create admin client for %s: %w: %w", endpoint, err, ErrInvalid)
	}
	return c, nil
}
