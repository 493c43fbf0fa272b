package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/errkind"
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
	keys, err := s.trustedKeys(ctx, p)
	if err != nil {
		return nil, err
	}
	c := &artifact.Client{Logger: s.log(), TrustedKeys: keys}
	for _, ep := range st.Endpoints {
		cr, err := vend(ctx, vendInput{Region: ep.Name, Endpoint: ep.URL, AccessKeyID: st.Reader, SecretKey: string(secret),
			SessionName: "berth-hub", Policy: session, Duration: 15 * time.Minute, HTTP: s.awsHTTP()})
		if err != nil {
			return nil, err
		}
		client := s3.New(s3.Options{Region: ep.Name, BaseEndpoint: aws.String(ep.URL), UsePathStyle: true, HTTPClient: s.awsHTTP(),
			Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken)})
		store := s3store.New(client, st.Bucket, st.Prefix, s3store.Options{})
		c.Regions = append(c.Regions, artifact.Region{Name: ep.Name, Store: store, Pointer: pointer.InStore{Store: store}})
	}
	return c, nil
}

// versionOut is a listed version; Prerelease saves every client parsing
// the version to mark it.
type versionOut struct {
	artifact.VersionInfo
	Prerelease bool `json:"prerelease"`
}

// versions lists a project's versions. Without a limit: all of them,
// oldest first, as the CLI reads them. With limit (and order=newest, and
// cursor: the last version of the previous page): one page, next_cursor
// when more follow, and the latest and latest-prerelease pointers, so a
// page of 10,000 versions sends only what it shows.
func (s *Server) versions(w http.ResponseWriter, r *http.Request, u *db.User) error {
	q := r.URL.Query()
	newest := false
	switch q.Get("order") {
	case "", "oldest":
	case "newest":
		newest = true
	default:
		return inField("order", fmt.Errorf("order %q: use oldest or newest: %w", truncate(q.Get("order"), 16), errkind.Invalid))
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return inField("limit", fmt.Errorf("limit %q: want a number from 1 to 1000: %w", truncate(v, 20), errkind.Invalid))
		}
		limit = n
	}
	cursor := q.Get("cursor")
	if cursor != "" {
		if _, err := artifact.ParseVersion(cursor); err != nil {
			return inField("cursor", fmt.Errorf("cursor: %w", err))
		}
	}
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
	page, next := pageVersions(list, newest, cursor, limit)
	out := map[string]any{"project": p.Name, "versions": page, "total": len(list)}
	if err != nil {
		out["warning"] = err.Error() // some regions did not answer; the list is partial
	}
	if next != "" {
		out["next_cursor"] = next
	}
	if limit > 0 && len(list) > 0 {
		// Pointers can be moved back (a rollback), so they are read, not
		// inferred from the list. Info fails for "latest" when only
		// prereleases exist; it reports both pointers otherwise.
		for _, ref := range []string{artifact.Latest, artifact.LatestPrerelease} {
			if d, err := c.Info(r.Context(), p.Name, ref); err == nil {
				out["latest"], out["latest_prerelease"] = d.Latest, d.LatestPrerelease
				break
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// pageVersions returns up to limit versions (all when limit is 0) of list,
// which is in ascending order, after cursor in the chosen direction, and
// the cursor of the next page ("" when this is the last).
func pageVersions(list []artifact.VersionInfo, newest bool, cursor string, limit int) ([]versionOut, string) {
	// Versions strictly before (newest first) or after (oldest first) the
	// cursor, found by binary search.
	lo, hi := 0, len(list)
	if cursor != "" {
		i := sort.Search(len(list), func(i int) bool { return artifact.CompareVersions(list[i].Version, cursor) >= 0 })
		if newest {
			hi = i
		} else {
			if i < len(list) && artifact.CompareVersions(list[i].Version, cursor) == 0 {
				i++
			}
			lo = i
		}
	}
	n := hi - lo
	if limit > 0 && n > limit {
		n = limit
	}
	out := make([]versionOut, 0, n)
	for k := 0; k < n; k++ {
		i := lo + k
		if newest {
			i = hi - 1 - k
		}
		v, _ := artifact.ParseVersion(list[i].Version) // listed versions parse: Versions skips the rest
		out = append(out, versionOut{VersionInfo: list[i], Prerelease: len(v.Pre) > 0})
	}
	if n < hi-lo && n > 0 {
		return out, out[n-1].Version
	}
	return out, ""
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
