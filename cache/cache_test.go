package cache_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/berth-dev/berth/cache"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/filestore"
)

// fileRegions opens n file stores as regions.
func fileRegions(t *testing.T, n int) []cache.Region {
	t.Helper()
	var rs []cache.Region
	for i := range n {
		s, err := filestore.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, cache.Region{Name: fmt.Sprintf("r%d", i), Store: s})
	}
	return rs
}

// makeTree writes a tree with nested directories, an empty one, a
// read-only one, executable and private files and relative symlinks.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	files := []struct {
		name string
		mode fs.FileMode
		body string
	}{
		{"tree/a.txt", 0o644, "alpha\n"},
		{"tree/run.sh", 0o755, "#!/bin/sh\necho hi\n"},
		{"tree/secret", 0o600, "s3cr3t"},
		{"tree/sub/deep/b.bin", 0o640, string(bytes.Repeat([]byte{0, 1, 2, 255}, 50000))},
		{"tree/ro/c.txt", 0o444, "read only"},
		// Larger than the buffer pack and restore copy bodies through.
		{"tree/sub/large.bin", 0o644, string(bytes.Repeat([]byte("0123456789abcdef"), 5<<20/32+7))},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	for _, d := range []string{"tree/empty"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range [][2]string{{"tree/link", "a.txt"}, {"tree/sub/up", "../run.sh"}, {"tree/dirlink", "sub/deep"}, {"tree/dangling", "missing"}} {
		if err := os.Symlink(l[1], filepath.Join(dir, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tree/ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "tree/ro"), 0o755) })
}

// snapshot describes every entry under dir: type, mode, content or link.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			desc += fmt.Sprintf(" %s %s", hex.EncodeToString(sum[:8]), fi.ModTime().UTC().Format(time.RFC3339))
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func chmodAll(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}

func roundTrip(t *testing.T, regions []cache.Region) {
	ctx := context.Background()
	src := t.TempDir()
	makeTree(t, src)
	c := &cache.Client{Regions: regions}
	res, err := c.Save(ctx, "deps-linux-1", src, []string{"tree"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Saved {
			t.Errorf("region %s: not saved on the first save", r.Region)
		}
	}
	dst := t.TempDir()
	t.Cleanup(func() { chmodAll(dst) })
	got, err := c.Restore(ctx, "deps-linux-1", nil, dst)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != "deps-linux-1" || !got.Exact || got.Region != regions[0].Name {
		t.Errorf("Restore = %+v", got)
	}
	want, have := snapshot(t, filepath.Join(src, "tree")), snapshot(t, filepath.Join(dst, "tree"))
	for k, v := range want {
		if have[k] != v {
			t.Errorf("%s: restored %q, saved %q", k, have[k], v)
		}
	}
	if len(have) != len(want) {
		t.Errorf("restored %d entries, saved %d", len(have), len(want))
	}
	// A second save of the key is a no-op.
	res, err = c.Save(ctx, "deps-linux-1", src, []string{"tree/a.txt"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Saved {
			t.Errorf("region %s: second save stored again", r.Region)
		}
	}
}

func TestRoundTripFileStore(t *testing.T) { roundTrip(t, fileRegions(t, 2)) }

func TestRestoreKeyPrefixPicksNewest(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), nil, 0o644)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &cache.Client{Regions: fileRegions(t, 1), Now: func() time.Time { return clock }}
	// Saved in this order: the newest is not the last by name.
	for _, k := range []string{"go-b", "go-c", "go-a", "npm-x"} {
		clock = clock.Add(time.Millisecond)
		os.WriteFile(filepath.Join(src, "f"), []byte(k), 0o644)
		if _, err := c.Save(ctx, k, src, []string{"f"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		key      string
		prefixes []string
		want     string
	}{
		{"go-c", []string{"go-"}, "go-c"},                    // exact beats prefixes
		{"go-zzz", []string{"go-"}, "go-a"},                  // newest, not last by name
		{"go-zzz", []string{"nope-", "go-", "npm-"}, "go-a"}, // first matching prefix
		{"x", []string{"npm-", "go-"}, "npm-x"},
	} {
		dst := t.TempDir()
		got, err := c.Restore(ctx, tc.key, tc.prefixes, dst)
		if err != nil {
			t.Fatalf("Restore(%s, %v): %v", tc.key, tc.prefixes, err)
		}
		b, _ := os.ReadFile(filepath.Join(dst, "f"))
		if got.Key != tc.want || string(b) != tc.want {
			t.Errorf("Restore(%s, %v) = %s holding %q, want %s", tc.key, tc.prefixes, got.Key, b, tc.want)
		}
	}
	dst := t.TempDir()
	_, err := c.Restore(ctx, "rust-1", []string{"rust-"}, dst)
	if !errors.Is(err, cache.ErrMiss) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("miss = %v, want ErrMiss", err)
	}
	if ents, _ := os.ReadDir(dst); len(ents) != 0 {
		t.Errorf("a miss wrote %d entries", len(ents))
	}
}

// downStore answers every call as an unreachable region does.
type downStore struct{ store.Store }

func (downStore) err(op string) error {
	return &store.Error{Op: op, Store: "down", Kind: store.ErrUnavailable}
}
func (d downStore) Get(context.Context, string, store.Range) (io.ReadCloser, store.Info, error) {
	return nil, store.Info{}, d.err("get")
}
func (d downStore) List(context.Context, string) ([]store.Info, error) { return nil, d.err("list") }

func TestRestoreFallsOverToNextRegion(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	regions := fileRegions(t, 2)
	c := &cache.Client{Regions: regions}
	if _, err := c.Save(ctx, "k1", src, []string{"f"}); err != nil {
		t.Fatal(err)
	}
	c.Regions[0].Store = downStore{regions[0].Store}
	got, err := c.Restore(ctx, "k1", nil, t.TempDir())
	if err != nil || got.Region != "r1" {
		t.Fatalf("Restore = %+v, %v; want it from r1", got, err)
	}
	// Every region down is not a miss.
	c.Regions[1].Store = downStore{regions[1].Store}
	if _, err := c.Restore(ctx, "k1", nil, t.TempDir()); errors.Is(err, cache.ErrMiss) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("all down = %v, want unavailable", err)
	}
}

