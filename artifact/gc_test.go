package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/store"
)

// noDeleteStore refuses deletes, as S3 does to a writer holding berth's
// artifact-write policy: a stager that loses a race then leaves its data
// object behind for gc.
type noDeleteStore struct{ store.Store }

func (noDeleteStore) Delete(ctx context.Context, key string) error {
	return fmt.Errorf("delete %s: %w", key, store.ErrPermissionDenied)
}

// writerOf is c as a writer that may not delete.
func writerOf(c *artifact.Client) *artifact.Client {
	w := &artifact.Client{Identity: "writer"}
	for _, r := range c.Regions {
		w.Regions = append(w.Regions, artifact.Region{Name: r.Name, Store: noDeleteStore{r.Store}, Pointer: r.Pointer})
	}
	return w
}

// loseRace stages two different files as one version at once: one wins,
// the loser's data object stays. It returns the winner's bytes.
func loseRace(t *testing.T, c *artifact.Client, version string) []byte {
	t.Helper()
	w := writerOf(c)
	files := [][]byte{random(64 << 10), random(64 << 10)}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range files {
		p := writeFile(t, files[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.Stage(context.Background(), "app", version, p, artifact.StageOptions{})
		}()
	}
	wg.Wait()
	switch {
	case errs[0] == nil && errors.Is(errs[1], artifact.ErrConflict):
		return files[0]
	case errs[1] == nil && errors.Is(errs[0], artifact.ErrConflict):
		return files[1]
	}
	t.Fatalf("want one winner and one conflict: %v", errs)
	return nil
}

// storeKeys lists every key of every region, with its size.
func storeKeys(t *testing.T, c *artifact.Client) []string {
	t.Helper()
	var out []string
	for _, r := range c.Regions {
		objs, err := r.Store.List(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			out = append(out, fmt.Sprintf("%s %s %d", r.Name, o.Key, o.Size))
		}
	}
	return out
}

func mustDownload(t *testing.T, c *artifact.Client, version string, want []byte) {
	t.Helper()
	for _, r := range c.Regions {
		one := &artifact.Client{Regions: []artifact.Region{r}}
		out := filepath.Join(t.TempDir(), "out")
		if _, err := one.Download(context.Background(), "app", version, artifact.DownloadOptions{Path: out}); err != nil {
			t.Fatalf("region %s: %s: %v", r.Name, version, err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
			t.Fatalf("region %s: %s holds other bytes", r.Name, version)
		}
	}
}

func later(d time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(d) }
}

// testGCOrphans: orphans of a lost race and of a failed stage are found
// once older than the grace period, a dry run changes nothing, --delete
// removes them and nothing a manifest points at.
func testGCOrphans(t *testing.T, c *artifact.Client) {
	ctx := context.Background()
	committed := random(32 << 10)
	if _, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, committed), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	winner := loseRace(t, c, "2.0.0")
	// A stage that failed before its manifest: data, no manifest.
	for _, r := range c.Regions {
		if _, err := r.Store.Put(ctx, "app/3.0.0/data/failed", strings.NewReader("half"), 4, store.PutOptions{IfNoneMatch: true}); err != nil {
			t.Fatal(err)
		}
	}
	before := storeKeys(t, c)

	// Young: within the grace period nothing is an orphan yet.
	res, err := c.GC(ctx, artifact.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Regions {
		if len(r.Orphans) != 0 {
			t.Fatalf("region %s: young orphans listed: %+v", r.Region, r.Orphans)
		}
	}
	// 23h later still young by the default grace of 24h.
	if res, err = c.GC(ctx, artifact.GCOptions{Delete: true, Now: later(23 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n := len(res.Regions[0].Orphans); n != 0 {
		t.Fatalf("%d orphans within the grace period", n)
	}
	if !slices.Equal(storeKeys(t, c), before) {
		t.Fatal("gc within the grace period changed the store")
	}

	// Dry run, past the grace period: listed, nothing changes.
	res, err = c.GC(ctx, artifact.GCOptions{Now: later(25 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Regions {
		var keys []string
		for _, o := range r.Orphans {
			if o.Removed {
				t.Fatalf("dry run says it removed %s", o.Key)
			}
			keys = append(keys, o.Key)
		}
		if len(keys) != 2 || !strings.HasPrefix(keys[0], "app/2.0.0/data/") || keys[1] != "app/3.0.0/data/failed" {
			t.Fatalf("region %s: orphans %v, want the race loser's and the failed stage's", r.Region, keys)
		}
		if r.OrphanBytes != 64<<10+4 || r.FreedBytes != 0 {
			t.Fatalf("region %s: orphan bytes %d, freed %d", r.Region, r.OrphanBytes, r.FreedBytes)
		}
	}
	if !slices.Equal(storeKeys(t, c), before) {
		t.Fatal("dry run changed the store")
	}

	res, err = c.GC(ctx, artifact.GCOptions{Delete: true, Now: later(25 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Regions {
		if len(r.Orphans) != 2 || !r.Orphans[0].Removed || !r.Orphans[1].Removed || r.FreedBytes != 64<<10+4 {
			t.Fatalf("region %s: %+v", r.Region, r)
		}
	}
	after := storeKeys(t, c)
	if len(after) != len(before)-2*len(c.Regions) {
		t.Fatalf("store after gc:\n%s\nbefore:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	mustDownload(t, c, "1.0.0", committed)
	mustDownload(t, c, "2.0.0", winner)
	if _, err := c.Verify(ctx, "app", "2.0.0", false); err != nil {
		t.Fatal(err)
	}
	// Nothing left to find.
	if res, err = c.GC(ctx, artifact.GCOptions{Delete: true, Now: later(25 * time.Hour)}); err != nil || len(res.Regions[0].Orphans) != 0 {
		t.Fatalf("second run: %+v %v", res, err)
	}
}

func TestGCOrphansFileStore(t *testing.T) { testGCOrphans(t, newClient(t, "a", "b")) }

// commitOnList holds back a staged version's manifest and writes it right
// after the first full listing returns: a stage that commits while gc runs,
// between gc's listing and its deletes.
type commitOnList struct {
	store.Store
	manifestKey string
	manifest    []byte
	once        sync.Once
}

func (s *commitOnList) List(ctx context.Context, prefix string) ([]store.Info, error) {
	objs, err := s.Store.List(ctx, prefix)
	if prefix == "" {
		s.once.Do(func() {
			if _, err := s.Store.Put(ctx, s.manifestKey, bytes.NewReader(s.manifest), int64(len(s.manifest)), store.PutOptions{IfNoneMatch: true}); err != nil {
				panic(err)
			}
		})
	}
	return objs, err
}

func testGCStageCommitsDuringRun(t *testing.T, c *artifact.Client) {
	ctx := context.Background()
	data := random(48 << 10)
	if _, err := c.Stage(ctx, "app", "4.0.0", writeFile(t, data), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	gc := &artifact.Client{}
	for _, r := range c.Regions {
		const key = "app/4.0.0/manifest.json"
		rc, _, err := r.Store.Get(ctx, key, store.Range{})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(rc)
		rc.Close()
		// Back to the moment before the stage's commit: data, no manifest.
		if err := r.Store.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		gc.Regions = append(gc.Regions, artifact.Region{Name: r.Name, Store: &commitOnList{Store: r.Store, manifestKey: key, manifest: m}})
	}
	res, err := gc.GC(ctx, artifact.GCOptions{Delete: true, Now: later(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Regions {
		if len(r.Orphans) != 0 || len(r.Kept) != 1 || !strings.HasPrefix(r.Kept[0], "app/4.0.0/data/") {
			t.Fatalf("region %s: orphans %+v, kept %v; want the committed data kept", r.Region, r.Orphans, r.Kept)
		}
	}
	mustDownload(t, c, "4.0.0", data)
}

func TestGCStageCommitsDuringRunFileStore(t *testing.T) {
	testGCStageCommitsDuringRun(t, newClient(t, "a", "b"))
}

func TestGCTempFiles(t *testing.T) {
	ctx := context.Background()
	c := stagedClient(t, random(1<<10), "a")
	dir := strings.TrimPrefix(c.Regions[0].Store.String(), "file://")
	old := filepath.Join(dir, "app", "1.0.0", ".berth-tmp-killed")
	fresh := filepath.Join(dir, "app", ".berth-tmp-writing")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-artifact.DefaultGCGrace - time.Hour)
	os.Chtimes(old, then, then)

	res, err := c.GC(ctx, artifact.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Regions[0].TempFiles; len(got) != 1 || got[0].Key != "app/1.0.0/.berth-tmp-killed" || got[0].Removed || res.Regions[0].TempBytes != 7 {
		t.Fatalf("dry run: temp files %+v, want only the old one", got)
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatal("dry run removed a temporary file")
	}
	if res, err = c.GC(ctx, artifact.GCOptions{Delete: true}); err != nil {
		t.Fatal(err)
	}
	if got := res.Regions[0]; len(got.TempFiles) != 1 || !got.TempFiles[0].Removed || got.FreedBytes != 7 {
		t.Fatalf("delete: %+v", got)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old temporary file still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal("gc removed a temporary file within the grace period")
	}
	// The injected clock moves the temporary files' grace period too.
	if res, err = c.GC(ctx, artifact.GCOptions{Delete: true, Now: later(25 * time.Hour)}); err != nil || len(res.Regions[0].TempFiles) != 1 {
		t.Fatalf("a day later: %+v %v", res, err)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file past the grace period by the clock still there: %v", err)
	}
}

func TestGCRefusesShortGrace(t *testing.T) {
	c := stagedClient(t, random(1<<10), "a")
	if _, err := c.GC(context.Background(), artifact.GCOptions{Grace: time.Minute, Delete: true}); !errors.Is(err, artifact.ErrInvalid) {
		t.Fatalf("err = %v, want invalid", err)
	}
}

// A manifest gc cannot read keeps its version's data: gc cannot tell
// which object it points at.
func TestGCKeepsDataOfUnreadableManifest(t *testing.T) {
	ctx := context.Background()
	c := stagedClient(t, random(1<<10), "a")
	s := c.Regions[0].Store
	if err := s.Delete(ctx, "app/1.0.0/manifest.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "app/1.0.0/manifest.json", strings.NewReader("{not json"), -1, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	before := storeKeys(t, c)
	res, err := c.GC(ctx, artifact.GCOptions{Delete: true, Now: later(48 * time.Hour)})
	if !errors.Is(err, artifact.ErrCorrupt) || len(res.Regions[0].Orphans) != 0 {
		t.Fatalf("err = %v, orphans %+v; want the version skipped as corrupt", err, res.Regions[0].Orphans)
	}
	if !slices.Equal(storeKeys(t, c), before) {
		t.Fatal("gc deleted data of a version whose manifest it could not read")
	}
}

func TestGCOrphansMinIO(t *testing.T) { testGCOrphans(t, startRegions(t, 2).client) }

func TestGCStageCommitsDuringRunMinIO(t *testing.T) {
	testGCStageCommitsDuringRun(t, startRegions(t, 2).client)
}

// Incomplete uploads are aborted only past their age, and found by the
// journal's exact keys after MinIO forgot its listing cache on restart.
func TestGCAbortsOldUploadsMinIO(t *testing.T) {
	ctx := context.Background()
	r := startRegions(t, 1)
	m := r.servers[0]
	c := r.client
	c.Journal = artifact.FileJournal{Path: filepath.Join(t.TempDir(), "uploads.json")}
	const key = "app/5.0.0/data/killed"
	if _, err := m.S3Client(t).CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("releases/" + key)}); err != nil {
		t.Fatal(err)
	}
	e := artifact.JournalEntry{Region: m.Region, Store: c.Regions[0].Store.String(), Key: key, Started: time.Now(), Ended: true}
	if err := c.Journal.Add(ctx, e); err != nil {
		t.Fatal(err)
	}
	m.Restart(t)
	// Begun since the restart, so MinIO lists it under the prefix; in no journal.
	const cached = "app/6.0.0/data/cached"
	if _, err := m.S3Client(t).CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("releases/" + cached)}); err != nil {
		t.Fatal(err)
	}

	// A dry run and young uploads abort nothing.
	for _, opts := range []artifact.GCOptions{{UploadAge: time.Nanosecond}, {Delete: true}} {
		res, err := c.GC(ctx, opts)
		if err != nil || res.Regions[0].UploadsAborted != 0 {
			t.Fatalf("%+v: %+v %v", opts, res, err)
		}
		for _, k := range []string{key, cached} {
			if n := incompleteUploads(t, m, "releases/"+k); n != 1 {
				t.Fatalf("%+v: %d uploads of %s left, want 1", opts, n, k)
			}
		}
	}
	res, err := c.GC(ctx, artifact.GCOptions{Delete: true, UploadAge: time.Nanosecond})
	if err != nil || res.Regions[0].UploadsAborted != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	for _, k := range []string{key, cached} {
		if n := incompleteUploads(t, m, "releases/"+k); n != 0 {
			t.Fatalf("%d uploads of %s left after gc", n, k)
		}
	}
	if stale, _ := c.Journal.Stale(ctx, m.Region, c.Regions[0].Store.String()); len(stale) != 0 {
		t.Fatalf("journal still holds %v", stale)
	}
}

// A region that does not answer fails its part only: the others are
// collected and the error says which region and what kind.
func TestGCRegionDown(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a")
	if _, err := c.Regions[0].Store.Put(ctx, "app/1.0.0/data/failed", strings.NewReader("half"), 4, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Regions = append(c.Regions, artifact.Region{Name: "down", Store: brokenStore{Store: c.Regions[0].Store, err: store.ErrUnavailable}})
	res, err := c.GC(ctx, artifact.GCOptions{Delete: true, Now: later(48 * time.Hour)})
	var re *artifact.RegionError
	if !errors.Is(err, store.ErrUnavailable) || !errors.As(err, &re) || re.Region != "down" {
		t.Fatalf("err = %v, want region down unavailable", err)
	}
	if len(res.Regions) != 2 || len(res.Regions[0].Orphans) != 1 || !res.Regions[0].Orphans[0].Removed || res.Regions[1].Error == "" {
		t.Fatalf("regions: %+v", res.Regions)
	}
}
