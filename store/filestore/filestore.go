// Package filestore is the local directory driver of the store contract:
// each key is a file under a root directory, written to a temporary file,
// synced and then linked or renamed into place so readers never see a
// partial object.
//
// Every file operation goes through an os.Root, so a symbolic link inside
// the store that leads outside it is refused instead of followed.
package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/store"
)

const (
	tmpPrefix = ".berth-tmp-"
	// lockName is the store's lock file. It shares the temporary prefix so
	// it is never a key, but it is permanent: removing it while a process
	// holds it would let the next writer lock a new inode beside it.
	lockName = tmpPrefix + "lock"
	// Files and directories get the usual modes minus the umask (0644 and
	// 0755 under umask 022), so other users can read a shared store.
	fileMode = 0o666
	dirMode  = 0o777
)

var (
	// ErrOutsideRoot marks a key whose path goes through a symbolic link
	// that leads outside the store directory.
	ErrOutsideRoot = errors.New("a symbolic link leads outside the store directory")
	// ErrNoAtomicCreate marks a filesystem that supports neither link(2) nor
	// flock(2), one of which a create-only write needs to stay atomic.
	ErrNoAtomicCreate = errors.New("this filesystem supports neither hard links nor file locks, so berth cannot write create-only here; put the store on a local filesystem such as ext4, xfs, btrfs or tmpfs")
)

// Store keeps objects as files under a root directory. Each operation
// opens the directory afresh (one openat), so a store directory removed and
// recreated under a long-running process is simply used again.
type Store struct {
	dir string

	// link is link(2) within the root; tests replace it to play a
	// filesystem without hard links.
	link func(r *os.Root, oldname, newname string) error
}

// New returns a store rooted at dir. The directory is created by the first
// write, not here, so read-only use of a missing store changes nothing.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve store directory %s: %w", dir, err)
	}
	if abs == filepath.Dir(abs) {
		return nil, &store.Error{Op: "open", Store: "file://" + abs, Kind: store.ErrInvalid,
			Err: errors.New("refusing the filesystem root as a store; name a directory, as in file:///var/lib/berth")}
	}
	return &Store{dir: abs, link: (*os.Root).Link}, nil
}

func (s *Store) String() string { return "file://" + s.dir }

// openRoot opens the store directory, creating it first only for writes.
// A missing directory on a read is reported as fs.ErrNotExist. The caller
// closes the root.
func (s *Store) openRoot(create bool) (*os.Root, error) {
	if create {
		if err := os.MkdirAll(s.dir, dirMode); err != nil {
			return nil, fmt.Errorf("create store directory: %w", err)
		}
	}
	r, err := os.OpenRoot(s.dir)
	if !create && errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the store directory does not exist yet: %w", fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// name turns a key into a path relative to the root.
func name(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") || strings.Contains(key, "\x00") {
		return "", fmt.Errorf("key %q: %w", key, store.ErrInvalid)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, tmpPrefix) {
			return "", fmt.Errorf("key %q: %w", key, store.ErrInvalid)
		}
	}
	return filepath.FromSlash(key), nil
}

func (s *Store) fail(op, key string, err error) error {
	if escapes(err) && !errors.Is(err, ErrOutsideRoot) {
		err = fmt.Errorf("%w: %w", ErrOutsideRoot, err)
	}
	return &store.Error{Op: op, Store: s.String(), Key: key, Kind: kind(err), Err: err}
}

// escapes reports the error os.Root returns for a path that leads out of
// it. The standard library keeps that error unexported, so its text is the
// only handle.
func escapes(err error) bool {
	var pe *fs.PathError
	for errors.As(err, &pe) {
		if pe.Err != nil && pe.Err.Error() == "path escapes from parent" {
			return true
		}
		err = pe.Err // MkdirAll wraps the failing step's PathError in its own
	}
	return false
}

