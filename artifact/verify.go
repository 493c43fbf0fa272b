package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berth-dev/berth/store"
)

// ErrVerifyFailed: verify found a region without an intact copy.
var ErrVerifyFailed = errors.New("verification failed")

// Verify statuses of a region.
const (
	VerifyOK          = "ok"
	VerifyMissing     = "missing"        // no manifest, or no data behind it
	VerifyCorrupt     = "corrupt"        // manifest damaged, or bytes wrong
	VerifyMismatch    = "mismatch"       // manifest differs from the other regions'
	VerifyUnreachable = "unreachable"    // the region did not answer
	VerifyRefused     = "access-refused" // the region refused the credentials
	VerifyUntrusted   = "untrusted"      // intact, but not signed by a trusted key (with trusted keys only)
)

// VerifyRegion is the state of one region.
type VerifyRegion struct {
	Region   string `json:"region"`
	Status   string `json:"status"`
	Repaired bool   `json:"repaired,omitempty"`
	Error    string `json:"error,omitempty"`
	// Orphans are data objects no manifest points at: left by a stager
	// that lost a race or failed before committing. Stagers may not delete,
	// so they stay until an operator removes them; they do no harm.
	Orphans []string `json:"orphans,omitempty"`
	// TempFiles are temporary files of the project a writer killed
	// mid-write left in a local store, older than TempGrace; safe to delete.
	TempFiles []string `json:"temp_files,omitempty"`
	err       error
}

// Err is the error behind Error.
func (r VerifyRegion) Err() error { return r.err }

// VerifyResult is what Verify returns.
type VerifyResult struct {
	Project string         `json:"project"`
	Version string         `json:"version"`
	SHA256  string         `json:"sha256,omitempty"`
	Size    int64          `json:"size"`
	Regions []VerifyRegion `json:"regions"`
}

type regionCheck struct {
	region           Region
	project, version string
	manifest         *Manifest
	status           string
	err              error
}

// Verify checks that every region holds an intact, identical copy of
// project at version by reading and hashing each one. With repair, a
// missing or corrupted copy is replaced from a healthy region; manifests
// that disagree are never repaired: that needs a person.
func (c *Client) Verify(ctx context.Context, project, version string, repair bool) (*VerifyResult, error) {
	if err := c.checkRegions(); err != nil {
		return nil, err
	}
	if err := ValidateProject(project); err != nil {
		return nil, err
	}
	if _, err := ParseVersion(version); err != nil {
		return nil, err
	}
	checks := make([]*regionCheck, len(c.Regions))
	parallel(len(c.Regions), func(i int) {
		checks[i] = c.check(ctx, c.Regions[i], project, version)
	})
	// With trusted keys, an intact copy counts only when signed by one:
	// a region whose manifest was replaced by someone without the key is
	// reported, and never used to repair the others.
	for _, ch := range checks {
		if ch.status == VerifyOK {
			if _, err := c.trust(ch.manifest); err != nil {
				ch.status, ch.err = VerifyUntrusted, err
			}
		}
	}

	// The reference is the manifest of the first intact copy.
	var ref *regionCheck
	for _, ch := range checks {
		if ch.status == VerifyOK {
			ref = ch
			break
		}
	}
	res := &VerifyResult{Project: project, Version: version}
	if ref == nil {
		allMissing := true
		for _, ch := range checks {
			if ch.status != VerifyMissing || ch.manifest != nil {
				allMissing = false
			}
		}
		if allMissing {
			return nil, fmt.Errorf("%s %s is in none of the %d regions: %w", project, version, len(checks), ErrVersionNotFound)
		}
	} else {
		res.SHA256, res.Size = ref.manifest.SHA256, ref.manifest.Size
		for _, ch := range checks {
			if ch.manifest != nil && (ch.manifest.SHA256 != ref.manifest.SHA256 || ch.manifest.Size != ref.manifest.Size) {
				ch.status = VerifyMismatch
				ch.err = fmt.Errorf("manifest says sha256 %s, region %s says %s: %w", short(ch.manifest.SHA256), ref.region.Name, short(ref.manifest.SHA256), ErrConflict)
			}
		}
	}

	var problems []*RegionError
	for _, ch := range checks {
		vr := VerifyRegion{Region: ch.region.Name, Status: ch.status, Orphans: c.orphans(ctx, ch), TempFiles: c.tempFiles(ctx, ch)}
		if repair && ref != nil && (ch.status == VerifyMissing || ch.status == VerifyCorrupt) {
			if err := c.repair(ctx, ref, ch); err != nil {
				ch.err = fmt.Errorf("repair from %s: %w", ref.region.Name, err)
			} else if again := c.check(ctx, ch.region, project, version); again.status == VerifyOK {
				vr.Repaired, vr.Status, ch.err = true, VerifyOK, nil
			} else {
				ch.err = fmt.Errorf("still %s after repair: %v", again.status, again.err)
			}
		}
		if vr.Status != VerifyOK {
			err := ch.err
			if err == nil {
				err = errors.New(ch.status)
			}
			vr.Error, vr.err = err.Error(), err
			problems = append(problems, &RegionError{Region: ch.region.Name, Err: err})
		}
		res.Regions = append(res.Regions, vr)
	}
	if len(problems) > 0 {
		return res, fmt.Errorf("verify %s %s: %w", project, version, errors.Join(ErrVerifyFailed, &MultiError{Op: "regions without an intact copy", Errors: problems}))
	}
	return res, nil
}

