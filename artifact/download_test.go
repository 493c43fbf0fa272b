package artifact_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/store"
)

// byteCounter counts the bytes a transfer moved.
type byteCounter struct{ n *atomic.Int64 }

func (b byteCounter) Add(n int) { b.n.Add(int64(n)) }
func (byteCounter) Done(error)  {}

func countBytes(c *artifact.Client) *atomic.Int64 {
	var n atomic.Int64
	c.Progress = func(string, int64) artifact.ProgressBar { return byteCounter{&n} }
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

// A download gets the mode the file had at stage time, minus the umask; a
// manifest without a mode (older berth) gives what os.Create would.
func TestDownloadRestoresMode(t *testing.T) {
	ctx := context.Background()
	old := syscall.Umask(0o027)
	t.Cleanup(func() { syscall.Umask(old) })
	tests := []struct {
		staged, want fs.FileMode
	}{
		{0o755, 0o750},
		{0o644, 0o640},
		{0o600, 0o600},
		{0o444, 0o440},
		{0o500, 0o500},
		{0o777, 0o750},
	}
	for _, tt := range tests {
		t.Run(tt.staged.String(), func(t *testing.T) {
			c := newClient(t, "a")
			file := writeFile(t, []byte("#!/bin/sh\n"))
			if err := os.Chmod(file, tt.staged); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Stage(ctx, "app", "1.0.0", file, artifact.StageOptions{}); err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(ctx, "app", "1.0.0")
			if err != nil || info.Mode != fmt.Sprintf("%04o", tt.staged) {
				t.Fatalf("manifest mode %q (%v), want %04o", info.Mode, err, tt.staged)
			}
			out := filepath.Join(t.TempDir(), "out")
			if _, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: out}); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != tt.want {
				t.Fatalf("downloaded mode %v (%v), want %v", fi.Mode().Perm(), err, tt.want)
			}
		})
	}
	t.Run("no mode recorded", func(t *testing.T) {
		c := newClient(t, "a")
		if _, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, []byte("x")), artifact.StageOptions{}); err != nil {
			t.Fatal(err)
		}
		rewriteManifest(t, c.Regions[0].Store, "app", "1.0.0", func(m map[string]any) { delete(m, "mode") })
		out := filepath.Join(t.TempDir(), "out")
		if _, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: out}); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o640 {
			t.Fatalf("downloaded mode %v (%v), want 0640", fi.Mode().Perm(), err)
		}
	})
}

// rewriteManifest edits a stored manifest as raw JSON, as an older berth or
// someone with write access to the store could have written it.
func rewriteManifest(t *testing.T, s store.Store, project, version string, edit func(map[string]any)) {
	t.Helper()
	ctx := context.Background()
	key := project + "/" + version + "/manifest.json"
	rc, _, err := s.Get(ctx, key, store.Range{})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	data, _ = json.Marshal(m)
	if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}