func kind(err error) error {
	switch {
	case errors.Is(err, store.ErrInvalid), errors.Is(err, ErrOutsideRoot):
		return store.ErrInvalid
	case errors.Is(err, store.ErrPreconditionFailed):
		return store.ErrPreconditionFailed
	case errors.Is(err, ErrNoAtomicCreate):
		return store.ErrUnavailable
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

func info(key string, fi fs.FileInfo) store.Info {
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
	p, err := name(key)
	if err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	root, err := s.openRoot(true)
	if err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	defer root.Close()
	dir := filepath.Dir(p)
	if err := root.MkdirAll(dir, dirMode); err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	tmp, f, err := createTemp(root, dir)
	if err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	defer root.Remove(tmp) // no-op after a rename
	if err := write(ctx, f, r, size); err != nil {
		f.Close()
		return store.Info{}, s.fail("put", key, err)
	}
	if err := f.Close(); err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	if err := s.commit(root, tmp, p, opts); err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	syncDir(root, dir)
	fi, err := root.Stat(p)
	if err != nil {
		return store.Info{}, s.fail("put", key, err)
	}
	return info(key, fi), nil
}

// createTemp makes a new temporary file in dir with the store's file mode
// (os.CreateTemp would make it 0600).
func createTemp(root *os.Root, dir string) (string, *os.File, error) {
	for range 100 {
		tmp := filepath.Join(dir, fmt.Sprintf("%s%016x", tmpPrefix, rand.Uint64()))
		f, err := root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return tmp, f, err
	}
	return "", nil, fmt.Errorf("create temporary file in %s: too many name collisions", dir)
}

func write(ctx context.Context, f *os.File, r io.Reader, size int64) error {
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
func (s *Store) commit(root *os.Root, tmp, p string, opts store.PutOptions) error {
	switch {
	case opts.IfNoneMatch:
		err := s.link(root, tmp, p)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, fs.ErrExist):
			return fmt.Errorf("key exists: %w", store.ErrPreconditionFailed)
		case !noLinks(err):
			return err
		}
		// Without hard links (some FUSE, SMB and FAT mounts), the store lock
		// makes check-and-rename one step, as for replace-if-unchanged: every
		// berth process writing this directory takes the same lock.
		unlock, lerr := lock(root)
		if lerr != nil {
			return fmt.Errorf("%w (link: %v; lock: %v)", ErrNoAtomicCreate, err, lerr)
		}
		defer unlock()
		if _, err := root.Lstat(p); err == nil {
			return fmt.Errorf("key exists: %w", store.ErrPreconditionFailed)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return root.Rename(tmp, p)
	case opts.IfMatch != "":
		unlock, err := lock(root)
		if err != nil {
			return err
		}
		defer unlock()
		fi, err := root.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("key does not exist: %w", store.ErrPreconditionFailed)
		}
		if err != nil {
			return err
		}
		if etag(fi) != opts.IfMatch {
			return fmt.Errorf("key changed since it was read: %w", store.ErrPreconditionFailed)
		}
		return root.Rename(tmp, p)
	default:
		return root.Rename(tmp, p)
	}
}

// noLinks reports a link(2) failure that means "this filesystem has no hard
// links" rather than a real refusal (EACCES, EROFS, ENOSPC stay errors).
func noLinks(err error) bool {
	for _, e := range []error{syscall.EPERM, syscall.ENOTSUP, syscall.EOPNOTSUPP, syscall.EXDEV, syscall.ENOSYS, syscall.EMLINK} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// lock takes the store's exclusive lock. The file is opened read-only so a
// user who may write the store but not own the lock file can still lock it.
func lock(root *os.Root) (func(), error) {
	f, err := root.OpenFile(lockName, os.O_CREATE|os.O_RDONLY, fileMode)
	if err != nil {
		return nil, fmt.Errorf("open store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock store: %w", err)
	}
	return func() { f.Close() }, nil
}

func syncDir(root *os.Root, dir string) {
	if d, err := root.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func (s *Store) Get(ctx context.Context, key string, rng store.Range) (io.ReadCloser, store.Info, error) {
	p, err := name(key)
	if err != nil {
		return nil, store.Info{}, s.fail("get", key, err)
	}
	root, err := s.openRoot(false)
	if err != nil {
		return nil, store.Info{}, s.fail("get", key, err)
	}
	defer root.Close() // the opened file outlives it
	// O_NONBLOCK: a FIFO planted in the store must not hang the reader;
	// it is refused below like any other non-regular file.
	f, err := root.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, store.Info{}, s.fail("get", key, err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = regular(fi)
	}
	if err != nil {
		f.Close()
		return nil, store.Info{}, s.fail("get", key, err)
	}
	inf := info(key, fi)
	if rng == (store.Range{}) {
		return f, inf, nil
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
	}{io.NewSectionReader(f, rng.Offset, n), f}, inf, nil
}

// regular accepts what this store writes: regular files. A directory is a
// key prefix, not an object.
func regular(fi fs.FileInfo) error {
	switch {
	case fi.Mode().IsRegular():
		return nil
	case fi.IsDir():
		return fs.ErrNotExist
	}
	return fmt.Errorf("not a regular file (%s): %w", fi.Mode().Type(), store.ErrInvalid)
}

func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	p, err := name(key)
	if err != nil {
		return store.Info{}, s.fail("stat", key, err)
	}
	root, err := s.openRoot(false)
	if err != nil {
		return store.Info{}, s.fail("stat", key, err)
	}
	defer root.Close()
	fi, err := root.Stat(p)
	if err == nil {
		err = regular(fi)
	}
	if err != nil {
		return store.Info{}, s.fail("stat", key, err)
	}
	return info(key, fi), nil
}

func (s *Store) List(ctx context.Context, prefix string) ([]store.Info, error) {
	// Walk the deepest directory the prefix names; the rest filters.
	dir := "."
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		if _, err := name(prefix[:i]); err != nil {
			return nil, s.fail("list", prefix, err)
		}
		dir = prefix[:i]
	}
	var out []store.Info
	err := s.walk(ctx, dir, func(key string, d fs.DirEntry, root *os.Root) error {
		if strings.HasPrefix(d.Name(), tmpPrefix) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		var fi fs.FileInfo
		var err error
		switch {
		case d.Type().IsRegular():
			fi, err = d.Info()
		case d.Type()&fs.ModeSymlink != 0:
			// Through the root: a link is listed only when it leads to a
			// regular file inside the store, as Get would read it.
			fi, err = root.Stat(filepath.FromSlash(key))
		default:
			return nil // FIFOs, sockets, devices are not objects
		}
		if errors.Is(err, fs.ErrNotExist) || escapes(err) || (err == nil && !fi.Mode().IsRegular()) {
			return nil // deleted while listing, or not an object
		}
		if err != nil {
			return err
		}
		out = append(out, info(key, fi))
		return nil
	})
	if err != nil {
		return nil, s.fail("list", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// walk calls fn for every entry that is not a directory under dir (a
// slash-separated path relative to the root), without following links to
// directories. A missing store or dir walks nothing.
func (s *Store) walk(ctx context.Context, dir string, fn func(key string, d fs.DirEntry, root *os.Root) error) error {
	root, err := s.openRoot(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || (p == dir && escapes(err)) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		return fn(path.Clean(p), d, root)
	})
}

func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := name(key)
	if err != nil {
		return s.fail("delete", key, err)
	}
	root, err := s.openRoot(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return s.fail("delete", key, err)
	}
	defer root.Close()
	if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.fail("delete", key, err)
	}
	return nil
}

// TempFiles lists the temporary files writers left behind (a process killed
// between creating and renaming one) that were last written more than
// olderThan ago. A live writer keeps touching its file, so a grace period
// of an hour or more never lists a write in progress. Keys are paths
// relative to the store, such as "myapp/1.0.0/.berth-tmp-0123abcd"; they
// are not object keys and only RemoveTempFiles removes them.
func (s *Store) TempFiles(ctx context.Context, olderThan time.Duration) ([]store.Info, error) {
	return s.tempFiles(ctx, olderThan, false)
}

// RemoveTempFiles removes the temporary files TempFiles would list and
// returns those it removed.
func (s *Store) RemoveTempFiles(ctx context.Context, olderThan time.Duration) ([]store.Info, error) {
	return s.tempFiles(ctx, olderThan, true)
}

func (s *Store) tempFiles(ctx context.Context, olderThan time.Duration, remove bool) ([]store.Info, error) {
	op := "list temporary files"
	if remove {
		op = "remove temporary files"
	}
	cutoff := time.Now().Add(-olderThan)
	var out []store.Info
	err := s.walk(ctx, ".", func(key string, d fs.DirEntry, root *os.Root) error {
		if !strings.HasPrefix(d.Name(), tmpPrefix) || key == lockName || !d.Type().IsRegular() {
			return nil
		}
		// Lstat right before deciding, so a file written since the walk
		// started is left alone.
		p := filepath.FromSlash(key)
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
			return nil
		}
		if remove {
			if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		out = append(out, info(key, fi))
		return nil
	})
	if err != nil {
		return out, s.fail(op, "", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
