package db_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// versionProject makes an organisation, a data plane and a project, and
// returns the project's id.
func versionProject(t *testing.T, d *db.DB) int64 {
	t.Helper()
	orgID, userID, dp := newOrg(t, d)
	p := &db.Project{OrgID: orgID, Name: "app", DataPlaneID: dp.ID, Prefix: "rel/app"}
	if err := d.CreateProject(context.Background(), p, userID); err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func indexed(t *testing.T, stagedBy string, regions []string, versions ...string) []db.IndexedVersion {
	t.Helper()
	var out []db.IndexedVersion
	for _, s := range versions {
		v, err := artifact.ParseVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, db.IndexedVersion{Version: s, SortKey: artifact.SortKey(v), Created: time.UnixMilli(1700000000000).UTC(),
			Regions: regions, Prerelease: len(v.Pre) > 0, StagedBy: stagedBy})
	}
	return out
}

// allPages reads the whole index page by page, as the hub pages it, and
// returns "version[*][@regions][~staged_by]" words.
func allPages(t *testing.T, d *db.DB, projectID int64, newest bool, limit int) string {
	t.Helper()
	var words []string
	var after []byte
	for pages := 0; ; pages++ {
		page, err := d.VersionPage(context.Background(), projectID, after, newest, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit || pages > 100 {
			t.Fatalf("page of %d, limit %d (page %d)", len(page), limit, pages)
		}
		for _, v := range page {
			w := v.Version
			if v.Prerelease {
				w += "*"
			}
			w += "@" + strings.Join(v.Regions, ",")
			if v.StagedBy != "" {
				w += "~" + v.StagedBy
			}
			words = append(words, w)
		}
		if len(page) < limit {
			return strings.Join(words, " ")
		}
		pv, _ := artifact.ParseVersion(page[len(page)-1].Version)
		after = artifact.SortKey(pv)
	}
}

func TestVersionIndex(t *testing.T) {
	engines(t, func(t *testing.T, open func() *db.DB) {
		ctx := context.Background()
		d := open()
		pid := versionProject(t, d)
		ab := []string{"a", "b"}
		st, err := d.VersionIndex(ctx, pid)
		if err != nil || st.Count != 0 || !st.Synced.IsZero() {
			t.Fatalf("new project's index: %+v, %v", st, err)
		}

		// A full listing, in no particular order: pages follow semver
		// precedence in both directions, whatever the text order.
		t0 := time.UnixMilli(1700000100000)
		all := indexed(t, "", ab, "10.0.0", "2.0.0", "1.0.0", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-1", "0.9.0")
		if err := d.ReplaceVersionIndex(ctx, pid, all, t0); err != nil {
			t.Fatal(err)
		}
		const ascending = "0.9.0@a,b 1.0.0-1*@a,b 1.0.0-alpha*@a,b 1.0.0-alpha.1*@a,b 1.0.0-rc.2*@a,b 1.0.0-rc.10*@a,b 1.0.0@a,b 2.0.0@a,b 10.0.0@a,b"
		for _, limit := range []int{1, 2, 4, 9, 50} {
			if got := allPages(t, d, pid, false, limit); got != ascending {
				t.Errorf("oldest first, pages of %d:\n got %s\nwant %s", limit, got, ascending)
			}
			words := strings.Fields(ascending)
			slices.Reverse(words)
			if got, want := allPages(t, d, pid, true, limit), strings.Join(words, " "); got != want {
				t.Errorf("newest first, pages of %d:\n got %s\nwant %s", limit, got, want)
			}
		}
		// A cursor that is no version of the index still pages.
		cur, _ := artifact.ParseVersion("1.5.0")
		page, err := d.VersionPage(ctx, pid, artifact.SortKey(cur), true, 2)
		if err != nil || len(page) != 2 || page[0].Version != "1.0.0" || page[1].Version != "1.0.0-rc.10" {
			t.Errorf("page before 1.5.0: %+v, %v", page, err)
		}
		if st, err := d.VersionIndex(ctx, pid); err != nil || st.Count != 9 || !st.Synced.Equal(t0) {
			t.Errorf("state after a sync: %+v, %v, want 9 versions synced at %v", st, err, t0)
		}

		// A stage through the hub indexes a version with its manifest's
		// staged_by; a manifest read of a listed version adds it.
		t1 := t0.Add(time.Minute)
		if err := d.IndexVersions(ctx, pid, append(indexed(t, "ci@example.com", ab, "3.0.0"), indexed(t, "ana@example.com", ab, "2.0.0")...), t1); err != nil {
			t.Fatal(err)
		}
		// A listing begun before that stage does not hold 3.0.0: it must
		// not delete it. It drops 0.9.0 (deleted), sees 10.0.0 in one
		// region only, and keeps 2.0.0's staged_by.
		rest := indexed(t, "", ab, "2.0.0", "1.0.0", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-1")
		rest = append(rest, indexed(t, "", []string{"b"}, "10.0.0")...)
		if err := d.ReplaceVersionIndex(ctx, pid, rest, t1.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		want := "10.0.0@b 3.0.0@a,b~ci@example.com 2.0.0@a,b~ana@example.com 1.0.0@a,b"
		if got := allPages(t, d, pid, true, 50); !strings.HasPrefix(got, want+" ") || strings.Contains(got, "0.9.0") {
			t.Errorf("after a second sync: %s, want it to start %s and hold no 0.9.0", got, want)
		}
		// The next listing, begun after the stage, without 3.0.0: deleted.
		t2 := t1.Add(time.Minute)
		if err := d.ReplaceVersionIndex(ctx, pid, rest, t2); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.VersionIndex(ctx, pid); st.Count != 8 || !st.Synced.Equal(t2) {
			t.Errorf("after a sync without 3.0.0: %+v", st)
		}

		// A partial listing only adds: it neither deletes nor narrows
		// regions, nor counts as a sync.
		if err := d.AddListedVersions(ctx, pid, indexed(t, "", []string{"a"}, "4.0.0-beta.1", "2.0.0"), t2.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		want = "10.0.0@b 4.0.0-beta.1*@a 2.0.0@a,b~ana@example.com 1.0.0@a,b"
		if got := allPages(t, d, pid, true, 50); !strings.HasPrefix(got, want+" ") {
			t.Errorf("after a partial listing: %s, want it to start %s", got, want)
		}
		if st, _ := d.VersionIndex(ctx, pid); st.Count != 9 || !st.Synced.Equal(t2) {
			t.Errorf("after a partial listing: %+v", st)
		}
		if err := d.UnindexVersion(ctx, pid, "4.0.0-beta.1"); err != nil {
			t.Fatal(err)
		}

		// 1,000 versions at once (several INSERT batches), then one sync
		// that keeps all but one: the index matches, in order.
		var many []string
		for i := range 1000 {
			many = append(many, "5."+strconv.Itoa(i/10)+"."+strconv.Itoa(i%10))
		}
		if err := d.ReplaceVersionIndex(ctx, pid, indexed(t, "", ab, many...), t2.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := d.ReplaceVersionIndex(ctx, pid, indexed(t, "", ab, many[1:]...), t2.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got := strings.Fields(allPages(t, d, pid, false, 333))
		if len(got) != 999 || got[0] != "5.0.1@a,b" || got[998] != "5.99.9@a,b" {
			t.Errorf("1,000 versions less one: %d, first %v", len(got), got[:min(3, len(got))])
		}

		// The index goes with its project.
		if _, err := d.SQL.ExecContext(ctx, d.Rebind(`DELETE FROM project_members WHERE project_id = ?`), pid); err != nil {
			t.Fatal(err)
		}
		if _, err := d.SQL.ExecContext(ctx, d.Rebind(`DELETE FROM projects WHERE id = ?`), pid); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := d.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM project_versions`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d indexed versions left after the project was deleted (%v)", n, err)
		}
		if _, err := d.VersionIndex(ctx, pid); !errors.Is(err, errkind.NotFound) {
			t.Errorf("index of a deleted project: %v, want not found", err)
		}
	})
}
