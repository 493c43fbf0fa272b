// Package artifact stages versioned release artifacts to every configured
// region and downloads them back, verified, from the first healthy one.
//
// Layout inside each region's store:
//
//	PROJECT/VERSION/data/ID        the bytes, under a key unique to one stage
//	PROJECT/VERSION/manifest.json  written last, create-only: the commit
//	PROJECT/latest.json            latest pointer (when kept in the store)
//
// A version exists in a region exactly when its manifest does.
package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store"
)

// Error kinds beyond those of package store.
var (
	// ErrConflict: the version exists with other bytes; nothing was changed.
	ErrConflict = errors.New("conflict")
	// ErrVersionNotFound: every region answered and none holds the version.
	ErrVersionNotFound = errors.New("version not found")
	// ErrCorrupt: stored bytes do not match their manifest.
	ErrCorrupt = errors.New("corrupt")
)

const manifestFormat = 1

// Region is one copy of the artifact set: a store and its latest pointer.
type Region struct {
	Name    string
	Store   store.Store
	Pointer pointer.Pointer
}

// Manifest describes one staged version; it is immutable once written.
type Manifest struct {
	Format   int               `json:"format"`
	Project  string            `json:"project"`
	Version  string            `json:"version"`
	Size     int64             `json:"size"`
	SHA256   string            `json:"sha256"`
	Metadata map[string]string `json:"metadata"`
	Filename string            `json:"filename"`
	// Mode holds the file's permission bits at stage time in octal, such
	// as "0755"; manifests written before berth recorded it have none.
	Mode     string    `json:"mode,omitempty"`
	Created  time.Time `json:"created"`
	StagedBy string    `json:"staged_by"`
	Object   string    `json:"object"` // data key, relative to the store
	// Signature is the stager's minisign signature of the manifest, if it
	// signed one (see sign.go).
	Signature string `json:"signature,omitempty"`

	raw []byte // the stored bytes, which the signature covers
}

// ProgressBar receives transfer progress of one region.
type ProgressBar interface {
	Add(n int)
	Done(err error)
}

// Client runs artifact operations over a set of regions.
type Client struct {
	Regions []Region
	// Identity is recorded as staged_by in manifests.
	Identity string
	// Progress, when set, is asked for one bar per region and transfer.
	Progress func(region string, total int64) ProgressBar
	// Journal, when set, records started uploads so a later stage can
	// abort those an interrupted one left behind.
	Journal UploadJournal
	Logger  *slog.Logger
	// TrustedKeys, when not empty, make Download accept only versions
	// signed by one of them, and Info check signatures against them.
	TrustedKeys []minisign.PublicKey
}

func (c *Client) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c *Client) bar(region string, total int64) ProgressBar {
	if c.Progress == nil {
		return nopBar{}
	}
	return c.Progress(region, total)
}

type nopBar struct{}

func (nopBar) Add(int)    {}
func (nopBar) Done(error) {}

func manifestKey(project, version string) string { return project + "/" + version + "/manifest.json" }
func dataPrefix(project, version string) string  { return project + "/" + version + "/data/" }

func readManifest(ctx context.Context, s store.Store, project, version string) (Manifest, error) {
	rc, _, err := s.Get(ctx, manifestKey(project, version), store.Range{})
	if err != nil {
		return Manifest{}, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest of %s %s: %w", project, version, store.ErrUnavailable)
	}
	m, err := parseManifest(data, project, version)
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest of %s %s in %s: %w", project, version, s, err)
	}
	return m, nil
}

// parseManifest decodes a manifest and checks it by the rules stage applies
// to its input, that it describes project/version and that it points inside
// that version's data prefix: a manifest is outside input like any other.
func parseManifest(data []byte, project, version string) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("parse: %v: %w", err, ErrCorrupt)
	}
	// The format first: a newer berth may write fields this one would
	// misread, and the message should say to upgrade, not blame the data.
	switch {
	case m.Format > manifestFormat:
		return Manifest{}, fmt.Errorf("manifest format %d is newer than this berth reads (format %d); upgrade berth: %w", m.Format, manifestFormat, ErrCorrupt)
	case m.Format != manifestFormat:
		return Manifest{}, fmt.Errorf("manifest format %d is unknown (this berth reads format %d): %w", m.Format, manifestFormat, ErrCorrupt)
	}
	bad := func(what string, err error) (Manifest, error) {
		return Manifest{}, fmt.Errorf("%s: %s: %w", what, strings.TrimSuffix(err.Error(), ": "+ErrInvalid.Error()), ErrCorrupt)
	}
	if err := ValidateProject(m.Project); err != nil {
		return bad("project", err)
	}
	if _, err := ParseVersion(m.Version); err != nil {
		return bad("version", err)
	}
	if err := ValidateFilename(m.Filename); err != nil {
		return bad("file name", err)
	}
	if err := ValidateMetadata(m.Metadata); err != nil {
		return bad("metadata", err)
	}
	base := pathBase(m.Object)
	switch {
	case m.Project != project || m.Version != version:
		return Manifest{}, fmt.Errorf("it describes %q %q: %w", m.Project, m.Version, ErrCorrupt)
	case len(m.SHA256) != 64 || strings.Trim(m.SHA256, "0123456789abcdef") != "":
		return Manifest{}, fmt.Errorf("sha256 %q is malformed: %w", m.SHA256, ErrCorrupt)
	case m.Size < 0:
		return Manifest{}, fmt.Errorf("size %d is negative: %w", m.Size, ErrCorrupt)
	case base == "" || base == "." || base == ".." || m.Object != dataPrefix(project, version)+base:
		return Manifest{}, fmt.Errorf("data object %q is outside the version: %w", m.Object, ErrCorrupt)
	case m.Mode != "" && !validMode(m.Mode):
		return Manifest{}, fmt.Errorf("file mode %q is not four octal digits such as 0644: %w", m.Mode, ErrCorrupt)
	}
	m.raw = data
	return m, nil
}

