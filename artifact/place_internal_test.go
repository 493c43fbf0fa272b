package artifact

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// placeNoReplace never replaces what is at the name, whatever it is, even
// when it appeared after the caller last looked: the no-replace is the
// file system's, not a check.
func TestPlaceNoReplace(t *testing.T) {
	tests := []struct {
		name  string
		setup func(path string) error // what is at the name beforehand
	}{
		{"a file", func(p string) error { return os.WriteFile(p, []byte("theirs"), 0o644) }},
		{"a dangling symlink", func(p string) error { return os.Symlink(filepath.Join(filepath.Dir(p), "nowhere"), p) }},
		{"a directory", func(p string) error { return os.Mkdir(p, 0o755) }},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		tmp, path := filepath.Join(dir, ".tmp"), filepath.Join(dir, "app.tar.gz")
		if err := os.WriteFile(tmp, []byte("ours"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := tt.setup(path); err != nil {
			t.Fatal(err)
		}
		before, _ := os.Lstat(path)
		err := placeNoReplace(tmp, path)
		if !errors.Is(err, fs.ErrExist) {
			t.Errorf("%s: %v, want an already-exists error", tt.name, err)
		}
		after, _ := os.Lstat(path)
		if !os.SameFile(before, after) || before.Mode() != after.Mode() {
			t.Errorf("%s: the name now holds something else", tt.name)
		}
		if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
			t.Errorf("%s: written through the symlink", tt.name)
		}
	}

	dir := t.TempDir()
	tmp, path := filepath.Join(dir, ".tmp"), filepath.Join(dir, "app.tar.gz")
	if err := os.WriteFile(tmp, []byte("ours"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := placeNoReplace(tmp, path); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "ours" {
		t.Errorf("placed: %q %v", b, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("placed mode: %v %v", fi.Mode(), err)
	}
}
