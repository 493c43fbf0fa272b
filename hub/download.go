package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/policy"
	"github.com/berth-dev/berth/store/s3store"
)

// downloadLinkTTL is how long a download link works; the reader session
// that signs it lives as long (STS's shortest session is 15 minutes).
const downloadLinkTTL = 15 * time.Minute

// readSession is one region's reader session for a project: vended by the
// hub to itself, narrowed to the project's prefix.
type readSession struct {
	region, endpoint, bucket, storePrefix string
	creds                                 aws.Credentials
	aws                                   *aws.Config // AWS data planes: the hub's configuration (endpoints, retries)
	http                                  aws.HTTPClient
}

// artifactRegion is the region as package artifact reads it.
func (r readSession) artifactRegion() artifact.Region {
	st := s3store.New(r.client(), r.bucket, r.storePrefix, s3store.Options{})
	return artifact.Region{Name: r.region, Store: st, Pointer: pointer.InStore{Store: st}}
}

func (r readSession) client() *s3.Client {
	creds := credentials.NewStaticCredentialsProvider(r.creds.AccessKeyID, r.creds.SecretAccessKey, r.creds.SessionToken)
	if r.aws != nil {
		cfg := r.aws.Copy()
		cfg.Region, cfg.Credentials = r.region, creds
		return s3.NewFromConfig(cfg)
	}
	return s3.New(s3.Options{Region: r.region, Credentials: creds, BaseEndpoint: aws.String(r.endpoint), UsePathStyle: true, HTTPClient: r.http})
}

// readSessions vends reader sessions of the project in each region of its
// data plane, in download order: the S3-compatible reader identity or the
// AWS artifact reader role, with the project's session policy.
func (s *Server) readSessions(ctx context.Context, p *db.Project, ttl time.Duration) ([]readSession, error) {
	dp, err := s.DB.DataPlaneByID(ctx, p.DataPlaneID)
	if err != nil {
		return nil, err
	}
	var out []readSession
	if dp.Kind == "aws" {
		st, ext, err := s.awsDataPlane(ctx, dp)
		if err != nil {
			return nil, err
		}
		if s.AWSPrincipal == "" {
			return nil, errNoAWSPrincipal
		}
		if len(st.Buckets) == 0 {
			return nil, fmt.Errorf("data plane %s has no buckets yet: deploy it (a plan job, then its approval) first: %w", dp.Name, errkind.PreconditionFailed)
		}
		var names []string
		for _, b := range st.Buckets {
			names = append(names, b.Name)
		}
		part := dataplane.PartitionOf(s.AWSPrincipal)
		session, err := policy.SessionPolicy(policy.SessionParams{Partition: part, Account: st.Account, Buckets: names, Prefix: p.Prefix})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", err, errkind.Invalid)
		}
		for _, b := range st.Buckets {
			role := fmt.Sprintf("arn:%s:iam::%s:role/%s", part, st.Account, policy.HubRoleName(st.Qualifier, "reader", b.Region))
			c, err := vend(ctx, vendInput{Config: &s.AWS, Region: b.Region, RoleARN: role, ExternalID: ext, SessionName: "berth-hub", Policy: session, Duration: ttl})
			if err != nil {
				return nil, err
			}
			out = append(out, readSession{region: b.Region, bucket: b.Name, storePrefix: st.Prefix, creds: c, aws: &s.AWS})
		}
		return out, nil
	}
	var st s3CompatSettings
	var sealed map[string]string
	if err := errors.Join(json.Unmarshal([]byte(dp.Settings), &st), json.Unmarshal([]byte(dp.Secrets), &sealed)); err != nil {
		return nil, fmt.Errorf("read data plane %s: %w", dp.Name, err)
	}
	secret, err := s.Secrets.Open(ctx, sealed["reader"], "dataplane/"+dp.Name+"/reader")
	if err != nil {
		return nil, err
	}
	session, err := policy.SessionPolicy(policy.SessionParams{Buckets: []string{st.Bucket}, Prefix: p.Prefix})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	for _, ep := range st.Endpoints {
		c, err := vend(ctx, vendInput{Region: ep.Name, Endpoint: ep.URL, AccessKeyID: st.Reader, SecretKey: string(secret),
			SessionName: "berth-hub", Policy: session, Duration: ttl, HTTP: s.awsHTTP()})
		if err != nil {
			return nil, err
		}
		out = append(out, readSession{region: ep.Name, endpoint: ep.URL, bucket: st.Bucket, storePrefix: st.Prefix, creds: c, http: s.awsHTTP()})
	}
	return out, nil
}

