package artifact_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/store"
)

// Damaged copies in every region that holds one are corruption, named by
// region; not "unavailable", which would send the user to the network.
func TestDownloadCorruptEverywhere(t *testing.T) {
	ctx := context.Background()
	c := stagedClient(t, random(10<<10), "a", "b", "c")
	corrupt(t, c.Regions[0].Store, "app", "1.0.0")
	corrupt(t, c.Regions[1].Store, "app", "1.0.0")
	c.Regions[2].Store.Delete(ctx, "app/1.0.0/manifest.json")
	out := filepath.Join(t.TempDir(), "out")
	_, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: out})
	if !errors.Is(err, artifact.ErrCorrupt) || errors.Is(err, store.ErrUnavailable) || errors.Is(err, artifact.ErrVersionNotFound) {
		t.Fatalf("err = %v, want ErrCorrupt alone", err)
	}
	if !strings.Contains(err.Error(), "no intact copy of app 1.0.0: the copies in a, b are damaged and the other regions hold none") {
		t.Fatalf("message does not name the regions: %v", err)
	}
	// With a region down, it may hold an intact copy: that is unavailable.
	c.Regions[2].Store = brokenStore{c.Regions[2].Store, fmt.Errorf("dial: %w", store.ErrUnavailable)}
	_, err = c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: out})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable among the kinds", err)
	}
}

// A refused region says so in its status and kind, for text and JSON.
func TestRefusedRegionStatus(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a", "b")
	c.Regions[1].Store = brokenStore{c.Regions[1].Store, fmt.Errorf("AccessDenied: %w", store.ErrPermissionDenied)}
	res, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, []byte("x")), artifact.StageOptions{})
	if !errors.Is(err, store.ErrPermissionDenied) {
		t.Fatalf("err = %v", err)
	}
	if r := res.Regions[1]; r.Status != artifact.StatusRefused || r.Kind != artifact.KindRefused || r.Err() == nil {
		t.Fatalf("refused region = %+v", r)
	}
	dl, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: filepath.Join(t.TempDir(), "out"), PreferRegion: "b"})
	if err != nil || len(dl.Failures) != 1 || dl.Failures[0].Status != artifact.StatusRefused {
		t.Fatalf("download = %+v, %v", dl, err)
	}
	v, err := c.Verify(ctx, "app", "1.0.0", false)
	if !errors.Is(err, artifact.ErrVerifyFailed) || v.Regions[1].Status != artifact.VerifyRefused {
		t.Fatalf("verify = %+v, %v", v, err)
	}
}

// verify calls a copy whose data object is gone "missing", and repairs it.
func TestVerifyMissingData(t *testing.T) {
	ctx := context.Background()
	c := stagedClient(t, random(1<<10), "a", "b")
	objs, _ := c.Regions[1].Store.List(ctx, "app/1.0.0/data/")
	if err := c.Regions[1].Store.Delete(ctx, objs[0].Key); err != nil {
		t.Fatal(err)
	}
	res, err := c.Verify(ctx, "app", "1.0.0", false)
	if !errors.Is(err, artifact.ErrVerifyFailed) || res.Regions[1].Status != artifact.VerifyMissing || !strings.Contains(res.Regions[1].Error, "data object") {
		t.Fatalf("verify = %+v, %v", res.Regions, err)
	}
	if _, err := c.Verify(ctx, "app", "1.0.0", true); err != nil {
		t.Fatalf("repair: %v", err)
	}
	// Data gone everywhere, manifests present: not "version not found".
	for _, r := range c.Regions {
		objs, _ := r.Store.List(ctx, "app/1.0.0/data/")
		for _, o := range objs {
			r.Store.Delete(ctx, o.Key)
		}
	}
	res, err = c.Verify(ctx, "app", "1.0.0", false)
	if errors.Is(err, artifact.ErrVersionNotFound) || !errors.Is(err, artifact.ErrVerifyFailed) || res.Regions[0].Status != artifact.VerifyMissing {
		t.Fatalf("verify with data gone everywhere = %+v, %v", res, err)
	}
}

// verify reports the temporary files a killed writer left in a local store,
// once they are older than the grace period, without failing for them.
func TestVerifyReportsLeftoverTempFiles(t *testing.T) {
	ctx := context.Background()
	c := stagedClient(t, random(1<<10), "a")
	dir := strings.TrimPrefix(c.Regions[0].Store.String(), "file://")
	old := filepath.Join(dir, "app", "1.0.0", ".berth-tmp-killed")
	fresh := filepath.Join(dir, "app", ".berth-tmp-writing")
	other := filepath.Join(dir, "otherapp", ".berth-tmp-killed")
	for _, p := range []string{old, fresh, other} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-2 * artifact.TempGrace)
	os.Chtimes(old, then, then)
	os.Chtimes(other, then, then)
	res, err := c.Verify(ctx, "app", "1.0.0", false)
	if err != nil {
		t.Fatalf("leftover temporary files are not a verify failure: %v", err)
	}
	if got := res.Regions[0].TempFiles; len(got) != 1 || got[0] != "app/1.0.0/.berth-tmp-killed" {
		t.Fatalf("temp files = %v, want only the old one of this project", got)
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("x: %w", store.ErrPermissionDenied), artifact.KindRefused},
		{fmt.Errorf("x: %w", store.ErrUnavailable), artifact.KindUnavailable},
		{fmt.Errorf("x: %w", store.ErrNotFound), artifact.KindNotFound},
		{fmt.Errorf("x: %w", artifact.ErrCorrupt), artifact.KindCorrupt},
		{fmt.Errorf("x: %w", artifact.ErrUntrusted), artifact.KindUntrusted},
		{fmt.Errorf("x: %w", artifact.ErrConflict), artifact.KindConflict},
		{fmt.Errorf("x: %w", artifact.ErrInvalid), artifact.KindInvalid},
		{fmt.Errorf("x: %w", context.Canceled), artifact.KindInterrupted},
		{errors.New("boom"), ""},
	}
	for _, tt := range tests {
		if got := artifact.KindOf(tt.err); got != tt.want {
			t.Errorf("KindOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
