package filestore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func TestNoTempFilesLeft(t *testing.T) {
	dir := t.TempDir()
	s, _ := filestore.New(dir)
	s.Put(context.Background(), "a/b", strings.NewReader("abc"), 10, store.PutOptions{})
	entries, _ := os.ReadDir(filepath.Join(dir, "a"))
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}
