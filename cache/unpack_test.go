package cache_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/berth-dev/berth/cache"
)

func dir(name string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

// Entries out of depth-first order, a directory left and entered again,
// names given twice (the last wins) and a body larger than the restore's
// copy buffer all restore as written.
func TestUnpackOrderAndReplace(t *testing.T) {
	big := make([]byte, 5<<20/2)
	rand.Read(big)
	entries := []entry{
		reg("a/1", "a1"),
		reg("b/c/1", "bc1"),
		reg("a/2", "old"),
		reg("a/d/e/1", "ade1"),
		reg("b/1", "b1"),
		reg("a/2", "new"),
		sym("a/l", "2"),
		sym("a/l", "1"),
		reg("big", string(big)),
		hard("a/h", "a/1"),
		dir("a/d/"),
		{hdr: tar.Header{Name: "a/d/", Typeflag: tar.TypeDir, Mode: 0o750}},
		reg("top", "top"),
	}
	target := t.TempDir()
	if err := cache.Unpack(bytes.NewReader(packBytes(t, entries)), target); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a/1": "a1", "b/c/1": "bc1", "a/2": "new", "a/d/e/1": "ade1", "b/1": "b1", "a/l": "a1", "a/h": "a1", "big": string(big), "top": "top"} {
		got, err := os.ReadFile(filepath.Join(target, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %.20q, %v; want %.20q", name, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(target, "a/d")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("a/d: %v, %v; want mode 0750 from its last entry", fi.Mode(), err)
	}
	if l, _ := os.Readlink(filepath.Join(target, "a/l")); l != "1" {
		t.Errorf("a/l -> %q, want the second symlink's 1", l)
	}
}

// A restore into a directory that already holds things: files and
// symlinks at entry names are replaced, never written through, and a
// planted directory symlink is refused.
func TestUnpackIntoExistingTree(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plant   func(target string) error
		entries []entry
		unsafe  bool
		check   string // a file that must hold "restored" afterwards
	}{
		{"file replaced", func(d string) error { return os.WriteFile(filepath.Join(d, "f"), []byte("stale"), 0o444) },
			[]entry{reg("f", "restored")}, false, "f"},
		{"symlink to a file outside replaced", func(d string) error { return os.Symlink("../outside/victim", filepath.Join(d, "f")) },
			[]entry{reg("f", "restored")}, false, "f"},
		{"dangling symlink replaced", func(d string) error { return os.Symlink("../outside/new", filepath.Join(d, "f")) },
			[]entry{reg("f", "restored")}, false, "f"},
		{"symlink replaced by symlink", func(d string) error { return os.Symlink("../outside/victim", filepath.Join(d, "f")) },
			[]entry{reg("g", "restored"), sym("f", "g")}, false, "f"},
		{"directory symlink to outside", func(d string) error { return os.Symlink("../outside", filepath.Join(d, "d")) },
			[]entry{reg("d/victim", "pwned")}, true, ""},
		{"directory symlink inside", func(d string) error {
			os.Mkdir(filepath.Join(d, "real"), 0o755)
			return os.Symlink("real", filepath.Join(d, "d"))
		}, []entry{reg("d/x", "pwned")}, true, ""},
		{"nested directory symlink", func(d string) error {
			os.MkdirAll(filepath.Join(d, "a/b"), 0o755)
			return os.Symlink("../../../outside", filepath.Join(d, "a/b/c"))
		}, []entry{reg("a/b/x", "restored"), reg("a/b/c/victim", "pwned")}, true, "a/b/x"},
		{"file where a directory goes", func(d string) error { return os.WriteFile(filepath.Join(d, "d"), nil, 0o644) },
			[]entry{reg("d/x", "pwned")}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, outside := sandbox(t)
			if err := tc.plant(target); err != nil {
				t.Fatal(err)
			}
			err := cache.Unpack(bytes.NewReader(packBytes(t, tc.entries)), target)
			switch {
			case tc.unsafe && !errors.Is(err, cache.ErrUnsafe):
				t.Errorf("Unpack = %v, want ErrUnsafe", err)
			case !tc.unsafe && tc.check != "" && err != nil:
				t.Errorf("Unpack = %v", err)
			case !tc.unsafe && tc.check == "" && err == nil:
				t.Error("Unpack succeeded, want an error")
			}
			checkOutside(t, outside)
			if tc.check != "" {
				if b, err := os.ReadFile(filepath.Join(target, tc.check)); string(b) != "restored" {
					t.Errorf("%s = %q, %v; want restored", tc.check, b, err)
				}
			}
		})
	}
}

