package hub

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// readClient opens a project's regions for reading with credentials the
// hub vends to itself (readSessions): the data plane's reader narrowed to
// the project's prefix, as a member's would be. The hub holds no wider
// access to artifacts than its members get. Signatures are checked against
// the project's trusted keys.
func (s *Server) readClient(ctx context.Context, p *db.Project) (*artifact.Client, error) {
	sessions, err := s.readSessions(ctx, p, 15*time.Minute)
	if err != nil {
		return nil, err
	}
	keys, err := s.trustedKeys(ctx, p)
	if err != nil {
		return nil, err
	}
	c := &artifact.Client{Logger: s.log(), TrustedKeys: keys}
	for _, rs := range sessions {
		c.Regions = append(c.Regions, rs.artifactRegion())
	}
	return c, nil
}

// versionOut is a listed version; Prerelease saves every client parsing
// the version to mark it.
type versionOut struct {
	artifact.VersionInfo
	Prerelease bool `json:"prerelease"`
	// StagedBy is known to the index from the manifest when the stager
	// told the hub; a version only listed has none.
	StagedBy string `json:"staged_by,omitempty"`
}

// versions lists a project's versions. Without a limit: all of them,
// oldest first, as the CLI reads them, listed in the stores (the truth),
// which also refreshes the hub's index. With limit (and order=newest, and
// cursor: the last version of the previous page): one page read from the
// index, next_cursor when more follow, and the latest and
// latest-prerelease pointers, so a page of 10,000 versions costs one
// query. indexed_at says when the versions shown were last listed.
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
	var after []byte
	if cursor != "" {
		v, err := artifact.ParseVersion(cursor)
		if err != nil {
			return inField("cursor", fmt.Errorf("cursor: %w", err))
		}
		after = artifact.SortKey(v)
	}
	p, _, err := s.project(r.Context(), u, r.PathValue("project"))
	if err != nil {
		return err
	}
	if limit == 0 {
		return s.listVersions(w, r, p, newest, cursor)
	}
	st, err := s.DB.VersionIndex(r.Context(), p.ID)
	if err != nil {
		return err
	}
	var warning error
	switch {
	case st.Synced.IsZero():
		// Never listed: this request waits for the first listing.
		if warning, err = s.syncVersions(p, true).wait(r.Context()); err != nil {
			return err
		}
		if st, err = s.DB.VersionIndex(r.Context(), p.ID); err != nil {
			return err
		}
	case s.now().Sub(st.Synced) >= s.versionsFresh():
		s.syncVersions(p, false) // in the background; this page shows the index
	}
	rows, err := s.DB.VersionPage(r.Context(), p.ID, after, newest, limit+1)
	if err != nil {
		return err
	}
	page := make([]versionOut, 0, min(len(rows), limit))
	for _, v := range rows[:min(len(rows), limit)] {
		page = append(page, versionOut{VersionInfo: artifact.VersionInfo{Version: v.Version, Created: v.Created, Regions: v.Regions}, Prerelease: v.Prerelease, StagedBy: v.StagedBy})
	}
	out := map[string]any{"project": p.Name, "versions": page, "total": st.Count}
	if !st.Synced.IsZero() {
		out["indexed_at"] = st.Synced
	}
	if warning != nil {
		out["warning"] = warning.Error() // some regions did not answer; the list may lack versions
	}
	if len(rows) > limit {
		out["next_cursor"] = page[len(page)-1].Version
	}
	if st.Count > 0 {
		// Pointers can be moved back (a rollback), so they are read, not
		// inferred from the index; briefly cached per project.
		if latest, pre, ok := s.latestPointers(r.Context(), p); ok {
			out["latest"], out["latest_prerelease"] = latest, pre
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// listVersions answers an unpaged request from a listing of every region,
// and makes the index what it found.
func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, p *db.Project, newest bool, cursor string) error {
	listedAt := s.now()
	c, err := s.readClient(r.Context(), p)
	if err != nil {
		return err
	}
	list, err := c.Versions(r.Context(), p.Name)
	if err != nil && list == nil {
		return err
	}
	if ierr := s.indexListing(r.Context(), p, list, err, listedAt); ierr != nil {
		s.log().Warn("version index: storing a listing failed", "project", p.Name, "err", ierr)
	}
	page, _ := pageVersions(list, newest, cursor, 0)
	out := map[string]any{"project": p.Name, "versions": page, "total": len(list), "indexed_at": listedAt.UTC()}
	if err != nil {
		out["warning"] = err.Error() // some regions did not answer; the list is partial
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
