package filestore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/filestore"
	"github.com/berth-dev/berth/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := filestore.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestKeysStayInsideRoot(t *testing.T) {
	dir := t.TempDir()
	s, err := filestore.New(filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../escape", "/abs", "a//b", "a/./b", "a\\b", "", "a/.berth-tmp-x"} {
		_, err := s.Put(context.Background(), key, strings.NewReader("x"), 1, store.PutOptions{})
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("put %q: err = %v, want ErrInvalid", key, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
		t.Fatal("a key escaped the root")
	}
}

// TestSymlinksDoNotLeadOut plants links inside the store that point outside
// it: no operation may read, write, list or delete through them.
func TestSymlinksDoNotLeadOut(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	root, outside := filepath.Join(base, "store"), filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("outside data"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"abs":          outside,                        // a directory, absolute
		"rel":          filepath.Join("..", "outside"), // a directory, relative
		"file":         secret,                         // a file
		"app/manifest": filepath.Join("..", "..", "outside", "secret"),
	} {
		p := filepath.Join(root, filepath.FromSlash(link))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	s, err := filestore.New(root)
	if err != nil {
		t.Fatal(err)
	}

	for _, key := range []string{"abs/new", "rel/new", "abs/secret", "rel/deep/new"} {
		_, err := s.Put(ctx, key, strings.NewReader("planted"), 7, store.PutOptions{})
		if !errors.Is(err, store.ErrInvalid) || !errors.Is(err, filestore.ErrOutsideRoot) {
			t.Errorf("put %s: err = %v, want ErrOutsideRoot", key, err)
		}
	}
	for _, key := range []string{"abs/secret", "rel/secret", "file", "app/manifest"} {
		if rc, _, err := s.Get(ctx, key, store.Range{}); err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			t.Errorf("get %s read %q from outside the store", key, b)
		} else if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("get %s: err = %v, want ErrInvalid", key, err)
		}
		if _, err := s.Stat(ctx, key); err == nil {
			t.Errorf("stat %s followed a link out of the store", key)
		}
		if _, err := s.Put(ctx, key, strings.NewReader("x"), 1, store.PutOptions{IfNoneMatch: true}); err == nil {
			t.Errorf("create-only put %s succeeded over a link", key)
		}
	}
	for _, prefix := range []string{"", "abs/", "rel/", "app/"} {
		list, err := s.List(ctx, prefix)
		if err != nil {
			t.Errorf("list %q: %v", prefix, err)
		}
		if len(list) != 0 {
			t.Errorf("list %q = %+v, want nothing (the only files are outside)", prefix, list)
		}
	}
	for _, key := range []string{"abs/secret", "rel/secret"} {
		if err := s.Delete(ctx, key); err == nil {
			t.Errorf("delete %s: no error", key)
		}
	}
	// Replacing or deleting a link key acts on the link, never its target.
	if _, err := s.Put(ctx, "file", strings.NewReader("mine"), 4, store.PutOptions{}); err != nil {
		t.Fatalf("put over a file link: %v", err)
	}
	if err := s.Delete(ctx, "app/manifest"); err != nil {
		t.Fatalf("delete a file link: %v", err)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "outside data" {
		t.Fatalf("the file outside the store is now %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Fatalf("files appeared outside the store: %v", entries)
	}
	if got := read(t, s, "file"); got != "mine" {
		t.Fatalf("file = %q", got)
	}
}

// TestLinksInsideRootWork: links that stay inside the store are followed.
func TestLinksInsideRootWork(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, _ := filestore.New(root)
	if _, err := s.Put(ctx, "real/a", strings.NewReader("abc"), 3, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(root, "alias")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, "alias/a"); got != "abc" {
		t.Fatalf("alias/a = %q", got)
	}
	list, err := s.List(ctx, "alias/")
	if err != nil || len(list) != 1 || list[0].Key != "alias/a" {
		t.Fatalf("list alias/ = %+v, %v", list, err)
	}
}

func TestModesFollowUmask(t *testing.T) {
	for _, tc := range []struct {
		umask     int
		file, dir os.FileMode
	}{
		{0o022, 0o644, 0o755},
		{0o002, 0o664, 0o775},
		{0o077, 0o600, 0o700},
	} {
		old := syscall.Umask(tc.umask)
		t.Cleanup(func() { syscall.Umask(old) })
		root := filepath.Join(t.TempDir(), "store")
		s, _ := filestore.New(root)
		for _, opts := range []store.PutOptions{{}, {IfNoneMatch: true}} {
			key := "app/1.0.0/data"
			if opts.IfNoneMatch {
				key = "app/1.0.0/manifest.json"
			}
			if _, err := s.Put(context.Background(), key, strings.NewReader("x"), 1, opts); err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(filepath.Join(root, filepath.FromSlash(key)))
			if fi.Mode().Perm() != tc.file {
				t.Errorf("umask %03o: %s has mode %v, want %v", tc.umask, key, fi.Mode().Perm(), tc.file)
			}
		}
		for _, d := range []string{"", "app", "app/1.0.0"} {
			fi, _ := os.Stat(filepath.Join(root, d))
			if fi.Mode().Perm() != tc.dir {
				t.Errorf("umask %03o: directory %q has mode %v, want %v", tc.umask, d, fi.Mode().Perm(), tc.dir)
			}
		}
	}
}

func TestReadsDoNotCreateTheStore(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "missing", "store")
	s, err := filestore.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "a/b", store.Range{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "a/b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stat: %v, want ErrNotFound", err)
	}
	if list, err := s.List(ctx, "a/"); err != nil || len(list) != 0 {
		t.Errorf("list: %v, %v", list, err)
	}
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Errorf("delete: %v", err)
	}
	if tmp, err := s.TempFiles(ctx, 0); err != nil || len(tmp) != 0 {
		t.Errorf("temp files: %v, %v", tmp, err)
	}
	if _, err := os.Stat(filepath.Dir(root)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read created the store directory: %v", err)
	}
	if _, err := s.Put(ctx, "a/b", strings.NewReader("x"), 1, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, "a/b"); got != "x" {
		t.Fatalf("a/b = %q", got)
	}
}