// swapReader runs swap once more than after bytes have been read.
type swapReader struct {
	r     io.Reader
	after int
	read  int
	swap  func()
}

func (s *swapReader) Read(p []byte) (int, error) {
	if s.swap != nil && s.read > s.after {
		s.swap()
		s.swap = nil
	}
	n, err := s.r.Read(p)
	s.read += n
	return n, err
}

// A directory the restore is writing into that is replaced by a symlink,
// half-way through the archive: the files after the swap go into the
// directory the restore checked and opened (now under another name),
// never through the symlink, whether it points outside or elsewhere
// inside; and the directory's mode is not set through it.
func TestUnpackDirectorySwappedForSymlink(t *testing.T) {
	big := make([]byte, 8<<20)
	rand.Read(big)
	entries := []entry{dir("a/"), reg("a/first", "x"), reg("a/big", string(big)), reg("a/victim", "pwned"), reg("a/sub/victim", "pwned")}
	archive := packBytes(t, entries)
	for _, link := range []string{"../outside", "elsewhere"} {
		t.Run(link, func(t *testing.T) {
			target, outside := sandbox(t)
			elsewhere := filepath.Join(target, "elsewhere")
			if err := os.Mkdir(elsewhere, 0o750); err != nil {
				t.Fatal(err)
			}
			swapped := false
			r := &swapReader{r: bytes.NewReader(archive), after: 1 << 20, swap: func() {
				if err := os.Rename(filepath.Join(target, "a"), filepath.Join(target, "moved")); err != nil {
					t.Error(err)
				}
				if err := os.Symlink(link, filepath.Join(target, "a")); err != nil {
					t.Error(err)
				}
				swapped = true
			}}
			err := cache.Unpack(r, target)
			if !swapped {
				t.Fatal("the archive was read before the swap; make the big file bigger")
			}
			if !errors.Is(err, cache.ErrUnsafe) {
				t.Errorf("Unpack = %v, want ErrUnsafe from setting the mode of a/", err)
			}
			checkOutside(t, outside)
			if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
				t.Errorf("%d entries written into elsewhere/ through the symlink", len(ents))
			}
			if fi, _ := os.Stat(elsewhere); fi.Mode().Perm() != 0o750 {
				t.Errorf("elsewhere/ mode changed to %v through the symlink", fi.Mode())
			}
			if _, serr := os.Stat(filepath.Join(target, "moved/big")); serr != nil {
				t.Fatalf("a/big is not in the directory opened before the swap: %v (Unpack: %v)", serr, err)
			}
			for _, name := range []string{"moved/victim", "moved/sub/victim"} {
				if b, _ := os.ReadFile(filepath.Join(target, name)); string(b) != "pwned" {
					t.Errorf("%s = %q: the entry after the swap did not go into the opened directory", name, b)
				}
			}
		})
	}
}

// A body cut short is a clear error naming the entry.
func TestUnpackTruncated(t *testing.T) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4096})
	tw.Write(bytes.Repeat([]byte("x"), 4096))
	tw.Close()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	zw.Write(tarBuf.Bytes()[:512+1000]) // the header and part of the body
	zw.Close()
	target, outside := sandbox(t)
	err := cache.Unpack(&buf, target)
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), `f`) {
		t.Fatalf("Unpack = %v, want an unexpected EOF naming f", err)
	}
	checkOutside(t, outside)
}
