package artifact_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/artifact"
)

// stage takes only regular files, and says so at once: opening a FIFO for
// reading would block until a writer comes, deaf to Ctrl-C.
func TestStageRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path string }{
		{"named pipe", fifo},
		{"directory", dir},
		{"character device", os.DevNull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, "a")
			done := make(chan error, 1)
			go func() {
				_, err := c.Stage(context.Background(), "app", "1.0.0", tt.path, artifact.StageOptions{})
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, artifact.ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
			case <-time.After(10 * time.Second):
				if w, err := os.OpenFile(tt.path, os.O_WRONLY, 0); err == nil {
					w.Close() // let the stuck stage go
				}
				t.Fatalf("stage of a %s still blocked after 10s", tt.name)
			}
			if objs, _ := c.Regions[0].Store.List(context.Background(), ""); len(objs) != 0 {
				t.Fatalf("stage wrote %v", objs)
			}
		})
	}
}

// A region whose manifest lost its data object is not "present": staging the
// same bytes again puts them back under the key the manifest names; other
// bytes are a conflict that leaves nothing behind.
func TestStageRefillsLostData(t *testing.T) {
	ctx := context.Background()
	data := random(100 << 10)
	c := stagedClient(t, data, "a", "b")
	b := c.Regions[1].Store
	lose := func() {
		t.Helper()
		objs, err := b.List(ctx, "app/1.0.0/data/")
		if err != nil || len(objs) != 1 {
			t.Fatalf("data objects in b: %v %v", objs, err)
		}
		if err := b.Delete(ctx, objs[0].Key); err != nil {
			t.Fatal(err)
		}
	}
	lose()
	res, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Regions[0].Status != artifact.StatusPresent || res.Regions[1].Status != artifact.StatusRefilled {
		t.Fatalf("regions = %+v, want a present and b refilled", res.Regions)
	}
	if v, err := c.Verify(ctx, "app", "1.0.0", false); err != nil {
		t.Fatalf("verify after the refill: %+v %v", v, err)
	}

	lose()
	other := random(100 << 10)
	if _, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, other), artifact.StageOptions{}); !errors.Is(err, artifact.ErrConflict) {
		t.Fatalf("other bytes: err = %v, want ErrConflict", err)
	}
	if objs, _ := b.List(ctx, "app/1.0.0/data/"); len(objs) != 0 {
		t.Fatalf("a conflicting stage left %v behind the manifest", objs)
	}
}
