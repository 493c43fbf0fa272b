package artifact

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/store"
)

// DownloadOptions choose where a download goes and where it comes from.
type DownloadOptions struct {
	// Exactly one of Path, Dir and Writer names the destination.
	// Path is the destination file: a missing path or a regular file, which
	// is replaced. Dir is a directory to write the file name recorded with
	// the version into.
	Path string
	Dir  string
	// Writer receives the verified bytes. They pass through a temporary
	// file in os.TempDir first, so Writer never sees bytes that fail
	// verification.
	Writer io.Writer
	// Force replaces an existing file in Dir; a Path is always replaced
	// when it is a regular file.
	Force bool
	// AllowDotfile lets Dir receive a recorded file name that starts with
	// '.', such as .bashrc; such names are refused otherwise.
	AllowDotfile bool
	// PreferRegion is tried first; the rest follow in configured order.
	PreferRegion string
}

// DownloadResult says what was downloaded from where, and which regions
// failed before it.
type DownloadResult struct {
	Project  string         `json:"project"`
	Version  string         `json:"version"`
	Region   string         `json:"region"`
	Path     string         `json:"path"`
	Size     int64          `json:"size"`
	SHA256   string         `json:"sha256"`
	Failures []RegionResult `json:"failed_regions,omitempty"`
	// SignedBy is the trusted key that signed the version, when keys are trusted.
	SignedBy string `json:"signed_by,omitempty"`
}

// Download fetches project at version (a version, "latest",
// "latest-prerelease", or "" for the latest) from
// the first region that holds an intact copy. Bytes stream into a temporary
// file beside the destination and are renamed into place only when their
// SHA-256 matches the manifest; any failure moves on to the next region.
func (c *Client) Download(ctx context.Context, project, version string, opts DownloadOptions) (*DownloadResult, error) {
	version, err := c.checkRef(project, version)
	if err != nil {
		return nil, err
	}
	if n := btoi(opts.Path != "") + btoi(opts.Dir != "") + btoi(opts.Writer != nil); n != 1 {
		return nil, fmt.Errorf("give one destination: a path, a directory or a writer: %w", ErrInvalid)
	}
	if opts.Path != "" {
		// Before any transfer: a target berth must not replace fails now.
		if err := checkTarget(opts.Path); err != nil {
			return nil, err
		}
	}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("create destination directory: %w: %w", err, ErrInvalid)
		}
	}
	order, err := c.order(opts.PreferRegion)
	if err != nil {
		return nil, err
	}
	res := &DownloadResult{Project: project, Version: version}
	var errs []*RegionError
	for _, r := range order {
		err := c.downloadFrom(ctx, r, project, version, opts, res)
		if err == nil {
			res.Region = r.Name
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("download %s %s: %w", project, version, ctx.Err())
		}
		var le *localError
		if errors.As(err, &le) {
			return nil, err // another region would fail the same way
		}
		// The caller reports failures with the result or the error; this
		// line is for -v, when the next region takes a while.
		c.log().Debug("region failed, trying the next", "region", r.Name, "err", err)
		errs = append(errs, &RegionError{Region: r.Name, Err: err})
		res.Failures = append(res.Failures, failure(r.Name, err))
	}
	return nil, downloadError(project, version, errs)
}

// downloadError decides what the failures add up to: not found when every
// region said so; corrupt when every region answered and the copies they
// hold are damaged; otherwise the region errors, in which unavailable and
// refused regions decide.
func downloadError(project, version string, errs []*RegionError) error {
	missing, corrupt := 0, []string{}
	for _, e := range errs {
		switch {
		case errors.Is(e.Err, ErrCorrupt):
			corrupt = append(corrupt, e.Region)
		case errors.Is(e.Err, store.ErrNotFound):
			missing++
		}
	}
	m := &MultiError{Op: fmt.Sprintf("download %s %s", project, version), Errors: errs}
	switch {
	case missing == len(errs):
		m.Op, m.Kind = fmt.Sprintf("%s %s is in none of the %d regions", project, version, len(errs)), ErrVersionNotFound
	case missing+len(corrupt) == len(errs):
		what := "the copy in " + strings.Join(corrupt, ", ") + " is damaged"
		if len(corrupt) > 1 {
			what = "the copies in " + strings.Join(corrupt, ", ") + " are damaged"
		}
		if missing > 0 {
			what += " and the other regions hold none"
		}
		m.Op, m.Kind = fmt.Sprintf("no intact copy of %s %s: %s", project, version, what), ErrCorrupt
	}
	return m
}

