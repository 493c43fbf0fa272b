package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// The version index (hub/db versions.go) is the hub's copy of what the
// stores list, so a page of a project with thousands of versions is one
// query. The stores stay the truth: a full listing replaces the index, a
// stage through the hub is indexed when the CLI reports it, and a page
// older than Server.VersionsFresh starts a listing in the background.

const (
	// defaultVersionsFresh is Server.VersionsFresh when zero.
	defaultVersionsFresh = time.Minute
	// syncTimeout bounds a listing that runs for nobody in particular.
	syncTimeout = 5 * time.Minute
	// latestTTL is how long a replica shows the latest pointers it read:
	// reading them costs an AssumeRole and three reads per region, more
	// than the page itself. A stage reported through the hub drops them.
	latestTTL = 10 * time.Second
)

// versionIndex is a replica's share of the index: one listing per project
// at a time, and the latest pointers it read last. The zero value is ready.
type versionIndex struct {
	mu     sync.Mutex
	syncs  map[int64]*versionSync   // in flight
	tried  map[int64]time.Time      // when this replica last began a listing
	latest map[int64]latestPointers // by project
	wg     sync.WaitGroup           // listings in flight
}

// versionSync is one listing of a project; done closes when it ends.
type versionSync struct {
	done chan struct{}
	// warning: some regions did not answer; the index only grew.
	warning, err error
}

type latestPointers struct {
	latest, prerelease string
	ok                 bool // false: no pointer could be read
	read               time.Time
}

func (s *Server) versionsFresh() time.Duration {
	if s.VersionsFresh > 0 {
		return s.VersionsFresh
	}
	return defaultVersionsFresh
}

// syncVersions returns the listing of p in flight, or begins one when none
// is and this replica began none within the freshness window (always when
// force). It returns nil when it begins none.
func (s *Server) syncVersions(p *db.Project, force bool) *versionSync {
	ix := &s.versionIdx
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if vs := ix.syncs[p.ID]; vs != nil {
		return vs
	}
	if t, ok := ix.tried[p.ID]; ok && !force && s.now().Sub(t) < s.versionsFresh() {
		return nil
	}
	if ix.syncs == nil {
		ix.syncs, ix.tried = map[int64]*versionSync{}, map[int64]time.Time{}
	}
	vs := &versionSync{done: make(chan struct{})}
	ix.syncs[p.ID], ix.tried[p.ID] = vs, s.now()
	ix.wg.Add(1)
	go func() {
		defer ix.wg.Done()
		// Not the request's context: others wait for this listing, and a
		// background one outlives its request.
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
		defer cancel()
		vs.warning, vs.err = s.listIntoIndex(ctx, p)
		if vs.err != nil {
			s.log().Warn("version index: listing failed", "project", p.Name, "err", vs.err)
		}
		ix.mu.Lock()
		delete(ix.syncs, p.ID)
		ix.mu.Unlock()
		close(vs.done)
	}()
	return vs
}

// listIntoIndex lists p in every region and writes the listing into the
// index: all of it when every region answered, only what is new
// otherwise (warning says which regions failed).
func (s *Server) listIntoIndex(ctx context.Context, p *db.Project) (warning, err error) {
	listedAt := s.now()
	c, err := s.readClient(ctx, p)
	if err != nil {
		return nil, err
	}
	list, err := c.Versions(ctx, p.Name)
	if err != nil && list == nil {
		return nil, err
	}
	return err, s.indexListing(ctx, p, list, err, listedAt)
}

// indexListing writes a listing of p begun at listedAt into the index;
// listErr is the listing's warning (some regions failed), under which
// nothing is deleted or narrowed.
func (s *Server) indexListing(ctx context.Context, p *db.Project, list []artifact.VersionInfo, listErr error, listedAt time.Time) error {
	rows := make([]db.IndexedVersion, 0, len(list))
	for _, vi := range list {
		v, err := artifact.ParseVersion(vi.Version)
		if err != nil {
			continue // Versions lists only versions; this keeps it so
		}
		rows = append(rows, db.IndexedVersion{Version: vi.Version, SortKey: artifact.SortKey(v), Created: vi.Created,
			Regions: vi.Regions, Prerelease: len(v.Pre) > 0})
	}
	if listErr != nil {
		return s.DB.AddListedVersions(ctx, p.ID, rows, listedAt)
	}
	return s.DB.ReplaceVersionIndex(ctx, p.ID, rows, listedAt)
}

