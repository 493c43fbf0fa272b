package artifact

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"aead.dev/minisign"

	"github.com/berth-dev/berth/store"
)

// StageOptions are the inputs of Stage besides project, version and file.
type StageOptions struct {
	Metadata map[string]string
	Filename string // recorded file name; default: the file's base name
	DryRun   bool   // check access and existence, write nothing
	// ForceLatest moves the latest pointer to this version even if it is
	// lower than the current one, or a prerelease (which otherwise moves
	// only latest-prerelease).
	ForceLatest bool
	// SignKey, when set, signs the manifest (see sign.go).
	SignKey *minisign.PrivateKey
}

// Region outcomes of a stage.
const (
	StatusStaged   = "staged"   // written by this stage
	StatusPresent  = "present"  // already there with the same bytes
	StatusRefilled = "refilled" // manifest was there, its lost bytes uploaded again
	StatusWouldAdd = "would-stage"
	StatusFailed   = "failed"
	StatusRefused  = "access-refused" // the region refused the credentials
	StatusConflict = "conflict"
)

// RegionResult is the outcome of an operation in one region.
type RegionResult struct {
	Region       string `json:"region"`
	Status       string `json:"status"`
	LatestMoved  bool   `json:"latest_moved,omitempty"`
	LatestBefore string `json:"latest_before,omitempty"`
	// The latest-prerelease pointer: the highest version, prereleases too.
	PrereleaseMoved  bool   `json:"latest_prerelease_moved,omitempty"`
	PrereleaseBefore string `json:"latest_prerelease_before,omitempty"`
	Error            string `json:"error,omitempty"`
	// Kind sorts Error for scripts: see KindOf.
	Kind string `json:"error_kind,omitempty"`
	err  error
}

// Err is the error behind Error, for callers that word it themselves.
func (r RegionResult) Err() error { return r.err }

// failure is the result of a region that failed with err.
func failure(region string, err error) RegionResult {
	status := StatusFailed
	if errors.Is(err, store.ErrPermissionDenied) {
		status = StatusRefused
	}
	return RegionResult{Region: region, Status: status, Error: err.Error(), Kind: KindOf(err), err: err}
}

// StageResult summarises a stage.
type StageResult struct {
	Project  string         `json:"project"`
	Version  string         `json:"version"`
	Size     int64          `json:"size"`
	SHA256   string         `json:"sha256,omitempty"`
	Filename string         `json:"filename"`
	DryRun   bool           `json:"dry_run,omitempty"`
	Regions  []RegionResult `json:"regions"`
	SignedBy string         `json:"signed_by,omitempty"` // key ID, when signed
}

type regionStage struct {
	region   Region
	existing *Manifest // manifest already present
	upload   bool
	refill   bool // existing's data object is missing: upload it again
	dataKey  string
	res      RegionResult
}