func (c *Client) order(prefer string) ([]Region, error) {
	if prefer == "" {
		return c.Regions, nil
	}
	first, ok := c.region(prefer)
	if !ok {
		return nil, fmt.Errorf("region %q is not configured (configured: %s): %w", prefer, c.regionNames(), ErrInvalid)
	}
	order := []Region{first}
	for _, r := range c.Regions {
		if r.Name != prefer {
			order = append(order, r)
		}
	}
	return order, nil
}

// Only returns a client that uses only the region called name.
func (c *Client) Only(name string) (*Client, error) {
	r, ok := c.region(name)
	if !ok {
		return nil, fmt.Errorf("region %q is not configured (configured: %s): %w", name, c.regionNames(), ErrInvalid)
	}
	only := *c
	only.Regions = []Region{r}
	return &only, nil
}

func (c *Client) regionNames() string {
	s := ""
	for i, r := range c.Regions {
		if i > 0 {
			s += ", "
		}
		s += r.Name
	}
	return s
}

func (c *Client) resolve(ctx context.Context, r Region, project, version string) (string, error) {
	if !isPointer(version) {
		return version, nil
	}
	if r.Pointer == nil {
		return "", fmt.Errorf("no %s pointer configured: %w", version, ErrInvalid)
	}
	return readPointer(ctx, r, project, version)
}

func (c *Client) downloadFrom(ctx context.Context, r Region, project, version string, opts DownloadOptions, res *DownloadResult) error {
	v, err := c.resolve(ctx, r, project, version)
	if err != nil {
		return err
	}
	m, err := readManifest(ctx, r.Store, project, v)
	if err != nil {
		return err
	}
	signedBy, err := c.trust(&m)
	if err != nil {
		return err
	}
	t := target{path: opts.Path, w: opts.Writer}
	if opts.Dir != "" {
		if err := ValidateFilename(m.Filename); err != nil {
			return fmt.Errorf("manifest names an unsafe file: %v: %w", err, ErrCorrupt)
		}
		if strings.HasPrefix(m.Filename, ".") && !opts.AllowDotfile {
			return &localError{invalid("%s %s records the hidden file name %q; write it only if you trust it (--allow-dotfile), or choose the name with -o PATH", project, v, m.Filename)}
		}
		t.path, t.keep = filepath.Join(opts.Dir, m.Filename), !opts.Force
		if err := t.check(); err != nil {
			return &localError{err}
		}
	}
	sum, err := writeVerified(ctx, t, m, func(f *os.File) (int64, string, error) {
		return c.fetch(ctx, r, m, f)
	})
	if err != nil {
		return err
	}
	res.Version, res.Path, res.Size, res.SHA256 = v, t.path, m.Size, sum
	res.SignedBy = signedBy
	if t.w != nil {
		res.Path = "-"
	}
	return nil
}

// target is where writeVerified puts verified bytes: a file path, or a
// writer when w is set.
type target struct {
	path string
	keep bool // an existing file at path is not replaced
	w    io.Writer
}

func (t target) check() error {
	if err := checkTarget(t.path); err != nil {
		return err
	}
	if _, err := os.Lstat(t.path); err == nil && t.keep {
		return fmt.Errorf("%s already exists; it is replaced only with --force: %w", t.path, fs.ErrExist)
	}
	return nil
}