func formatMode(perm fs.FileMode) string { return fmt.Sprintf("%04o", perm.Perm()) }

func validMode(s string) bool {
	return len(s) == 4 && s[0] == '0' && strings.Trim(s, "01234567") == ""
}

// perm is the mode to create a downloaded file with; the umask applies on
// top. Without a recorded mode it is what os.Create uses.
func (m Manifest) perm() fs.FileMode {
	n, err := strconv.ParseUint(m.Mode, 8, 32)
	if err != nil || !validMode(m.Mode) {
		return 0o666
	}
	return fs.FileMode(n).Perm()
}

func pathBase(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			return key[i+1:]
		}
	}
	return key
}

func writeManifest(ctx context.Context, s store.Store, m Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	_, err = s.Put(ctx, manifestKey(m.Project, m.Version), bytes.NewReader(data), int64(len(data)),
		store.PutOptions{IfNoneMatch: true, ContentType: "application/json"})
	return err
}

// Kinds of error, as KindOf names them in JSON output.
const (
	KindNotFound    = "not-found"
	KindRefused     = "access-refused"
	KindUnavailable = "unavailable"
	KindCorrupt     = "corrupt"
	KindUntrusted   = "untrusted"
	KindConflict    = "conflict"
	KindInvalid     = "invalid"
	KindInterrupted = "interrupted"
)

// KindOf names the kind of err for scripts, or "" when it has none.
func KindOf(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled):
		return KindInterrupted
	case errors.Is(err, ErrConflict), errors.Is(err, store.ErrPreconditionFailed):
		return KindConflict
	case errors.Is(err, store.ErrPermissionDenied):
		return KindRefused
	case errors.Is(err, store.ErrUnavailable):
		return KindUnavailable
	case errors.Is(err, ErrUntrusted):
		return KindUntrusted
	case errors.Is(err, ErrCorrupt):
		return KindCorrupt
	case errors.Is(err, store.ErrNotFound), errors.Is(err, ErrVersionNotFound):
		return KindNotFound
	case errors.Is(err, ErrInvalid), errors.Is(err, store.ErrInvalid):
		return KindInvalid
	}
	return ""
}

// RegionError says which region failed and why.
type RegionError struct {
	Region string
	Err    error
}

func (e *RegionError) Error() string { return fmt.Sprintf("region %s: %v", e.Region, e.Err) }
func (e *RegionError) Unwrap() error { return e.Err }

// MultiError lists per-region failures, one line each. It unwraps to all
// of them, so errors.Is finds any kind present, and to Kind when set: what
// the failures add up to.
type MultiError struct {
	Op     string
	Kind   error
	Errors []*RegionError
}

func (m *MultiError) Error() string {
	s := m.Op + ":"
	for _, e := range m.Errors {
		s += "\n  " + e.Error()
	}
	return s
}

func (m *MultiError) Unwrap() []error {
	out := make([]error, 0, len(m.Errors)+1)
	if m.Kind != nil {
		out = append(out, m.Kind)
	}
	for _, e := range m.Errors {
		out = append(out, e)
	}
	return out
}

func (c *Client) region(name string) (Region, bool) {
	for _, r := range c.Regions {
		if r.Name == name {
			return r, true
		}
	}
	return Region{}, false
}

func (c *Client) checkRegions() error {
	if len(c.Regions) == 0 {
		return fmt.Errorf("no regions configured; run \"berth init\": %w", ErrInvalid)
	}
	return nil
}

// checkRef validates a project and a version that may be a pointer name
// ("latest", "latest-prerelease") or empty (meaning latest), and returns the
// version to look up.
func (c *Client) checkRef(project, version string) (string, error) {
	if err := c.checkRegions(); err != nil {
		return "", err
	}
	if err := ValidateProject(project); err != nil {
		return "", err
	}
	if version == "" {
		return Latest, nil
	}
	if !isPointer(version) {
		if _, err := ParseVersion(version); err != nil {
			return "", err
		}
	}
	return version, nil
}