func (c *Client) check(ctx context.Context, r Region, project, version string) *regionCheck {
	ch := &regionCheck{region: r, project: project, version: version}
	m, err := readManifest(ctx, r.Store, project, version)
	switch {
	case errors.Is(err, store.ErrNotFound):
		ch.status, ch.err = VerifyMissing, fmt.Errorf("no manifest: %w", err)
		return ch
	case errors.Is(err, ErrCorrupt):
		ch.status, ch.err = VerifyCorrupt, err
		return ch
	case err != nil:
		ch.status, ch.err = unreachable(err), err
		return ch
	}
	ch.manifest = &m
	rc, _, err := r.Store.Get(ctx, m.Object, store.Range{})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			ch.status, ch.err = VerifyMissing, fmt.Errorf("the manifest is there, its data object %s is missing", m.Object)
		} else {
			ch.status, ch.err = unreachable(err), err
		}
		return ch
	}
	defer rc.Close()
	bar := c.bar(r.Name, m.Size)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(h, barWriter{bar}), ctxReader{ctx, rc})
	bar.Done(err)
	switch sum := hex.EncodeToString(h.Sum(nil)); {
	case err != nil:
		ch.status, ch.err = unreachable(err), fmt.Errorf("read data object: %w", err)
	case n != m.Size || sum != m.SHA256:
		ch.status, ch.err = VerifyCorrupt, fmt.Errorf("data object has %d bytes with sha256 %s, manifest says %d bytes with %s", n, short(sum), m.Size, short(m.SHA256))
	default:
		ch.status = VerifyOK
	}
	return ch
}

func unreachable(err error) string {
	if errors.Is(err, store.ErrPermissionDenied) {
		return VerifyRefused
	}
	return VerifyUnreachable
}

// repair copies the intact copy in src to dst, hashing on the way.
func (c *Client) repair(ctx context.Context, src, dst *regionCheck) error {
	m := *src.manifest
	key := m.Object
	if dst.manifest == nil {
		key = dataPrefix(m.Project, m.Version) + newID()
	} else {
		key = dst.manifest.Object // the manifest is immutable; fix what it points at
	}
	rc, _, err := src.region.Store.Get(ctx, m.Object, store.Range{})
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	bar := c.bar(dst.region.Name, m.Size)
	_, err = dst.region.Store.Put(ctx, key, io.TeeReader(io.TeeReader(rc, h), barWriter{bar}), m.Size, store.PutOptions{})
	bar.Done(err)
	if err != nil {
		return err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != m.SHA256 {
		return fmt.Errorf("source changed while copying (sha256 %s): %w", short(sum), ErrCorrupt)
	}
	if dst.manifest == nil {
		m.Object = key
		if err := writeManifest(ctx, dst.region.Store, m); err != nil && !errors.Is(err, store.ErrPreconditionFailed) {
			return fmt.Errorf("write manifest: %w", err)
		}
		if p := dst.region.Pointer; p != nil {
			if _, err := movePointers(ctx, p, m.Project, m.Version, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// TempGrace is how old a temporary file must be before verify reports it:
// a live writer keeps touching its file, so none is that old.
const TempGrace = time.Hour

// tempLister is a store that writes through temporary files and can list
// those left behind (the local directory store).
type tempLister interface {
	TempFiles(ctx context.Context, olderThan time.Duration) ([]store.Info, error)
}

// tempFiles lists the project's leftover temporary files in a region whose
// store keeps them. Like orphans, they are information, not a verdict.
func (c *Client) tempFiles(ctx context.Context, ch *regionCheck) []string {
	tl, ok := ch.region.Store.(tempLister)
	if !ok || ch.status == VerifyUnreachable || ch.status == VerifyRefused {
		return nil
	}
	files, err := tl.TempFiles(ctx, TempGrace)
	if err != nil {
		c.log().Debug("could not list temporary files", "region", ch.region.Name, "err", err)
		return nil
	}
	var out []string
	for _, f := range files {
		if strings.HasPrefix(f.Key, ch.project+"/") {
			out = append(out, f.Key)
		}
	}
	return out
}

// orphans lists the version's data objects in a region that its manifest
// does not point at. A listing error leaves the list empty: orphans are
// information, not a verdict.
func (c *Client) orphans(ctx context.Context, ch *regionCheck) []string {
	if ch.status == VerifyUnreachable || ch.status == VerifyRefused {
		return nil
	}
	project, version := "", ""
	if ch.manifest != nil {
		project, version = ch.manifest.Project, ch.manifest.Version
	} else {
		project, version = ch.project, ch.version
	}
	objs, err := ch.region.Store.List(ctx, dataPrefix(project, version))
	if err != nil {
		return nil
	}
	var out []string
	for _, o := range unreferenced(objs, ch.manifest) {
		out = append(out, o.Key)
	}
	return out
}

// unreferenced returns the data objects of one version that its manifest m
// does not point at; all of them when there is no manifest (m == nil).
// Verify reports them and GC removes them.
func unreferenced(objs []store.Info, m *Manifest) []store.Info {
	var out []store.Info
	for _, o := range objs {
		if m == nil || o.Key != m.Object {
			out = append(out, o)
		}
	}
	return out
}
