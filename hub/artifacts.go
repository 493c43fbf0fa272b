package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/policy"
	"github.com/berth-dev/berth/store/s3store"
)

// readClient opens a project's regions for reading with credentials the
// hub vends to itself: the data plane's reader identity narrowed to the
// project's prefix, as a member's would be. The hub holds no wider access
// to artifacts than its members get.
func (s *Server) readClient(ctx context.Context, p *db.Project) (*artifact.Client, error) {
	dp, err := s.DB.DataPlaneByID(ctx, p.DataPlaneID)
	if err != nil {
		return nil, err
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
		return nil, err
	}
	c := &artifact.Client{Logger: s.log()}
	for _, ep := range st.Endpoints {
		cr, err := vend(ctx, vendInput{Region: ep.Name, Endpoint: ep.URL, AccessKeyID: st.Reader, SecretKey: string(secret),
			SessionName: "berth-hub", Policy: session, Duration: 15 * time.Minute})
		if err != nil {
			return nil, err
		}
		client := s3.New(s3.Options{Region: ep.Name, BaseEndpoint: aws.String(ep.URL), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken)})
		store := s3store.New(client, st.Bucket, st.Prefix, s3store.Options{})
		c.Regions = append(c.Regions, artifact.Region{Name: ep.Name, Store: store, Pointer: pointer.InStore{Store: store}})
	}
	return c, nil
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request, u *db.User) error {
	p, _, err := s.project(r.Context(), u, r.PathValue("project"))
	if err != nil {
		return err
	}
	c, err := s.readClient(r.Context(), p)
	if err != nil {
		return err
	}
	list, err := c.Versions(r.Context(), p.Name)
	if err != nil && list == nil {
		return err
	}
	out := map[string]any{"project": p.Name, "versions": list}
	if err != nil {
		out["warning"] = err.Error() // some regions did not answer; the list is partial
	}
	if list == nil {
		out["versions"] = []artifact.VersionInfo{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) versionInfo(w http.ResponseWriter, r *http.Request, u *db.User) error {
	p, _, err := s.project(r.Context(), u, r.PathValue("project"))
	if err != nil {
		return err
	}
	c, err := s.readClient(r.Context(), p)
	if err != nil {
		return err
	}
	info, err := c.Info(r.Context(), p.Name, r.PathValue("version"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}
