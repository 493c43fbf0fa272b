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
