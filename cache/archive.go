package cache

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// ErrUnsafe marks an archive entry or a saved path that would reach outside
// the directory it belongs to (absolute paths, "..", symlinks pointing out,
// hard links out) or that berth does not restore (devices, FIFOs).
var ErrUnsafe = errors.New("unsafe archive entry")

// maxEntries caps the entries of one archive so a crafted archive cannot
// keep a restore busy forever.
const maxEntries = 10_000_000

// Pack writes the files, directories and symlinks under paths, which are
// relative to dir, as a zstd-compressed tar stream to w. Modes (permission
// bits), modification times and symlinks are kept; hard links are stored
// as separate files; owners are not stored. A symlink that points outside
// dir is refused here, because Unpack would refuse it.
func Pack(w io.Writer, dir string, paths []string) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return fmt.Errorf("start zstd: %w", err)
	}
	tw := tar.NewWriter(zw)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer root.Close()
	seen := map[string]bool{}
	buf := make([]byte, copyBufSize)
	dirs := &packDir{root: root}
	defer dirs.close()
	for _, p := range paths {
		rel, err := localPath(dir, p)
		if err != nil {
			return err
		}
		fi, err := root.Lstat(rel)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if !fi.IsDir() { // a symlink is kept as one, not followed
			if !seen[rel] {
				seen[rel] = true
				if err := addEntry(tw, dirs, rel, buf); err != nil {
					return err
				}
			}
			continue
		}
		err = fs.WalkDir(root.FS(), rel, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			if seen[name] {
				return nil
			}
			seen[name] = true
			return addEntry(tw, dirs, name, buf)
		})
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write zstd: %w", err)
	}
	return nil
}

// localPath turns a user's path into a slash path inside dir.
func localPath(dir, p string) (string, error) {
	if filepath.IsAbs(p) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", err
		}
		r, err := filepath.Rel(abs, p)
		if err != nil {
			return "", fmt.Errorf("path %s: %w", p, err)
		}
		p = r
	}
	p = filepath.Clean(p)
	if !filepath.IsLocal(p) && p != "." {
		return "", fmt.Errorf("path %s is outside the working directory %s; cache paths are stored relative to it, so cd to a directory above them: %w: %w", p, dir, ErrUnsafe, ErrInvalid)
	}
	return filepath.ToSlash(p), nil
}