// A corrupt archive in the nearest region is skipped for the next one.
func TestRestoreVerifiesArchive(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("good"), 0o644)
	regions := fileRegions(t, 2)
	c := &cache.Client{Regions: regions}
	if _, err := c.Save(ctx, "k1", src, []string{"f"}); err != nil {
		t.Fatal(err)
	}
	e := readEntry(t, regions[0].Store, "k1")
	if err := regions[0].Store.Delete(ctx, e.Object); err != nil {
		t.Fatal(err)
	}
	bad := packBytes(t, []entry{{hdr: tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644}, body: "evil"}})
	if _, err := regions[0].Store.Put(ctx, e.Object, bytes.NewReader(bad), int64(len(bad)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	got, err := c.Restore(ctx, "k1", nil, dst)
	if err != nil || got.Region != "r1" {
		t.Fatalf("Restore = %+v, %v; want it from r1", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "good" {
		t.Errorf("restored %q", b)
	}
}

func readEntry(t *testing.T, s store.Store, key string) cache.Entry {
	t.Helper()
	rc, _, err := s.Get(context.Background(), "keys/"+key+".json", store.Range{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var e cache.Entry
	if err := json.NewDecoder(rc).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

func concurrentSaves(t *testing.T, regions []cache.Region) {
	ctx := context.Background()
	const n = 6
	c := &cache.Client{Regions: regions}
	results := make([][]cache.SaveResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		src := t.TempDir()
		os.WriteFile(filepath.Join(src, "f"), []byte(fmt.Sprint("writer ", i)), 0o644)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.Save(ctx, "race", src, []string{"f"})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	for ri, r := range regions {
		saved := 0
		for i := range n {
			if results[i][ri].Saved {
				saved++
			}
		}
		if saved != 1 {
			t.Errorf("region %s: %d saves stored, want exactly 1", r.Name, saved)
		}
		objs, err := r.Store.List(ctx, "data/race/")
		if err != nil {
			t.Fatal(err)
		}
		e := readEntry(t, r.Store, "race")
		if len(objs) != 1 || objs[0].Key != e.Object {
			t.Errorf("region %s holds archives %v, want only %s", r.Name, objs, e.Object)
		}
	}
}

func TestConcurrentSavesFileStore(t *testing.T) { concurrentSaves(t, fileRegions(t, 2)) }

func TestSaveRejects(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	os.Symlink("/etc/passwd", filepath.Join(src, "abs"))
	os.Symlink("../../x", filepath.Join(src, "out"))
	c := &cache.Client{Regions: fileRegions(t, 1)}
	for _, tc := range []struct {
		key   string
		paths []string
		want  error
	}{
		{"", []string{"abs"}, cache.ErrInvalid},
		{"-x", []string{"abs"}, cache.ErrInvalid},
		{"a/b", []string{"abs"}, cache.ErrInvalid},
		{"k", []string{"abs"}, cache.ErrUnsafe},
		{"k", []string{"out"}, cache.ErrUnsafe},
		{"k", []string{"../elsewhere"}, cache.ErrUnsafe},
		{"k", []string{"/etc"}, cache.ErrUnsafe},
	} {
		if _, err := c.Save(ctx, tc.key, src, tc.paths); !errors.Is(err, tc.want) {
			t.Errorf("Save(%q, %v) = %v, want %v", tc.key, tc.paths, err, tc.want)
		}
	}
}

type entry struct {
	hdr  tar.Header
	body string
}

func packBytes(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := e.hdr
		h.Size = int64(len(e.body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// base holds target/ (restored into) and outside/ with a file victim.
func sandbox(t testing.TB) (target, outside string) {
	base := t.TempDir()
	target, outside = filepath.Join(base, "target"), filepath.Join(base, "outside")
	os.Mkdir(target, 0o755)
	os.Mkdir(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "victim"), []byte("untouched"), 0o644)
	return target, outside
}

func checkOutside(t testing.TB, outside string) {
	t.Helper()
	ents, _ := os.ReadDir(outside)
	b, _ := os.ReadFile(filepath.Join(outside, "victim"))
	if len(ents) != 1 || string(b) != "untouched" {
		t.Fatalf("something was written outside the target: %d entries, victim %q", len(ents), b)
	}
	if fi, _ := os.Stat(filepath.Join(outside, "victim")); fi.Mode().Perm() != 0o644 {
		t.Fatalf("victim mode changed to %v", fi.Mode())
	}
}

func reg(name, body string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, body: body}
}
func sym(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}}
}
func hard(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}}
}

var malicious = map[string][]entry{
	"absolute path":          {reg("/tmp/berth-evil", "x")},
	"dot-dot":                {reg("../outside/victim", "pwned")},
	"dot-dot inside":         {reg("a/../../outside/victim", "pwned")},
	"symlink out then write": {sym("esc", "../outside"), reg("esc/victim", "pwned")},
	"absolute symlink":       {sym("esc", "/etc"), reg("esc/x", "pwned")},
	"symlink chain out":      {sym("a", "."), sym("b", "a/.."), reg("b/outside/victim", "pwned")},
	"symlink chain dangling": {sym("a", "."), sym("b", "a/..")},
	"hard link out":          {hard("h", "../outside/victim"), reg("h", "pwned")},
	"hard link absolute":     {hard("h", "/etc/passwd")},
	"hard link through link": {sym("s", "."), hard("h", "s/../outside/victim")},
	"char device":            {{hdr: tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}},
	"fifo":                   {{hdr: tar.Header{Name: "p", Typeflag: tar.TypeFifo}}},
	"lone symlink out":       {sym("lone", "../outside/victim")},
	"lone absolute symlink":  {sym("lone", "/etc/passwd")},
	"chmod outside via link": {sym("esc", "../outside/victim"), {hdr: tar.Header{Name: "esc", Typeflag: tar.TypeDir, Mode: 0o777}}},
	"file through dir link":  {sym("d", "../outside"), {hdr: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o777}}, reg("d/new", "x")},
}

func TestUnpackRefusesEscapes(t *testing.T) {
	for name, entries := range malicious {
		t.Run(name, func(t *testing.T) {
			target, outside := sandbox(t)
			err := cache.Unpack(bytes.NewReader(packBytes(t, entries)), target)
			if !errors.Is(err, cache.ErrUnsafe) {
				t.Errorf("Unpack = %v, want ErrUnsafe", err)
			}
			checkOutside(t, outside)
			noLinkOut(t, target)
			if _, err := os.Lstat("/tmp/berth-evil"); err == nil {
				t.Fatal("wrote /tmp/berth-evil")
			}
		})
	}
}

// Restore refuses a malicious archive whose entry is genuine (the SHA-256
// matches), and tries no other region with it.
func TestRestoreRefusesMaliciousArchive(t *testing.T) {
	ctx := context.Background()
	regions := fileRegions(t, 1)
	archive := packBytes(t, malicious["symlink out then write"])
	sum := sha256.Sum256(archive)
	e := cache.Entry{Key: "evil", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(archive)), SavedAt: time.Now(), Format: "tar+zstd"}
	e.Object = "data/evil/" + e.SHA256 + ".tar.zst"
	doc, _ := json.Marshal(e)
	s := regions[0].Store
	s.Put(ctx, e.Object, bytes.NewReader(archive), e.Size, store.PutOptions{})
	s.Put(ctx, "keys/evil.json", bytes.NewReader(doc), int64(len(doc)), store.PutOptions{})
	target, outside := sandbox(t)
	_, err := (&cache.Client{Regions: regions}).Restore(ctx, "evil", nil, target)
	if !errors.Is(err, cache.ErrUnsafe) {
		t.Fatalf("Restore = %v, want ErrUnsafe", err)
	}
	checkOutside(t, outside)
}

// FuzzUnpack feeds crafted two-entry archives to Unpack: whatever it
// accepts or refuses, nothing outside the target may change.
func FuzzUnpack(f *testing.F) {
	for _, entries := range malicious {
		if len(entries) == 2 {
			a, b := entries[0].hdr, entries[1].hdr
			f.Add(a.Name, a.Linkname, a.Typeflag, b.Name, b.Linkname, b.Typeflag)
		}
	}
	f.Add("a/b.txt", "", byte(tar.TypeReg), "l", "a/b.txt", byte(tar.TypeSymlink))
	f.Add("d/", "", byte(tar.TypeDir), "d/x", "../d", byte(tar.TypeSymlink))
	// The restore's open directory handles: a name first entered as a
	// directory, then given as a link or file, and the reverse.
	f.Add("a/b/x", "", byte(tar.TypeReg), "a/b", "../..", byte(tar.TypeSymlink))
	f.Add("a", "..", byte(tar.TypeSymlink), "a/b/x", "", byte(tar.TypeReg))
	f.Add("a/b", "", byte(tar.TypeReg), "a/b/c", "", byte(tar.TypeReg))
	f.Fuzz(func(t *testing.T, n1, l1 string, t1 byte, n2, l2 string, t2 byte) {
		target, outside := sandbox(t)
		defer chmodAll(target)
		var entries []entry
		for _, e := range []struct {
			n, l string
			typ  byte
		}{{n1, l1, t1}, {n2, l2, t2}} {
			entries = append(entries, entry{hdr: tar.Header{Name: e.n, Linkname: e.l, Typeflag: e.typ, Mode: 0o644, Format: tar.FormatPAX}, body: "pwned"})
		}
		var buf bytes.Buffer
		zw, _ := zstd.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for _, e := range entries {
			h := e.hdr
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(e.body))
			}
			if tw.WriteHeader(&h) != nil {
				return // archive/tar refuses to write it; nothing to test
			}
			if h.Size > 0 {
				tw.Write([]byte(e.body))
			}
		}
		tw.Close()
		zw.Close()
		_ = cache.Unpack(&buf, target)
		checkOutside(t, outside)
		noLinkOut(t, target)
	})
}

// noLinkOut fails if a symlink under target resolves outside it, whether
// the unpack succeeded or was refused half-way.
func noLinkOut(t testing.TB, target string) {
	t.Helper()
	root, err := os.OpenRoot(target)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, _ := filepath.Rel(target, p)
		if _, err := root.Stat(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("symlink %s resolves outside: %v", rel, err)
		}
		return nil
	})
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "/a", "../a", "a/../b", "a/./b", "a//b", "./a", ".", "", "a\\..\\b", "a/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if cache.CheckName(name) != nil {
			return
		}
		base := "/target"
		j := filepath.Join(base, name)
		if rel, err := filepath.Rel(base, j); err != nil || !filepath.IsLocal(rel) {
			t.Fatalf("CheckName accepted %q, which joins to %s", name, j)
		}
	})
}
