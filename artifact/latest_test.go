package artifact_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store"
)

func latestPair(t *testing.T, c *artifact.Client) (string, string) {
	t.Helper()
	d, err := c.Info(context.Background(), "app", artifact.LatestPrerelease)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != d.LatestPrerelease {
		t.Fatalf("info latest-prerelease shows %s, its pointer holds %s", d.Version, d.LatestPrerelease)
	}
	return d.Latest, d.LatestPrerelease
}

// latest is the highest release, as with npm and GitHub: a prerelease moves
// only latest-prerelease, unless the stage forces latest.
func TestLatestIsTheHighestRelease(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a")
	stage := func(v string, force bool) *artifact.StageResult {
		t.Helper()
		res, err := c.Stage(ctx, "app", v, writeFile(t, []byte(v)), artifact.StageOptions{ForceLatest: force})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	steps := []struct {
		version          string
		force            bool
		latest, prerelea string
	}{
		{"4.8.0", false, "4.8.0", "4.8.0"},
		{"5.0.0-beta.2", false, "4.8.0", "5.0.0-beta.2"},
		{"4.9.0", false, "4.9.0", "5.0.0-beta.2"},
		{"5.0.0-beta.1", false, "4.9.0", "5.0.0-beta.2"},
		{"5.0.0", false, "5.0.0", "5.0.0"},
		{"6.0.0-rc.1", true, "6.0.0-rc.1", "6.0.0-rc.1"},
		{"5.1.0", false, "5.1.0", "6.0.0-rc.1"},
	}
	for _, s := range steps {
		res := stage(s.version, s.force)
		latest, pre := latestPair(t, c)
		if latest != s.latest || pre != s.prerelea {
			t.Fatalf("after %s: latest %s, latest-prerelease %s; want %s, %s", s.version, latest, pre, s.latest, s.prerelea)
		}
		if r := res.Regions[0]; r.LatestMoved != (latest == s.version) || r.PrereleaseMoved != (pre == s.version) {
			t.Fatalf("after %s: result %+v", s.version, r)
		}
	}
	for name, want := range map[string]string{artifact.Latest: "5.1.0", artifact.LatestPrerelease: "6.0.0-rc.1"} {
		out := filepath.Join(t.TempDir(), "out")
		dl, err := c.Download(ctx, "app", name, artifact.DownloadOptions{Path: out})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(out); dl.Version != want || string(got) != want {
			t.Fatalf("download %s = %s (%q), want %s", name, dl.Version, got, want)
		}
	}
}

// A store from before latest-prerelease has one pointer, which counted
// prereleases. It keeps working: latest-prerelease reads it, and the next
// release moves latest past a prerelease left there.
func TestLatestInAnOldStore(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a")
	s := c.Regions[0].Store
	for _, v := range []string{"4.8.0", "5.0.0-beta.2"} {
		if _, err := c.Stage(ctx, "app", v, writeFile(t, []byte(v)), artifact.StageOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// What older berth left: latest.json on the beta, no other pointer.
	old := []byte(`{"version":"5.0.0-beta.2","updated":"2026-01-01T00:00:00Z"}`)
	if _, err := s.Put(ctx, "app/latest.json", bytes.NewReader(old), int64(len(old)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "app/prerelease/latest.json"); err != nil {
		t.Fatal(err)
	}
	if v, err := (pointer.InStore{Store: s}).Get(ctx, "app", pointer.LatestPrerelease); err == nil {
		t.Fatalf("setup: latest-prerelease still holds %s", v)
	}
	if latest, pre := latestPair(t, c); latest != "5.0.0-beta.2" || pre != "5.0.0-beta.2" {
		t.Fatalf("old store: latest %s, latest-prerelease %s", latest, pre)
	}
	if _, err := c.Stage(ctx, "app", "4.9.0", writeFile(t, []byte("4.9.0")), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	if latest, pre := latestPair(t, c); latest != "4.9.0" || pre != "5.0.0-beta.2" {
		t.Fatalf("after 4.9.0: latest %s, latest-prerelease %s; want 4.9.0, 5.0.0-beta.2", latest, pre)
	}
}
