package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/store"
)

// DownloadOptions choose where a download goes and where it comes from.
type DownloadOptions struct {
	// Path is the destination file. When empty, Dir must be set and the
	// file name recorded with the version is used.
	Path string
	Dir  string
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

// Download fetches project at version ("latest" or "" for the latest) from
// the first region that holds an intact copy. Bytes stream into a temporary
// file beside the destination and are renamed into place only when their
// SHA-256 matches the manifest; any failure moves on to the next region.
func (c *Client) Download(ctx context.Context, project, version string, opts DownloadOptions) (*DownloadResult, error) {
	version, err := c.checkRef(project, version)
	if err != nil {
		return nil, err
	}
	if (opts.Path == "") == (opts.Dir == "") {
		return nil, fmt.Errorf("give either a destination path or a directory: %w", ErrInvalid)
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
			return nil, ctx.Err()
		}
		var le *localError
		if errors.As(err, &le) {
			return nil, err // another region would fail the same way
		}
		c.log().Warn("region failed, trying the next", "region", r.Name, "err", err)
		errs = append(errs, &RegionError{Region: r.Name, Err: err})
		res.Failures = append(res.Failures, RegionResult{Region: r.Name, Status: StatusFailed, Error: err.Error()})
	}
	return nil, downloadError(project, version, errs)
}

// downloadError decides what the failures add up to: not found only when
// every region said so; otherwise the region errors, unavailable first.
func downloadError(project, version string, errs []*RegionError) error {
	allMissing := true
	for _, e := range errs {
		if !errors.Is(e.Err, store.ErrNotFound) {
			allMissing = false
		}
	}
	m := &MultiError{Op: fmt.Sprintf("download %s %s", project, version), Errors: errs}
	if allMissing {
		return fmt.Errorf("%s %s is in none of the %d regions: %w", project, version, len(errs), errors.Join(ErrVersionNotFound, m))
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
	if version != Latest {
		return version, nil
	}
	if r.Pointer == nil {
		return "", fmt.Errorf("no latest pointer configured: %w", ErrInvalid)
	}
	v, err := r.Pointer.Get(ctx, project)
	if err != nil {
		return "", fmt.Errorf("read latest version: %w", err)
	}
	if _, err := ParseVersion(v); err != nil {
		return "", fmt.Errorf("latest pointer holds %q: %w", v, ErrCorrupt)
	}
	return v, nil
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
	dest := opts.Path
	if dest == "" {
		if err := ValidateFilename(m.Filename); err != nil {
			return fmt.Errorf("manifest names an unsafe file: %w: %w", err, ErrCorrupt)
		}
		dest = filepath.Join(opts.Dir, m.Filename)
	}
	sum, err := writeVerified(ctx, dest, m, func(f *os.File) (int64, string, error) {
		return c.fetch(ctx, r, m, f)
	})
	if err != nil {
		return err
	}
	res.Version, res.Path, res.Size, res.SHA256 = v, dest, m.Size, sum
	res.SignedBy = signedBy
	return nil
}

// writeVerified has fill write the object's bytes into a temporary file next
// to dest, and renames it over dest only if size and SHA-256 match.
func writeVerified(ctx context.Context, dest string, m Manifest, fill func(*os.File) (int64, string, error)) (string, error) {
	dir := filepath.Dir(dest)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".berth-*")
	if err != nil {
		return "", &localError{fmt.Errorf("create temporary file in %s: %w: %w", dir, err, ErrInvalid)}
	}
	defer os.Remove(tmp.Name())
	n, sum, err := fill(tmp)
	if err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if n != m.Size || sum != m.SHA256 {
		return "", fmt.Errorf("downloaded %d bytes with sha256 %s, manifest says %d bytes with %s: %w", n, short(sum), m.Size, short(m.SHA256), ErrCorrupt)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return "", &localError{fmt.Errorf("move download into place: %w: %w", err, ErrInvalid)}
	}
	return sum, nil
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
