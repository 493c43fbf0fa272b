package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/store"
)

// Names listed from a store and pointers read from it are outside input:
// what stage could not have written is left out or refused.
func TestListedNamesAndPointersAreChecked(t *testing.T) {
	ctx := context.Background()
	c := stagedClient(t, []byte("x"), "a")
	s := c.Regions[0].Store
	put := func(key, body string) {
		t.Helper()
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte(body)), int64(len(body)), store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("app/1.0.0 evil/manifest.json", "{}")
	put("app/not-a-version/manifest.json", "{}")
	vs, err := c.Versions(ctx, "app")
	if err != nil || len(vs) != 1 || vs[0].Version != "1.0.0" {
		t.Fatalf("versions = %+v, %v; want only 1.0.0", vs, err)
	}

	put("app/latest.json", `{"version": "9.9.9\u001b[2J"}`)
	if _, err := c.Info(ctx, "app", "latest"); !errors.Is(err, artifact.ErrCorrupt) {
		t.Fatalf("info with a garbled pointer: err = %v, want ErrCorrupt", err)
	}
	put("app/latest.json", `not json`)
	if _, err := c.Info(ctx, "app", "latest"); !errors.Is(err, artifact.ErrCorrupt) || errors.Is(err, artifact.ErrInvalid) || errors.Is(err, store.ErrInvalid) {
		t.Fatalf("info with a malformed pointer: err = %v, want ErrCorrupt and not invalid input", err)
	}
	d, err := c.Info(ctx, "app", "1.0.0")
	if err != nil || d.Latest != "" {
		t.Fatalf("info 1.0.0 = latest %q, %v; want no latest", d.Latest, err)
	}
}