// Stage writes file as project/version to every region. The file is read
// once; its bytes go to all regions in parallel under keys unique to this
// stage, and each region is committed by a create-only manifest written only
// after the SHA-256 is known and checked against any copy already there.
// A region that fails leaves no manifest; running Stage again completes it.
func (c *Client) Stage(ctx context.Context, project, version, file string, opts StageOptions) (*StageResult, error) {
	if err := c.checkRegions(); err != nil {
		return nil, err
	}
	if err := ValidateProject(project); err != nil {
		return nil, err
	}
	if _, err := ParseVersion(version); err != nil {
		return nil, err
	}
	if err := ValidateMetadata(opts.Metadata); err != nil {
		return nil, err
	}
	filename := opts.Filename
	if filename == "" {
		filename = filepath.Base(file)
	}
	if err := ValidateFilename(filename); err != nil {
		return nil, err
	}
	f, fi, err := openRegular(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := fi.Size()
	res := &StageResult{Project: project, Version: version, Size: size, Filename: filename, DryRun: opts.DryRun}

	// Look at every region first: what is there decides what to write.
	stages := make([]*regionStage, len(c.Regions))
	parallel(len(c.Regions), func(i int) {
		r := c.Regions[i]
		rs := &regionStage{region: r, res: RegionResult{Region: r.Name}}
		stages[i] = rs
		m, err := readManifest(ctx, r.Store, project, version)
		switch {
		case err == nil:
			rs.existing = &m
			// The manifest alone does not make a copy: its bytes may
			// have been lost. The same bytes go back under its key.
			_, err := r.Store.Stat(ctx, m.Object)
			switch {
			case errors.Is(err, store.ErrNotFound) && m.Size == size:
				rs.upload, rs.refill = true, true
			case errors.Is(err, store.ErrNotFound):
				// Other bytes: the conflict check below refuses.
			case err != nil:
				rs.fail(err)
			}
		case errors.Is(err, store.ErrNotFound):
			rs.upload = true
			if opts.DryRun {
				err = c.checkWritable(ctx, r, project, version)
				rs.fail(err)
			}
		default:
			rs.fail(err)
		}
	})
	if err := refuseUnsigned(stages, project, version, opts.SignKey); err != nil {
		return nil, err
	}

	if opts.DryRun {
		for _, rs := range stages {
			if rs.res.Status == "" {
				rs.res.Status = StatusPresent
				if rs.upload {
					rs.res.Status = StatusWouldAdd
				}
				if rs.existing != nil && rs.existing.Size != size {
					rs.res.Status = StatusConflict
					rs.res.err = fmt.Errorf("%s %s is already staged with %d bytes, the file has %d: %w", project, version, rs.existing.Size, size, ErrConflict)
					rs.res.Error = rs.res.err.Error()
				}
			}
			res.Regions = append(res.Regions, rs.res)
		}
		return res, stageError(res)
	}

	var uploads []*regionStage
	dataKey := dataPrefix(project, version) + newID() // one key for this stage in every region
	for _, rs := range stages {
		if rs.upload && rs.res.Status == "" {
			rs.dataKey = dataKey
			if rs.refill {
				// Create-only, under the key the immutable manifest
				// names; discarded below unless the bytes match it.
				rs.dataKey = rs.existing.Object
			}
			uploads = append(uploads, rs)
			c.abortStale(ctx, rs.region)
		}
	}

	sum, err := c.fanOut(ctx, f, size, uploads)
	if err != nil {
		return nil, fmt.Errorf("read artifact file %s: %w", file, err)
	}
	res.SHA256 = sum

	// The same version with other bytes anywhere is a conflict: commit nothing.
	for _, rs := range stages {
		if rs.existing != nil && (rs.existing.SHA256 != sum || rs.existing.Size != size) {
			for _, u := range uploads {
				if !(u.refill && u.existing.SHA256 == sum && u.existing.Size == size) {
					c.discard(u) // a refill that matches its manifest stays
				}
			}
			rs.res.Status = StatusConflict
			rs.res.err = conflictErr(project, version, rs.region.Name, rs.existing.SHA256, sum)
			rs.res.Error = rs.res.err.Error()
			for _, other := range stages {
				res.Regions = append(res.Regions, other.res)
			}
			return res, rs.res.err
		}
	}

	m := Manifest{
		Format: manifestFormat, Project: project, Version: version, Size: size, SHA256: sum,
		Metadata: opts.Metadata, Filename: filename, Mode: formatMode(fi.Mode()),
		Created: time.Now().UTC().Truncate(time.Millisecond), StagedBy: c.Identity,
	}
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	if res.SignedBy, err = signManifest(&m, opts.SignKey); err != nil {
		return nil, err
	}
	// The first region that takes a manifest decides the winner of a race:
	// commit one region at a time, in order, until one holds our bytes, then
	// the rest in parallel. Committing all at once could let two stagers each
	// win a different region.
	decided := false
	for _, rs := range stages {
		if rs.existing != nil {
			decided = true
		}
	}
	for i := 0; i < len(stages) && !decided; i++ {
		rs := stages[i]
		if rs.res.Status != "" {
			continue
		}
		c.commit(ctx, rs, m, opts)
		switch rs.res.Status {
		case StatusConflict:
			for _, other := range stages[i+1:] {
				c.discard(other)
			}
			for _, other := range stages {
				res.Regions = append(res.Regions, other.res)
			}
			return res, rs.res.err
		case StatusStaged, StatusPresent:
			decided = true
		}
	}
	parallel(len(stages), func(i int) {
		if rs := stages[i]; rs.res.Status == "" {
			c.commit(ctx, rs, m, opts)
		}
	})
	for _, rs := range stages {
		res.Regions = append(res.Regions, rs.res)
	}
	return res, stageError(res)
}

// openRegular opens the file to stage, which must be a regular file: the
// type is checked before the open, since opening a FIFO blocks until a
// writer comes, and again on the open file (non-blocking, in case the path
// was swapped between the two).
func openRegular(file string) (*os.File, os.FileInfo, error) {
	notRegular := func(fi os.FileInfo) error {
		return invalid("artifact file %s is a %s, not a regular file; stage reads only regular files", file, fileKind(fi.Mode()))
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, nil, fmt.Errorf("open artifact file: %w: %w", err, ErrInvalid)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, notRegular(fi)
	}
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open artifact file: %w: %w", err, ErrInvalid)
	}
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("stat artifact file: %w: %w", err, ErrInvalid)
		}
		return nil, nil, notRegular(fi)
	}
	return f, fi, nil
}

