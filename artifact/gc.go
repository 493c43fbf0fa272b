package artifact

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/store"
)

// DefaultGCGrace is how old an unreferenced data object must be before GC
// takes it: a stage uploads its data first and writes the manifest last,
// so a young data object without a manifest may belong to a stage that is
// still running.
const DefaultGCGrace = 24 * time.Hour

// MinGCGrace is the shortest grace period GC accepts. A shorter one risks
// deleting the data of a stage in progress, whose manifest would then
// point at nothing.
const MinGCGrace = time.Hour

// DefaultUploadAge is how old an incomplete multipart upload must be
// before GC aborts it.
const DefaultUploadAge = 24 * time.Hour

// GCOptions says what GC looks for and whether it removes it.
type GCOptions struct {
	// Grace: data objects and temporary files younger than this are left
	// alone. Zero means DefaultGCGrace; less than MinGCGrace is refused.
	Grace time.Duration
	// UploadAge: incomplete uploads begun less than this ago are left
	// alone. Zero means DefaultUploadAge.
	UploadAge time.Duration
	// Delete removes what GC finds; without it GC only reports (dry run).
	Delete bool
	// Now is the clock objects' ages are measured with; nil is time.Now.
	Now func() time.Time
}

// GCObject is one object or temporary file GC found.
type GCObject struct {
	Key      string    `json:"key"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
	Removed  bool      `json:"removed"`
}

// GCRegion is what GC found and freed in one region.
type GCRegion struct {
	Region string `json:"region"`
	// Orphans are data objects no manifest points at, older than the grace
	// period: left by stages that lost a race or failed before committing.
	Orphans     []GCObject `json:"orphans"`
	OrphanBytes int64      `json:"orphan_bytes"`
	// Kept are orphans a manifest pointed at by the time GC came to delete
	// them: a stage committed during the run. They are never deleted.
	Kept []string `json:"kept,omitempty"`
	// TempFiles are temporary files killed writers left in a local store.
	TempFiles []GCObject `json:"temp_files"`
	TempBytes int64      `json:"temp_bytes"`
	// UploadsAborted counts incomplete multipart uploads aborted (only
	// with Delete: S3 stores can list them here only by aborting them).
	UploadsAborted int `json:"uploads_aborted"`
	// FreedBytes is what the removed orphans and temporary files held.
	FreedBytes int64  `json:"freed_bytes"`
	Error      string `json:"error,omitempty"`
	err        error
}

// Err is the error behind Error.
func (r GCRegion) Err() error { return r.err }

// GCResult is what GC returns.
type GCResult struct {
	Delete  bool       `json:"delete"`
	Grace   string     `json:"grace"`
	Regions []GCRegion `json:"regions"`
}

// tempCleaner is a store that writes through temporary files and can
// remove those killed writers left (the local directory store).
type tempCleaner interface {
	tempLister
	RemoveTempFiles(ctx context.Context, olderThan time.Duration) ([]store.Info, error)
}

// oldUploadAborter is a store that can abort incomplete uploads begun
// before a given age (S3). store.Cleaner alone cannot spare young ones.
type oldUploadAborter interface {
	AbortIncompleteOlderThan(ctx context.Context, prefix string, age time.Duration) (int, error)
}

// GC finds, in every region, the data objects no manifest points at, the
// temporary files killed writers left and (with Delete) the incomplete
// multipart uploads, all older than their grace periods, and with Delete
// removes them. A data object is deleted only after a fresh read of its
// version's manifest shows it unreferenced, so a stage that commits while
// GC runs keeps its data. Failures are per region; the result holds what
// every region did.
func (c *Client) GC(ctx context.Context, opts GCOptions) (*GCResult, error) {
	if err := c.checkRegions(); err != nil {
		return nil, err
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultGCGrace
	}
	if opts.Grace < MinGCGrace {
		return nil, invalid("grace period %s is too short: a stage in progress could lose its data; use at least %s", opts.Grace, MinGCGrace)
	}
	if opts.UploadAge <= 0 {
		opts.UploadAge = DefaultUploadAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	res := &GCResult{Delete: opts.Delete, Grace: opts.Grace.String(), Regions: make([]GCRegion, len(c.Regions))}
	parallel(len(c.Regions), func(i int) {
		res.Regions[i] = c.gcRegion(ctx, c.Regions[i], opts)
	})
	var problems []*RegionError
	for _, r := range res.Regions {
		if r.err != nil {
			problems = append(problems, &RegionError{Region: r.Region, Err: r.err})
		}
	}
	if len(problems) > 0 {
		return res, &MultiError{Op: "gc", Errors: problems}
	}
	return res, nil
}

func (c *Client) gcRegion(ctx context.Context, r Region, opts GCOptions) GCRegion {
	out := GCRegion{Region: r.Name, Orphans: []GCObject{}, TempFiles: []GCObject{}}
	var errs []error
	if err := c.gcOrphans(ctx, r, opts, &out); err != nil {
		errs = append(errs, err)
	}
	if err := c.gcTempFiles(ctx, r, opts, &out); err != nil {
		errs = append(errs, err)
	}
	if opts.Delete {
		if err := c.gcUploads(ctx, r, opts, &out); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		out.Error, out.err = err.Error(), err
	}
	return out
}

// versionObjects are the data objects of one version, and whether the
// listing held its manifest.
type versionObjects struct {
	project, version string
	hasManifest      bool
	data             []store.Info
}

// gcOrphans lists the whole store once, finds each version's unreferenced
// data objects older than the grace period and, with Delete, removes them.
func (c *Client) gcOrphans(ctx context.Context, r Region, opts GCOptions, out *GCRegion) error {
	objs, err := r.Store.List(ctx, "")
	if err != nil {
		return fmt.Errorf("list objects: %w", err)
	}
	var order []string
	versions := map[string]*versionObjects{}
	for _, o := range objs {
		project, version, isData, ok := splitKey(o.Key)
		if !ok {
			continue
		}
		id := project + "/" + version
		v := versions[id]
		if v == nil {
			v = &versionObjects{project: project, version: version}
			versions[id] = v
			order = append(order, id)
		}
		if isData {
			v.data = append(v.data, o)
		} else {
			v.hasManifest = true
		}
	}
	cutoff := opts.Now().Add(-opts.Grace)
	var errs []error
	for _, id := range order {
		v := versions[id]
		if len(v.data) == 0 {
			continue
		}
		var m *Manifest
		if v.hasManifest {
			got, err := readManifest(ctx, r.Store, v.project, v.version)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				// Without the manifest we cannot tell what it points at.
				errs = append(errs, fmt.Errorf("skip %s %s: %w", v.project, v.version, err))
				continue
			default:
				m = &got
			}
		}
		for _, o := range unreferenced(v.data, m) {
			// An unknown time is treated as young: never guess in favour
			// of deleting.
			if o.Modified.IsZero() || !o.Modified.Before(cutoff) {
				continue
			}
			obj := GCObject{Key: o.Key, Size: o.Size, Modified: o.Modified}
			if opts.Delete {
				kept, err := deleteOrphan(ctx, r.Store, v.project, v.version, o.Key)
				if err != nil {
					errs = append(errs, err)
				}
				if kept {
					out.Kept = append(out.Kept, o.Key)
					continue
				}
				obj.Removed = err == nil
			}
			out.Orphans = append(out.Orphans, obj)
			out.OrphanBytes += o.Size
			if obj.Removed {
				out.FreedBytes += o.Size
			}
		}
	}
	return errors.Join(errs...)
}

// deleteOrphan reads the version's manifest again right before deleting
// key, so that a stage that committed since the listing keeps its data.
// kept reports that the manifest now points at key.
func deleteOrphan(ctx context.Context, s store.Store, project, version, key string) (kept bool, err error) {
	m, err := readManifest(ctx, s, project, version)
	switch {
	case err == nil && m.Object == key:
		return true, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return false, fmt.Errorf("keep %s: cannot read its manifest: %w", key, err)
	}
	if err := s.Delete(ctx, key); err != nil {
		return false, fmt.Errorf("delete %s: %w", key, err)
	}
	return false, nil
}

// splitKey parses PROJECT/VERSION/data/ID and PROJECT/VERSION/manifest.json.
func splitKey(key string) (project, version string, isData, ok bool) {
	parts := strings.Split(key, "/")
	switch {
	case len(parts) == 4 && parts[2] == "data" && parts[3] != "":
		isData = true
	case len(parts) == 3 && parts[2] == "manifest.json":
	default:
		return "", "", false, false
	}
	if ValidateProject(parts[0]) != nil {
		return "", "", false, false
	}
	if _, err := ParseVersion(parts[1]); err != nil {
		return "", "", false, false
	}
	return parts[0], parts[1], isData, true
}

// gcTempFiles lists or removes a local store's leftover temporary files.
// The store measures their age by the system clock; the grace period is
// shifted by how far opts.Now is from it.
func (c *Client) gcTempFiles(ctx context.Context, r Region, opts GCOptions, out *GCRegion) error {
	tc, ok := r.Store.(tempCleaner)
	if !ok {
		return nil
	}
	olderThan := max(opts.Grace-opts.Now().Sub(time.Now()), 0)
	list := tc.TempFiles
	if opts.Delete {
		list = tc.RemoveTempFiles
	}
	files, err := list(ctx, olderThan)
	for _, f := range files {
		out.TempFiles = append(out.TempFiles, GCObject{Key: f.Key, Size: f.Size, Modified: f.Modified, Removed: opts.Delete})
		out.TempBytes += f.Size
		if opts.Delete {
			out.FreedBytes += f.Size
		}
	}
	if err != nil {
		return fmt.Errorf("temporary files: %w", err)
	}
	return nil
}

// gcUploads aborts incomplete multipart uploads older than opts.UploadAge:
// those the store can list under its prefix, and those of the upload
// journal's stale entries by exact key (MinIO lists uploads by exact key
// only, and the rest only from a cache it loses when it restarts).
func (c *Client) gcUploads(ctx context.Context, r Region, opts GCOptions, out *GCRegion) error {
	ab, ok := r.Store.(oldUploadAborter)
	if !ok {
		return nil
	}
	n, err := ab.AbortIncompleteOlderThan(ctx, "", opts.UploadAge)
	out.UploadsAborted += n
	if err != nil {
		return fmt.Errorf("abort incomplete uploads: %w", err)
	}
	if c.Journal == nil {
		return nil
	}
	stale, err := c.Journal.Stale(ctx, r.Name, r.Store.String())
	if err != nil {
		c.log().Warn("could not read the upload journal", "err", err)
		return nil
	}
	var errs []error
	for _, e := range stale {
		n, err := ab.AbortIncompleteOlderThan(ctx, e.Key, opts.UploadAge)
		out.UploadsAborted += n
		if err != nil {
			errs = append(errs, fmt.Errorf("abort incomplete upload of %s: %w", e.Key, err))
			continue
		}
		// A young upload stays in the journal for a later run; one gone
		// already costs a request each time, so drop entries past the age.
		if n > 0 || opts.Now().Sub(e.Started) >= opts.UploadAge {
			c.journalRemove(ctx, &e)
		}
	}
	return errors.Join(errs...)
}
