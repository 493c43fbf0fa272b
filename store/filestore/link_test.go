package filestore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/storetest"
)

// withoutLinks plays a filesystem whose link(2) fails with errno, as some
// FUSE, SMB and FAT mounts do.
func withoutLinks(t *testing.T, errno syscall.Errno) *Store {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.link = func(_ *os.Root, oldname, newname string) error {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: errno}
	}
	return s
}

// TestConformanceWithoutHardLinks: create-only writes stay atomic (the
// suite races stagers) when the filesystem has no hard links.
func TestConformanceWithoutHardLinks(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EPERM, syscall.EOPNOTSUPP, syscall.EXDEV} {
		t.Run(errno.Error(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return withoutLinks(t, errno) })
		})
	}
}

func TestLinkRefusalStaysAnError(t *testing.T) {
	s := withoutLinks(t, syscall.EACCES)
	_, err := s.Put(context.Background(), "k", strings.NewReader("x"), 1, store.PutOptions{IfNoneMatch: true})
	if !errors.Is(err, store.ErrPermissionDenied) {
		t.Fatalf("EACCES from link: %v, want ErrPermissionDenied", err)
	}
	if _, err := s.Stat(context.Background(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused create left %v", err)
	}
}

func TestNoAtomicCreateIsItsOwnError(t *testing.T) {
	e := (&Store{dir: "/x"}).fail("put", "k", fmt.Errorf("%w (link: operation not permitted; lock: no locks available)", ErrNoAtomicCreate))
	if errors.Is(e, store.ErrPermissionDenied) || !errors.Is(e, store.ErrUnavailable) || !strings.Contains(e.Error(), "hard links") {
		t.Fatalf("ErrNoAtomicCreate maps to %v", e)
	}
}