// downloadLink answers a presigned GET URL of a version's file, good for
// 15 minutes. It is signed with a reader session the hub vends to itself
// for the project, never with a data plane's long-lived keys, so the link
// reaches nothing outside the project and dies with the session. The
// bytes go from the bucket to the caller, not through the hub.
func (s *Server) downloadLink(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	name, version, file := r.PathValue("project"), r.PathValue("version"), r.URL.Query().Get("file")
	defer func() {
		s.audit(r, u, "version.download_link", "project/"+truncate(name, 64)+"/"+truncate(version, 64), err)
	}()
	p, _, err := s.project(r.Context(), u, name)
	if err != nil {
		return err
	}
	if file == "" {
		return fmt.Errorf("file: give ?file=NAME, the version's file name: %w", errkind.Invalid)
	}
	sessions, err := s.readSessions(r.Context(), p, downloadLinkTTL)
	if err != nil {
		return err
	}
	if len(sessions) == 0 {
		return fmt.Errorf("project %s: its data plane has no regions deployed yet: %w", p.Name, errkind.PreconditionFailed)
	}
	keys, err := s.trustedKeys(r.Context(), p)
	if err != nil {
		return err
	}
	// The first region that holds the version, read on its own: the data
	// key a manifest names is that region's. When the project trusts keys,
	// only a copy one of them signed gets a link, as berth download would.
	var rs *readSession
	var info *artifact.VersionDetails
	var errs []error
	for i := range sessions {
		c := &artifact.Client{Logger: s.log(), TrustedKeys: keys, Regions: []artifact.Region{sessions[i].artifactRegion()}}
		info, err = c.Info(r.Context(), p.Name, version)
		if err == nil && len(keys) > 0 && info.SignatureStatus.Status != artifact.SignatureVerified {
			err = fmt.Errorf("%s: %s %s is %s, and project %s accepts only versions signed by one of its trusted keys: %w",
				sessions[i].region, p.Name, info.Manifest.Version, info.SignatureStatus.Status, p.Name, errkind.PermissionDenied)
		}
		if err == nil {
			rs = &sessions[i]
			break
		}
		errs = append(errs, err)
	}
	if rs == nil {
		return errors.Join(errs...)
	}
	if file != info.Manifest.Filename {
		return fmt.Errorf("version %s of %s holds the file %q, not %q: %w", info.Manifest.Version, p.Name, info.Manifest.Filename, truncate(file, 64), errkind.NotFound)
	}
	ttl := downloadLinkTTL
	if left := time.Until(rs.creds.Expires); rs.creds.CanExpire && left < ttl {
		ttl = left
	}
	key := strings.TrimPrefix(path.Join(rs.storePrefix, info.Manifest.Object), "/")
	req, err := s3.NewPresignClient(rs.client()).PresignGetObject(r.Context(), &s3.GetObjectInput{
		Bucket: aws.String(rs.bucket), Key: aws.String(key),
		ResponseContentDisposition: aws.String(fmt.Sprintf("attachment; filename=%q", info.Manifest.Filename)),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return fmt.Errorf("sign download link: %w", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"url": req.URL, "expires": s.now().Add(ttl).UTC(), "region": rs.region,
		"file": info.Manifest.Filename, "size": info.Manifest.Size, "sha256": info.Manifest.SHA256, "version": info.Manifest.Version})
	return nil
}