func TestRefusesFilesystemRoot(t *testing.T) {
	for _, dir := range []string{"/", "/..", "//"} {
		if _, err := filestore.New(dir); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "filesystem root") {
			t.Errorf("New(%q) = %v, want ErrInvalid naming the filesystem root", dir, err)
		}
	}
}

func TestFIFOIsNotAnObject(t *testing.T) {
	root := t.TempDir()
	s, _ := filestore.New(root)
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Get(context.Background(), "pipe", store.Range{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("get of a FIFO: %v, want ErrInvalid", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("get of a FIFO hangs")
	}
	if list, _ := s.List(context.Background(), ""); len(list) != 0 {
		t.Fatalf("list shows a FIFO: %+v", list)
	}
}

func TestTempFiles(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, _ := filestore.New(root)
	info, err := s.Put(ctx, "app/1.0.0/manifest.json", strings.NewReader("{}"), 2, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Replace-if-unchanged creates the store's lock file.
	if _, err := s.Put(ctx, "app/1.0.0/manifest.json", strings.NewReader("{ }"), 3, store.PutOptions{IfMatch: info.ETag}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	plant := func(rel string, mtime time.Time) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	plant("app/1.0.0/.berth-tmp-dead", old)
	plant(".berth-tmp-dead2", old)
	plant("app/.berth-tmp-fresh", time.Now())
	lock := filepath.Join(root, ".berth-tmp-lock")
	if _, err := os.Stat(lock); err != nil {
		t.Fatalf("no lock file: %v", err)
	}
	os.Chtimes(lock, old, old)

	want := []string{".berth-tmp-dead2", "app/1.0.0/.berth-tmp-dead"}
	got, err := s.TempFiles(ctx, time.Hour)
	if err != nil || keys(got) != strings.Join(want, ",") {
		t.Fatalf("TempFiles = %v, %v; want %v", keys(got), err, want)
	}
	if got[0].Size != 7 || !got[0].Modified.Equal(old) {
		t.Fatalf("TempFiles info = %+v", got[0])
	}
	if all, _ := s.TempFiles(ctx, 0); len(all) != 3 {
		t.Fatalf("TempFiles(0) = %v, want the three planted files", keys(all))
	}
	removed, err := s.RemoveTempFiles(ctx, time.Hour)
	if err != nil || keys(removed) != strings.Join(want, ",") {
		t.Fatalf("RemoveTempFiles = %v, %v", keys(removed), err)
	}
	for _, rel := range want {
		if _, err := os.Stat(filepath.Join(root, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there: %v", rel, err)
		}
	}
	for _, rel := range []string{"app/.berth-tmp-fresh", ".berth-tmp-lock", "app/1.0.0/manifest.json"} {
		if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
			t.Errorf("%s was removed: %v", rel, err)
		}
	}
	if list, _ := s.List(ctx, ""); keys(list) != "app/1.0.0/manifest.json" {
		t.Fatalf("list = %v", keys(list))
	}
}

func TestNoTempFilesLeft(t *testing.T) {
	dir := t.TempDir()
	s, _ := filestore.New(dir)
	s.Put(context.Background(), "a/b", strings.NewReader("abc"), 10, store.PutOptions{})
	entries, _ := os.ReadDir(filepath.Join(dir, "a"))
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}

func read(t *testing.T, s store.Store, key string) string {
	t.Helper()
	rc, _, err := s.Get(context.Background(), key, store.Range{})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	var b bytes.Buffer
	io.Copy(&b, rc)
	return b.String()
}

func keys(infos []store.Info) string {
	var k []string
	for _, i := range infos {
		k = append(k, i.Key)
	}
	return strings.Join(k, ",")
}

// TestStoreDirectoryRecreated: a long-running process keeps working when
// the store directory is removed and made again under it.
func TestStoreDirectoryRecreated(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	s, _ := filestore.New(root)
	if _, err := s.Put(ctx, "a/b", strings.NewReader("one"), 3, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "a/b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stat after removal: %v", err)
	}
	if _, err := s.Put(ctx, "a/b", strings.NewReader("two"), 3, store.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatalf("put after removal: %v", err)
	}
	if got := read(t, s, "a/b"); got != "two" {
		t.Fatalf("a/b = %q", got)
	}
}