// wait returns the outcome of vs, or ctx's error first.
func (vs *versionSync) wait(ctx context.Context) (warning, err error) {
	select {
	case <-vs.done:
		return vs.warning, vs.err
	case <-ctx.Done():
		return nil, fmt.Errorf("list versions: %w: %w", ctx.Err(), errkind.Unavailable)
	}
}

// latestPointers returns p's latest and latest-prerelease versions, read
// from the stores at most latestTTL ago; ok is false when none could be
// read (a project with only prereleases still has latest-prerelease).
func (s *Server) latestPointers(ctx context.Context, p *db.Project) (latest, prerelease string, ok bool) {
	ix := &s.versionIdx
	ix.mu.Lock()
	lp, cached := ix.latest[p.ID]
	ix.mu.Unlock()
	if cached && s.now().Sub(lp.read) < latestTTL {
		return lp.latest, lp.prerelease, lp.ok
	}
	lp = latestPointers{read: s.now()}
	if c, err := s.readClient(ctx, p); err == nil {
		// Info fails for "latest" when only prereleases exist; it reports
		// both pointers otherwise.
		for _, ref := range []string{artifact.Latest, artifact.LatestPrerelease} {
			if d, err := c.Info(ctx, p.Name, ref); err == nil {
				lp.latest, lp.prerelease, lp.ok = d.Latest, d.LatestPrerelease, true
				break
			}
		}
	}
	ix.mu.Lock()
	if ix.latest == nil {
		ix.latest = map[int64]latestPointers{}
	}
	ix.latest[p.ID] = lp
	ix.mu.Unlock()
	return lp.latest, lp.prerelease, lp.ok
}

// forgetLatest drops p's cached pointers: a stage may have moved them.
func (s *Server) forgetLatest(p *db.Project) {
	s.versionIdx.mu.Lock()
	delete(s.versionIdx.latest, p.ID)
	s.versionIdx.mu.Unlock()
}

// refreshVersion reads one version in every region into the index: the
// CLI calls it after a stage (or anything else that changed a version)
// through the hub's credentials. The hub trusts only what it reads.
func (s *Server) refreshVersion(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	name, version := r.PathValue("project"), r.PathValue("version")
	defer func() {
		s.audit(r, u, "version.refresh", "project/"+truncate(name, 64)+"/version/"+truncate(version, 64), err)
	}()
	if _, err := artifact.ParseVersion(version); err != nil {
		return fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	p, role, err := s.project(r.Context(), u, name)
	if err != nil {
		return err
	}
	if role == "reader" {
		return fmt.Errorf("%s is a reader of project %s and may not refresh its versions: %w", u.Email, p.Name, errkind.PermissionDenied)
	}
	c, err := s.readClient(r.Context(), p)
	if err != nil {
		return err
	}
	at := s.now()
	d, err := c.Info(r.Context(), p.Name, version)
	s.forgetLatest(p)
	if errors.Is(err, artifact.ErrVersionNotFound) {
		// Every region answered and none holds it: deleted.
		if err := s.DB.UnindexVersion(r.Context(), p.ID, version); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"project": p.Name, "version": version, "indexed": false, "regions": []string{}})
		return nil
	}
	if err != nil {
		return err
	}
	v, _ := artifact.ParseVersion(version)
	row := db.IndexedVersion{Version: version, SortKey: artifact.SortKey(v), Created: d.Created.UTC(), Prerelease: len(v.Pre) > 0,
		StagedBy: d.StagedBy, Regions: []string{}}
	partial := false
	for _, rp := range d.Regions {
		if rp.Present {
			row.Regions = append(row.Regions, rp.Name)
		}
		partial = partial || rp.Error != ""
	}
	index := s.DB.IndexVersions
	if partial {
		// A region that did not answer may hold it: add the version if
		// it is new, narrow nothing; the next listing settles it.
		index = s.DB.AddListedVersions
	}
	if err := index(r.Context(), p.ID, []db.IndexedVersion{row}, at); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": p.Name, "version": version, "indexed": true, "regions": row.Regions})
	return nil
}