// addEntry writes the file, directory or symlink name to tw, reading a
// file's body through buf.
func addEntry(tw *tar.Writer, dirs *packDir, name string, buf []byte) error {
	dir, err := dirs.open(path.Dir(name))
	if err != nil {
		return err
	}
	base := path.Base(name)
	fi, err := dir.Lstat(base)
	if err != nil {
		return fmt.Errorf("stat %s: %w", name, err)
	}
	hdr := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime().Truncate(time.Second), Format: tar.FormatPAX}
	switch {
	case fi.Mode().IsRegular():
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
	case fi.IsDir():
		if name == "." {
			return nil // the target directory itself is not an entry
		}
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := dir.Readlink(base)
		if err != nil {
			return fmt.Errorf("read symlink %s: %w", name, err)
		}
		if !linkInside(name, target) {
			return fmt.Errorf("symlink %s points to %s, outside the saved tree; restore would refuse it: %w: %w", name, target, ErrUnsafe, ErrInvalid)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	default:
		return fmt.Errorf("%s is a %s; the cache keeps only files, directories and symlinks: %w: %w", name, fi.Mode().Type(), ErrUnsafe, ErrInvalid)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar header for %s: %w", name, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := dir.Open(base)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	// Read one byte past the size to notice a file that grew.
	for left := hdr.Size; ; {
		n, err := io.ReadFull(f, buf[:min(left+1, int64(len(buf)))])
		if int64(n) > left {
			return fmt.Errorf("read %s: it changed size while being saved", name)
		}
		if _, werr := tw.Write(buf[:n]); werr != nil {
			return fmt.Errorf("write tar: %s: %w", name, werr)
		}
		left -= int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if left != 0 {
				return fmt.Errorf("read %s: it changed size while being saved", name)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
}

// packDir keeps the directory of the last entry packed open, so the
// entries in one directory are read through its handle instead of each
// walking from the top again.
type packDir struct {
	root *os.Root
	name string
	dir  *os.Root // nil: none open
}

// open returns the directory name (a slash path, "." for the top).
func (p *packDir) open(name string) (*os.Root, error) {
	if name == "." {
		return p.root, nil
	}
	if p.dir != nil && p.name == name {
		return p.dir, nil
	}
	p.close()
	d, err := p.root.OpenRoot(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	p.name, p.dir = name, d
	return d, nil
}

func (p *packDir) close() {
	if p.dir != nil {
		p.dir.Close()
		p.dir = nil
	}
}

// linkInside reports whether a symlink at name (a slash path inside the
// tree) whose target is target stays inside the tree, judged lexically.
// Unpack also checks the target through the symlinks already on disk.
func linkInside(name, target string) bool {
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) || strings.Contains(target, `\`) {
		return false
	}
	j := path.Join(path.Dir(name), target)
	return j == "." || filepath.IsLocal(j)
}

// CheckName reports whether an archive entry name may be restored: a
// relative slash path that stays inside the target directory.
func CheckName(name string) error {
	clean := strings.TrimSuffix(name, "/")
	if clean == "" || strings.Contains(clean, `\`) || strings.ContainsRune(clean, 0) || path.IsAbs(clean) || !filepath.IsLocal(filepath.FromSlash(clean)) {
		return fmt.Errorf("entry %q: not a relative path inside the target directory: %w", name, ErrUnsafe)
	}
	if path.Clean(clean) != clean {
		return fmt.Errorf("entry %q: not a clean path: %w", name, ErrUnsafe)
	}
	return nil
}

// Unpack restores a stream written by Pack into dir, which must exist.
// Every write goes through an os.Root opened on dir, or on a directory
// opened from it and checked to be no symlink, so no entry can reach
// outside it, not even through a symlink already there; entries that try
// (absolute names, "..", symlinks pointing out, hard links out) and
// devices or FIFOs are refused with ErrUnsafe. Existing files at entry
// names are replaced; setuid, setgid and sticky bits are dropped.
func Unpack(r io.Reader, dir string) error {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1),
		// Pack's frames use an 8 MiB window; a crafted frame asking for
		// far more would only cost memory.
		zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return fmt.Errorf("read zstd: %w", err)
	}
	defer zr.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer root.Close()
	return unpackTar(tar.NewReader(zr), root)
}

type dirTime struct {
	name string
	mode fs.FileMode
	mod  time.Time
}

// copyBufSize is the buffer one restore reads file bodies into: a file
// up to this size is written with one write.
const copyBufSize = 1 << 20

// unpacker is one restore in progress.
type unpacker struct {
	root  *os.Root // the target directory
	chain dirChain
	buf   []byte
	links []string  // symlinks restored, checked at the end
	dirs  []dirTime // directories restored, modes and times set at the end
}

func unpackTar(tr *tar.Reader, root *os.Root) error {
	u := &unpacker{root: root, chain: dirChain{root: root}, buf: make([]byte, copyBufSize)}
	err := u.entries(tr)
	u.chain.close()
	// A symlink judged inside on its own can point out through another
	// one (a -> ., b -> a/..). Resolve each through the restored tree and
	// remove those that leave it, also after a refusal half-way.
	for _, l := range u.links {
		if _, serr := root.Stat(l); serr != nil && !errors.Is(serr, fs.ErrNotExist) {
			root.Remove(l)
			if err == nil {
				err = fmt.Errorf("entry %q: symlink resolves outside the target directory: %w", l, ErrUnsafe)
			}
		}
	}
	if err != nil {
		return err
	}
	// Directory modes and times last: a read-only directory must not stop
	// the files inside it from being written. Each is set through a
	// handle on the directory itself, checked as the others, so a name
	// swapped for a symlink meanwhile is refused rather than followed.
	// A directory given twice takes its last entry's mode, as a file's
	// last entry wins.
	defer u.chain.close()
	set := make(map[string]bool, len(u.dirs))
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if set[d.name] {
			continue
		}
		set[d.name] = true
		h, err := u.chain.enter(d.name)
		if err != nil {
			return fmt.Errorf("set mode of %s: %w", d.name, err)
		}
		if err := h.Chmod(".", d.mode); err != nil {
			return fmt.Errorf("set mode of %s: %w", d.name, err)
		}
		if err := h.Chtimes(".", d.mod, d.mod); err != nil {
			return fmt.Errorf("set time of %s: %w", d.name, err)
		}
	}
	return nil
}

func (u *unpacker) entries(tr *tar.Reader) error {
	for n := 0; ; n++ {
		if n >= maxEntries {
			return fmt.Errorf("archive has more than %d entries: %w", maxEntries, ErrUnsafe)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
}

func (u *unpacker) entry(hdr *tar.Header, body io.Reader) error {
	if err := CheckName(hdr.Name); err != nil {
		return err
	}
	name := strings.TrimSuffix(hdr.Name, "/")
	mode := fs.FileMode(hdr.Mode).Perm()
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
	default:
		return fmt.Errorf("entry %q: type %q is not a file, directory or link: %w", name, hdr.Typeflag, ErrUnsafe)
	}
	// Every entry is made in its parent directory's handle, opened once
	// for all the entries in it; the names below are single components.
	parent, err := u.chain.enter(path.Dir(name))
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	base := path.Base(name)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := parent.Mkdir(base, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory %s: %w", name, err)
		}
		if fi, err := parent.Lstat(base); err != nil || !fi.IsDir() {
			return fmt.Errorf("create directory %s: a non-directory is in the way: %w", name, ErrUnsafe)
		}
		u.dirs = append(u.dirs, dirTime{name, mode, hdr.ModTime})
	case tar.TypeReg:
		if err := u.writeFile(parent, base, name, hdr, body); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if !linkInside(name, hdr.Linkname) {
			return fmt.Errorf("entry %q: symlink to %q points outside the target directory: %w", name, hdr.Linkname, ErrUnsafe)
		}
		if err := removeExisting(parent, base, name); err != nil {
			return err
		}
		if err := parent.Symlink(hdr.Linkname, base); err != nil {
			return fmt.Errorf("create symlink %s: %w", name, err)
		}
		u.links = append(u.links, name)
	case tar.TypeLink:
		if err := CheckName(hdr.Linkname); err != nil {
			return fmt.Errorf("entry %q: hard link target: %w", name, err)
		}
		if fi, err := u.root.Lstat(hdr.Linkname); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("entry %q: hard link to %q, which is not a file restored before it: %w", name, hdr.Linkname, ErrUnsafe)
		}
		if err := removeExisting(parent, base, name); err != nil {
			return err
		}
		if err := u.root.Link(hdr.Linkname, name); err != nil {
			return fmt.Errorf("create hard link %s: %w", name, err)
		}
	}
	return nil
}

// removeExisting clears the way for a file or link at base in dir. A
// directory is left for the create to fail on: replacing a tree is not a
// restore.
func removeExisting(dir *os.Root, base, name string) error {
	fi, err := dir.Lstat(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", name, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("restore %s: a directory is in the way", name)
	}
	if err := dir.Remove(base); err != nil {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	return nil
}

// writeFile creates the file base in dir from the entry hdr, whose body
// is r. The create is exclusive and does not follow a symlink; only when
// something is already there is it looked at and removed.
func (u *unpacker) writeFile(dir *os.Root, base, name string, hdr *tar.Header, r io.Reader) error {
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := dir.OpenFile(base, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if err := removeExisting(dir, base, name); err != nil {
			return err
		}
		f, err = dir.OpenFile(base, flags, 0o600)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	for left := hdr.Size; left > 0; {
		chunk := u.buf[:min(left, int64(len(u.buf)))]
		if _, err := io.ReadFull(r, chunk); err != nil {
			f.Close()
			return fmt.Errorf("read tar: %s: %w", name, noEOF(err))
		}
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		left -= int64(len(chunk))
	}
	if err := f.Chmod(fs.FileMode(hdr.Mode).Perm()); err != nil {
		f.Close()
		return fmt.Errorf("set mode of %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := dir.Chtimes(base, hdr.ModTime, hdr.ModTime); err != nil {
		return fmt.Errorf("set time of %s: %w", name, err)
	}
	return nil
}

// noEOF turns a body that ends early into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// dirChain keeps open the directories from the target down to the one
// the last entry went into, so the next entries in that directory are
// each one system call on its handle instead of a walk from the target
// that checks every parent again (Pack writes a tree depth-first, so the
// chain changes only when the walk moves to another directory).
//
// A directory is entered only as what it was when checked: a directory,
// not a symlink, and the very one later opened (a swap in between is
// refused). Its handle then stays on that directory whatever happens to
// the name, so a symlink put in its place later cannot redirect writes.
type dirChain struct {
	root  *os.Root
	names []string   // the components of the chain's path
	open  []*os.Root // open[i] is the directory names[:i+1]
}

// enter returns the directory dir, a clean slash path inside the target
// ("." is the target), creating the missing parts with mode 0755.
func (c *dirChain) enter(dir string) (*os.Root, error) {
	if dir == "." {
		c.truncate(0)
		return c.root, nil
	}
	parts := strings.Split(dir, "/")
	keep := 0
	for keep < len(parts) && keep < len(c.names) && parts[keep] == c.names[keep] {
		keep++
	}
	c.truncate(keep)
	for i := keep; i < len(parts); i++ {
		parent := c.root
		if i > 0 {
			parent = c.open[i-1]
		}
		d, err := openChild(parent, parts[i], strings.Join(parts[:i+1], "/"))
		if err != nil {
			return nil, err
		}
		c.names = append(c.names, parts[i])
		c.open = append(c.open, d)
	}
	return c.open[len(c.open)-1], nil
}

// truncate closes the chain below its first n directories.
func (c *dirChain) truncate(n int) {
	for _, d := range c.open[n:] {
		d.Close()
	}
	c.names, c.open = c.names[:n], c.open[:n]
}

func (c *dirChain) close() { c.truncate(0) }

// openChild opens the directory name in parent, creating it if missing.
// full is its path in the target, for errors. A symlink is refused even
// when it points inside: Pack never writes entries under one, and
// refusing them keeps every write where its name says.
func openChild(parent *os.Root, name, full string) (*os.Root, error) {
	fi, err := parent.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		if err := parent.Mkdir(name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create directory %s: %w", full, err)
		}
		fi, err = parent.Lstat(name)
	}
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", full, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is a symlink, not a directory; berth restores nothing through symlinks: %w", full, ErrUnsafe)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", full)
	}
	d, err := parent.OpenRoot(name)
	if err != nil {
		return nil, fmt.Errorf("open directory %s: %w", full, err)
	}
	// OpenRoot follows a symlink that stays in parent: make sure what
	// it opened is the directory just checked, not something swapped in.
	if dfi, err := d.Stat("."); err != nil || !os.SameFile(fi, dfi) {
		d.Close()
		return nil, fmt.Errorf("%s changed while being restored into: %w", full, ErrUnsafe)
	}
	return d, nil
}