// writeVerified has fill write the object's bytes into a temporary file, and
// only if size and SHA-256 match renames it over the target path or copies
// it to the target writer. The temporary file lies next to the target path
// (so the rename is atomic) or, for a writer, in os.TempDir.
func writeVerified(ctx context.Context, t target, m Manifest, fill func(*os.File) (int64, string, error)) (string, error) {
	// The file is created with the recorded mode, so the umask applies
	// as to any new file, and readable and writable by its owner while it
	// fills; a copy on its way to a writer stays private.
	dir, prefix, perm := filepath.Dir(t.path), "."+filepath.Base(t.path)+".berth-", m.perm()
	if t.w != nil {
		dir, prefix, perm = os.TempDir(), "berth-download-", 0o600
	}
	tmp, err := createTemp(dir, prefix, perm|0o600)
	if err != nil {
		return "", &localError{fmt.Errorf("create temporary file in %s: %w: %w", dir, err, ErrInvalid)}
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, sum, err := fill(tmp)
	if err != nil {
		return "", err
	}
	if n != m.Size || sum != m.SHA256 {
		return "", fmt.Errorf("downloaded %d bytes with sha256 %s, manifest says %d bytes with %s: %w", n, short(sum), m.Size, short(m.SHA256), ErrCorrupt)
	}
	if t.w != nil {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return "", &localError{fmt.Errorf("read back %s: %w", tmp.Name(), err)}
		}
		if _, err := io.Copy(t.w, ctxReader{ctx, tmp}); err != nil {
			return "", &localError{fmt.Errorf("write verified bytes: %w", err)}
		}
		return sum, nil
	}
	if extra := 0o600 &^ perm; extra != 0 {
		// Take back the owner bits the recorded mode lacks; what the
		// umask removed stays removed.
		fi, err := tmp.Stat()
		if err == nil {
			err = tmp.Chmod(fi.Mode().Perm() &^ extra)
		}
		if err != nil {
			return "", &localError{fmt.Errorf("set the mode of %s: %w", tmp.Name(), err)}
		}
	}
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	// Again just before the rename: the target may have changed meanwhile.
	if err := t.check(); err != nil {
		return "", &localError{err}
	}
	if t.keep {
		if err := placeNoReplace(tmp.Name(), t.path); err != nil {
			return "", &localError{err}
		}
		return sum, nil
	}
	if err := os.Rename(tmp.Name(), t.path); err != nil {
		return "", &localError{fmt.Errorf("move download into place: %w: %w", err, ErrInvalid)}
	}
	return sum, nil
}

// placeNoReplace gives the file tmp the name path unless path exists, in
// one step: a hard link fails when the name is taken, where a check before
// a rename leaves a moment for another process to create it. tmp stays
// (the caller removes it). On a file system without hard links it falls
// back to that check and rename.
func placeNoReplace(tmp, path string) error {
	err := os.Link(tmp, path)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; it is replaced only with --force: %w", path, fs.ErrExist)
	}
	if _, lerr := os.Lstat(path); lerr == nil {
		return fmt.Errorf("%s already exists; it is replaced only with --force: %w", path, fs.ErrExist)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("move download into place: %w: %w", err, ErrInvalid)
	}
	return nil
}

// createTemp is os.CreateTemp with a mode: a new file named prefix and a
// random suffix in dir, created with perm minus the umask.
func createTemp(dir, prefix string, perm fs.FileMode) (*os.File, error) {
	for range 100 {
		var b [8]byte
		rand.Read(b[:])
		name := filepath.Join(dir, prefix+hex.EncodeToString(b[:]))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("no unused temporary name in %s: %w", dir, fs.ErrExist)
}

// checkTarget refuses a destination that a rename would damage: only a
// missing path, in an existing directory, or a regular file may be
// replaced. A rename over /dev/null would replace the device node, and one
// over a symbolic link the link.
func checkTarget(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		dir := filepath.Dir(path)
		if di, err := os.Stat(dir); err != nil || !di.IsDir() {
			return invalid("cannot download to %s: directory %s does not exist", path, dir)
		}
		return nil
	case err != nil:
		return fmt.Errorf("check destination: %w: %w", err, ErrInvalid)
	case fi.IsDir():
		return invalid("destination %s is a directory: give a file path, or download into the directory under the recorded file name with --filename %s", path, path)
	case !fi.Mode().IsRegular():
		return invalid("destination %s is a %s, not a regular file; berth replaces only regular files (to write to standard output use -o -)", path, fileKind(fi.Mode()))
	}
	return nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

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

// localError is a failure on this machine, not in a region.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }
