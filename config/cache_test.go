package config

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/store"
)

func TestRegionCacheStore(t *testing.T) {
	for _, tc := range []struct {
		doc, err string
	}{
		{"regions:\n  - name: a\n    store: file:///a\n    cache: file:///c", ""},
		{"regions:\n  - name: a\n    store: s3://art?region=eu-west-1\n    cache: s3://art-cache?region=eu-west-1", ""},
		{"regions:\n  - name: a\n    store: file:///a\n    cache: relative/dir", "region a cache: store URL"},
		{"regions:\n  - name: a\n    store: file:///a\n    cache: s3://Bad_Bucket?region=eu-west-1", "region a cache: store URL"},
	} {
		c, err := Parse("test.yaml", []byte(tc.doc))
		if tc.err == "" {
			if err != nil {
				t.Errorf("Parse(%q): %v", tc.doc, err)
			} else if c.Regions[0].Cache == "" {
				t.Errorf("Parse(%q) lost the cache store", tc.doc)
			}
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid saying %q", tc.doc, err, tc.err)
		}
	}
}

// OpenCache puts the cache under _cache/ in the artifact store, or at the
// configured prefix of the region's own cache store.
func TestOpenCache(t *testing.T) {
	art, own := t.TempDir(), t.TempDir()
	c := &Config{Prefix: "rel", Regions: []Region{
		{Name: "a", Store: "file://" + art},
		{Name: "b", Store: "file://" + art, Cache: "file://" + own},
	}}
	stores, err := c.OpenCache(context.Background(), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(stores) != 2 || stores[0].Name != "a" || stores[1].Name != "b" {
		t.Fatalf("OpenCache = %+v", stores)
	}
	for i, want := range []string{filepath.Join(art, "rel", "_cache", "k"), filepath.Join(own, "rel", "k")} {
		if _, err := stores[i].Store.Put(context.Background(), "k", bytes.NewReader([]byte("x")), 1, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(want)
		if err != nil {
			t.Fatalf("region %s: %v", stores[i].Name, err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != "x" {
			t.Errorf("%s holds %q", want, b)
		}
	}
}
