package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/artifact"
)

// countingBar counts the bytes a transfer moved.
type countingBar struct{ n *atomic.Int64 }

func (b countingBar) Add(n int) { b.n.Add(int64(n)) }
func (countingBar) Done(error)  {}

func countBytes(c *artifact.Client) *atomic.Int64 {
	var n atomic.Int64
	c.Progress = func(string, int64) artifact.ProgressBar { return countingBar{&n} }
	return &n
}

func stagedClient(t *testing.T, data []byte, regions ...string) *artifact.Client {
	t.Helper()
	c := newClient(t, regions...)
	if _, err := c.Stage(context.Background(), "app", "1.0.0", writeFile(t, data), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	return c
}

// A download replaces only a regular file or a missing path, and refuses
// anything else before it transfers a byte: a rename over a link, a FIFO
// or a device node would replace that node with a regular file.
func TestDownloadReplacesOnlyRegularFiles(t *testing.T) {
	ctx := context.Background()
	data := random(64 << 10)
	c := stagedClient(t, data, "a")
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string
		check func(t *testing.T, path string)
	}{
		{"symbolic link", func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "real"), []byte("keep"), 0o644)
			p := filepath.Join(dir, "link")
			if err := os.Symlink("real", p); err != nil {
				t.Fatal(err)
			}
			return p
		}, func(t *testing.T, p string) {
			if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the link was replaced: %v %v", fi, err)
			}
			if got, _ := os.ReadFile(p); string(got) != "keep" {
				t.Errorf("the link's target changed: %q", got)
			}
		}},
		{"named pipe", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "fifo")
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, func(t *testing.T, p string) {
			if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
				t.Errorf("the pipe was replaced: %v %v", fi, err)
			}
		}},
		{"directory", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "sub")
			os.Mkdir(p, 0o755)
			return p
		}, func(t *testing.T, p string) {
			if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
				t.Errorf("the directory was replaced: %v %v", fi, err)
			}
		}},
		{"missing directory", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "nodir", "out")
		}, func(t *testing.T, p string) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := tt.setup(t, dir)
			before, _ := os.ReadDir(dir)
			moved := countBytes(c)
			_, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: p})
			if !errors.Is(err, artifact.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if moved.Load() != 0 {
				t.Errorf("transferred %d bytes before refusing", moved.Load())
			}
			tt.check(t, p)
			if after, _ := os.ReadDir(dir); len(after) != len(before) {
				t.Errorf("files left beside the target: %v", after)
			}
		})
	}
	t.Run("regular file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "out")
		os.WriteFile(p, []byte("old"), 0o644)
		if _, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: p}); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, data) {
			t.Fatal("bytes differ")
		}
	})
}

// A writer gets the verified bytes once, and never those of a corrupted
// copy, even when a later region holds an intact one.
func TestDownloadToWriter(t *testing.T) {
	ctx := context.Background()
	data := random(300 << 10)
	c := stagedClient(t, data, "a", "b")
	t.Setenv("TMPDIR", t.TempDir())
	corrupt(t, c.Regions[0].Store, "app", "1.0.0")
	var buf bytes.Buffer
	res, err := c.Download(ctx, "app", "latest", artifact.DownloadOptions{Writer: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) || res.Region != "b" || res.Path != "-" || len(res.Failures) != 1 {
		t.Fatalf("got %d bytes from %s (%+v), want %d from b", buf.Len(), res.Region, res, len(data))
	}
	corrupt(t, c.Regions[1].Store, "app", "1.0.0")
	buf.Reset()
	if _, err := c.Download(ctx, "app", "latest", artifact.DownloadOptions{Writer: &buf}); !errors.Is(err, artifact.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("the writer got %d unverified bytes", buf.Len())
	}
	if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// Into a directory, the stager names the file: an existing file is replaced
// only with Force, a hidden name written only with AllowDotfile, and a
// refusal comes before any transfer.
func TestDownloadIntoDirectory(t *testing.T) {
	ctx := context.Background()
	data := random(32 << 10)
	c := newClient(t, "a")
	if _, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stage(ctx, "dot", "1.0.0", writeFile(t, data), artifact.StageOptions{Filename: ".bashrc"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	existing := filepath.Join(dir, "app.tar.gz")
	os.WriteFile(existing, []byte("mine"), 0o644)
	moved := countBytes(c)
	_, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Dir: dir})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("existing file: err = %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(existing); string(got) != "mine" || moved.Load() != 0 {
		t.Fatalf("refused download changed the file (%q) or transferred %d bytes", got, moved.Load())
	}
	if _, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Dir: dir, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(existing); !bytes.Equal(got, data) {
		t.Fatal("Force did not replace the file")
	}
	moved.Store(0)

	_, err = c.Download(ctx, "dot", "1.0.0", artifact.DownloadOptions{Dir: dir})
	if !errors.Is(err, artifact.ErrInvalid) || moved.Load() != 0 {
		t.Fatalf("hidden name: err = %v, %d bytes moved; want ErrInvalid before any transfer", err, moved.Load())
	}
	if _, err := os.Lstat(filepath.Join(dir, ".bashrc")); err == nil {
		t.Fatal("a hidden file was written without AllowDotfile")
	}
	if _, err := c.Download(ctx, "dot", "1.0.0", artifact.DownloadOptions{Dir: dir, AllowDotfile: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, ".bashrc")); !bytes.Equal(got, data) {
		t.Fatal("AllowDotfile did not write the file")
	}
}