func conflictErr(project, version, region, theirs, ours string) error {
	return fmt.Errorf("%s %s is already staged in %s with other bytes (sha256 %s, this file %s); versions are immutable, stage a new version: %w",
		project, version, region, short(theirs), short(ours), ErrConflict)
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func (rs *regionStage) fail(err error) {
	if err == nil {
		return
	}
	res := failure(rs.res.Region, err)
	rs.res.Status, rs.res.err, rs.res.Error, rs.res.Kind = res.Status, res.err, res.Error, res.Kind
}

// discard removes a data object that will not be committed. Writers may
// lack delete permission; then the orphan stays and verify reports it.
func (c *Client) discard(rs *regionStage) {
	if rs.dataKey == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rs.region.Store.Delete(ctx, rs.dataKey); err != nil {
		c.log().Debug("could not remove unused data object", "region", rs.region.Name, "key", rs.dataKey, "err", err)
	}
}

// checkWritable proves, without writing, that the region can be reached.
func (c *Client) checkWritable(ctx context.Context, r Region, project, version string) error {
	_, err := r.Store.List(ctx, dataPrefix(project, version))
	return err
}

func stageError(res *StageResult) error {
	var errs []*RegionError
	for _, r := range res.Regions {
		if r.err != nil {
			errs = append(errs, &RegionError{Region: r.Region, Err: r.err})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &MultiError{Op: fmt.Sprintf("stage %s %s", res.Project, res.Version), Errors: errs}
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}

// fanOut reads r once, hashing it, and feeds every upload its own pipe so
// all regions receive the bytes in parallel. A failed region drops out
// without stopping the others. It returns the SHA-256 of all bytes read.
func (c *Client) fanOut(ctx context.Context, r io.Reader, size int64, uploads []*regionStage) (string, error) {
	h := sha256.New()
	type sink struct {
		rs   *regionStage
		pw   *io.PipeWriter
		bar  ProgressBar
		dead bool
	}
	sinks := make([]*sink, len(uploads))
	var wg sync.WaitGroup
	for i, rs := range uploads {
		pr, pw := io.Pipe()
		s := &sink{rs: rs, pw: pw, bar: c.bar(rs.region.Name, size)}
		sinks[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			entry := c.journalAdd(ctx, rs.region, rs.dataKey)
			_, err := rs.region.Store.Put(ctx, rs.dataKey, pr, size, store.PutOptions{IfNoneMatch: true})
			if err == nil {
				c.journalRemove(ctx, entry)
			} else {
				c.journalEnded(ctx, entry)
			}
			if err != nil {
				rs.fail(fmt.Errorf("upload %s: %w", rs.dataKey, err))
				pr.CloseWithError(err)
			} else {
				pr.Close()
			}
			s.bar.Done(err)
		}()
	}
	buf := make([]byte, 1<<20)
	var readErr error
	for {
		n, err := r.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			chunk := buf[:n]
			var ww sync.WaitGroup
			for _, s := range sinks {
				if s.dead {
					continue
				}
				ww.Add(1)
				go func() {
					defer ww.Done()
					if _, err := s.pw.Write(chunk); err != nil {
						s.dead = true
						return
					}
					s.bar.Add(len(chunk))
				}()
			}
			ww.Wait()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		if ctx.Err() != nil {
			readErr = ctx.Err()
			break
		}
	}
	for _, s := range sinks {
		if readErr != nil {
			s.pw.CloseWithError(readErr)
		} else {
			s.pw.Close()
		}
	}
	wg.Wait()
	if readErr != nil {
		return "", readErr
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// commit writes the region's manifest and moves its latest pointer.
func (c *Client) commit(ctx context.Context, rs *regionStage, m Manifest, opts StageOptions) {
	if rs.existing != nil {
		rs.res.Status = StatusPresent
		if rs.refill {
			rs.res.Status = StatusRefilled
		}
	} else {
		m.Object = rs.dataKey
		err := writeManifest(ctx, rs.region.Store, m)
		switch {
		case errors.Is(err, store.ErrPreconditionFailed):
			// Another stager committed first; we lost unless our bytes match.
			c.discard(rs)
			theirs, rerr := readManifest(ctx, rs.region.Store, m.Project, m.Version)
			switch {
			case rerr != nil:
				rs.fail(rerr)
				return
			case theirs.SHA256 != m.SHA256 || theirs.Size != m.Size:
				rs.res.Status = StatusConflict
				rs.res.err = conflictErr(m.Project, m.Version, rs.region.Name, theirs.SHA256, m.SHA256)
				rs.res.Error = rs.res.err.Error()
				return
			}
			rs.res.Status = StatusPresent
		case err != nil:
			c.discard(rs)
			rs.fail(fmt.Errorf("commit manifest: %w", err))
			return
		default:
			rs.res.Status = StatusStaged
		}
	}
	if rs.region.Pointer != nil {
		pm, err := movePointers(ctx, rs.region.Pointer, m.Project, m.Version, opts.ForceLatest)
		rs.res.LatestMoved, rs.res.LatestBefore = pm.latestMoved, pm.latestBefore
		rs.res.PrereleaseMoved, rs.res.PrereleaseBefore = pm.prereleaseMoved, pm.prereleaseBefore
		if err != nil {
			rs.fail(fmt.Errorf("version is staged but a pointer was not moved: %w", err))
			return
		}
	}
}

// abortStale aborts the uploads an earlier, interrupted stage from this
// machine left in region, as recorded in the journal.
func (c *Client) abortStale(ctx context.Context, r Region) {
	cl, ok := r.Store.(store.Cleaner)
	if !ok || c.Journal == nil {
		return
	}
	stale, err := c.Journal.Stale(ctx, r.Name, r.Store.String())
	if err != nil {
		c.log().Warn("could not read the upload journal", "err", err)
		return
	}
	for _, e := range stale {
		n, err := cl.AbortIncomplete(ctx, e.Key)
		if err != nil {
			c.log().Warn("could not abort an unfinished upload of an earlier stage", "region", r.Name, "key", e.Key, "err", err)
			continue
		}
		if n > 0 {
			c.log().Info("aborted unfinished uploads of an earlier stage", "region", r.Name, "key", e.Key, "count", n)
		}
		c.journalRemove(ctx, &e)
	}
}

func (c *Client) journalAdd(ctx context.Context, r Region, key string) *JournalEntry {
	if _, ok := r.Store.(store.Cleaner); !ok || c.Journal == nil {
		return nil
	}
	e := newEntry(r.Name, r.Store.String(), key)
	if err := c.Journal.Add(ctx, e); err != nil {
		c.log().Warn("could not record the upload in the journal", "err", err)
		return nil
	}
	return &e
}

func (c *Client) journalRemove(ctx context.Context, e *JournalEntry) {
	if e == nil {
		return
	}
	if err := c.Journal.Remove(ctx, *e); err != nil {
		c.log().Warn("could not update the upload journal", "err", err)
	}
}

func (c *Client) journalEnded(ctx context.Context, e *JournalEntry) {
	if e == nil {
		return
	}
	e.Ended = true
	if err := c.Journal.Add(context.WithoutCancel(ctx), *e); err != nil {
		c.log().Warn("could not update the upload journal", "err", err)
	}
}
