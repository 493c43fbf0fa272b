// Package filestore is the local directory driver of the store contract:
// each key is a file under a root directory, written to a temporary file,
// synced and then linked or renamed into place so readers never see a
// partial object.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/store"
)

const tmpPrefix = ".berth-tmp-"

// Store keeps objects as files under Root.
type Store struct {
	root string
}

// New returns a store rooted at dir, creating it if needed.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve store directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, &store.Error{Op: "create", Store: "file://" + abs, Kind: kind(err), Err: err}
	}
	return &Store{root: abs}, nil
}

func (s *Store) String() string { return "file://" + s.root }

func (s *Store) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") || strings.Contains(key, "\x00") {
		return "", fmt.Errorf("key %q: %w", key, store.ErrInvalid)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, tmpPrefix) {
			return "", fmt.Errorf("key %q: %w", key, store.ErrInvalid)
		}
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func (s *Store) fail(op, key string, err error) error {
	return &store.Error{Op: op, Store: s.String(), Key: key, Kind: kind(err), Err: err}
}

func kind(err error) error {
	switch {
	case errors.Is(err, store.ErrInvalid):
		return store.ErrInvalid
	case errors.Is(err, store.ErrPreconditionFailed):
		return store.ErrPreconditionFailed
	case errors.Is(err, fs.ErrNotExist):
		return store.ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		return store.ErrPermissionDenied
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil
	}
	return store.ErrUnavailable
}

// etag changes whenever a key is written: every write makes a new inode.
func etag(fi fs.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%x-%x-%x", ino, fi.Size(), fi.ModTime().UnixNano())
}

func (s *Store) info(key string, fi fs.FileInfo) store.Info {
	return store.Info{Key: key, Size: fi.Size(), ETag: etag(fi), Modified: fi.ModTime()}
}

// ctxReader stops a copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts store.PutOptions) (store.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a rename
	if err := s.write(ctx, tmp, r, size); err != nil {
		tmp.Close()
		return store.Info{}, s.fail("put", key, err)
	}
	if err := tmp.Close(); err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	if err := s.commit(tmp.Name(), p, opts); err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	syncDir(dir)
	fi, err := os.Stat(p)
	if err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	return s.info(key, fi), nil
}

func (s *Store) write(ctx context.Context, f *os.File, r io.Reader, size int64) error {
	src := ctxReader{ctx: ctx, r: r}
	if size < 0 {
		if _, err := io.Copy(f, src); err != nil {
			return fmt.Errorf("write object: %w", err)
		}
	} else {
		n, err := io.CopyN(f, src, size)
		if err != nil {
			return fmt.Errorf("write object: got %d of %d bytes: %w", n, size, err)
		}
		var one [1]byte
		if m, _ := io.ReadFull(src, one[:]); m > 0 {
			return fmt.Errorf("write object: reader has more than the %d bytes announced", size)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync object: %w", err)
	}
	return nil
}

// commit moves tmp into place honouring the preconditions. Create-only uses
// link(2), which fails if the target exists; replace-if-unchanged holds an
// exclusive lock on the store so check and rename are one step for every
// process using this directory.
func (s *Store) commit(tmp, p string, opts store.PutOptions) error {
	switch {
	case opts.IfNoneMatch:
		if err := os.Link(tmp, p); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("key exists: %w", store.ErrPreconditionFailed)
			}
			return err
		}
		return nil
	case opts.IfMatch != "":
		unlock, err := s.lock()
		if err != nil {
			return err
		}
		defer unlock()
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("key does not exist: %w", store.ErrPreconditionFailed)
		}
		if err != nil {
			return err
		}
		if etag(fi) != opts.IfMatch {
			return fmt.Errorf("key changed since it was read: %w", store.ErrPreconditionFailed)
		}
		return os.Rename(tmp, p)
	default:
		return os.Rename(tmp, p)
	}
}

func (s *Store) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.root, tmpPrefix+"lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock store: %w", err)
	}
	return func() { f.Close() }, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func (s *Store) Get(ctx context.Context, key string, rng store.Range) (io.ReadCloser, store.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, store.Info{}, s.fail("get", key, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, store.Info{}, s.fail("get", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, store.Info{}, s.fail("get", key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, store.Info{}, s.fail("get", key, fs.ErrNotExist)
	}
	info := s.info(key, fi)
	if rng == (store.Range{}) {
		return f, info, nil
	}
	if rng.Offset < 0 || rng.Length < 0 || rng.Offset > fi.Size() {
		f.Close()
		return nil, store.Info{}, s.fail("get", key, fmt.Errorf("range %d+%d outside object of %d bytes: %w", rng.Offset, rng.Length, fi.Size(), store.ErrInvalid))
	}
	n := fi.Size() - rng.Offset
	if rng.Length > 0 && rng.Length < n {
		n = rng.Length
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, rng.Offset, n), f}, info, nil
}

func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return store.Info{}, s.fail("stat", key, err)
	}
	fi, err := os.Stat(p)
	if err == nil && fi.IsDir() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return store.Info{}, s.fail("stat", key, err)
	}
	return s.info(key, fi), nil
}

func (s *Store) List(ctx context.Context, prefix string) ([]store.Info, error) {
	// Walk the deepest directory the prefix names; the rest filters.
	dir := s.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		p, err := s.path(prefix[:i])
		if err != nil {
			return nil, s.fail("list", prefix, err)
		}
		dir = p
	}
	var out []store.Info
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		rel, err := filepath.Rel(s.root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		out = append(out, s.info(key, fi))
		return nil
	})
	if err != nil {
		return nil, s.fail("list", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return s.fail("delete", key, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.fail("delete", key, err)
	}
	return nil
}
