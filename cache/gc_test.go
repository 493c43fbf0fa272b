package cache_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/cache"
	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/pointer"
)

// berth gc on an artifact store leaves the cache kept in it (under
// _cache/, the default) alone, even with every object past the grace.
func TestArtifactGCKeepsCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &config.Config{Regions: []config.Region{{Name: "a", Store: "file://" + dir}}}
	stores, err := cfg.OpenCache(ctx, config.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("cached"), 0o644)
	c := &cache.Client{Regions: []cache.Region{{Name: "a", Store: stores[0].Store}}}
	if _, err := c.Save(ctx, "k-1", src, []string{"f"}); err != nil {
		t.Fatal(err)
	}
	regions, err := cfg.Open(ctx, config.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	regions[0].Pointer = pointer.InStore{Store: regions[0].Store}
	ac := &artifact.Client{Regions: regions}
	later := func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }
	res, err := ac.GC(ctx, artifact.GCOptions{Delete: true, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Regions[0].Orphans); n != 0 {
		t.Errorf("gc took %d cache objects for orphans: %+v", n, res.Regions[0].Orphans)
	}
	if _, err := c.Restore(ctx, "k-1", nil, t.TempDir()); err != nil {
		t.Fatalf("restore after gc: %v", err)
	}
}
