package artifact_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/filestore"
)

func newRegion(t *testing.T, name string) artifact.Region {
	t.Helper()
	s, err := filestore.New(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return artifact.Region{Name: name, Store: s, Pointer: pointer.InStore{Store: s}}
}

func newClient(t *testing.T, names ...string) *artifact.Client {
	c := &artifact.Client{Identity: "test"}
	for _, n := range names {
		c.Regions = append(c.Regions, newRegion(t, n))
	}
	return c
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.tar.gz")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestStageDownloadRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "eu-west-1", "us-east-1", "ap-southeast-2")
	data := random(3<<20 + 17)
	res, err := c.Stage(ctx, "app", "1.2.3", writeFile(t, data), artifact.StageOptions{Metadata: map[string]string{"commit": "abc"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Regions {
		if r.Status != artifact.StatusStaged || !r.LatestMoved {
			t.Errorf("region %s: %+v", r.Region, r)
		}
	}
	dir := t.TempDir()
	dl, err := c.Download(ctx, "app", "latest", artifact.DownloadOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if dl.Version != "1.2.3" || dl.Region != "eu-west-1" || dl.Path != filepath.Join(dir, "app.tar.gz") {
		t.Fatalf("download = %+v", dl)
	}
	got, _ := os.ReadFile(dl.Path)
	if !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ")
	}
	info, err := c.Info(ctx, "app", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if info.Metadata["commit"] != "abc" || info.Size != int64(len(data)) || info.Latest != "1.2.3" || len(info.Regions) != 3 || !info.Regions[2].Present {
		t.Fatalf("info = %+v", info)
	}
	// Re-running the same stage is a success that writes nothing new.
	res, err = c.Stage(ctx, "app", "1.2.3", writeFile(t, data), artifact.StageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Regions {
		if r.Status != artifact.StatusPresent {
			t.Errorf("re-stage region %s: %+v", r.Region, r)
		}
	}
}

func TestStageConflict(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a", "b")
	if _, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, []byte("one")), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, []byte("two")), artifact.StageOptions{})
	if !errors.Is(err, artifact.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	out := filepath.Join(t.TempDir(), "x")
	if _, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: out}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "one" {
		t.Fatalf("conflicting stage changed the stored bytes: %q", got)
	}
}

// A region that missed a stage gets it on the re-run, and a conflict
// anywhere stops commits everywhere.
func TestStageCompletesPartial(t *testing.T) {
	ctx := context.Background()
	a, b := newRegion(t, "a"), newRegion(t, "b")
	only := &artifact.Client{Regions: []artifact.Region{a}}
	both := &artifact.Client{Regions: []artifact.Region{a, b}}
	if _, err := only.Stage(ctx, "app", "1.0.0", writeFile(t, []byte("v1")), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := both.Stage(ctx, "app", "1.0.0", writeFile(t, []byte("other")), artifact.StageOptions{}); !errors.Is(err, artifact.ErrConflict) {
		t.Fatalf("err = %v, want conflict", err)
	}
	if ok, _ := (&artifact.Client{Regions: []artifact.Region{b}}).Exists(ctx, "app", "1.0.0"); ok {
		t.Fatal("a conflicting stage committed region b")
	}
	res, err := both.Stage(ctx, "app", "1.0.0", writeFile(t, []byte("v1")), artifact.StageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Regions[0].Status != artifact.StatusPresent || res.Regions[1].Status != artifact.StatusStaged {
		t.Fatalf("regions = %+v", res.Regions)
	}
}

func TestLatestOnlyMovesForward(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a")
	for _, v := range []string{"1.0.0", "2.0.0", "1.5.0", "2.0.0-rc.1"} {
		if _, err := c.Stage(ctx, "app", v, writeFile(t, []byte(v)), artifact.StageOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	info, err := c.Info(ctx, "app", "latest")
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != "2.0.0" {
		t.Fatalf("latest = %s, want 2.0.0", info.Version)
	}
	if _, err := c.Stage(ctx, "app", "1.6.0", writeFile(t, []byte("x")), artifact.StageOptions{ForceLatest: true}); err != nil {
		t.Fatal(err)
	}
	if info, _ := c.Info(ctx, "app", ""); info.Version != "1.6.0" {
		t.Fatalf("forced latest = %s, want 1.6.0", info.Version)
	}
	vs, err := c.Versions(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vs {
		names = append(names, v.Version)
	}
	if strings.Join(names, " ") != "1.0.0 1.5.0 1.6.0 2.0.0-rc.1 2.0.0" {
		t.Fatalf("versions = %v", names)
	}
}

func TestConcurrentStagersOneWins(t *testing.T) {
	raceStagers(t, newClient(t, "a", "b"), 64<<10)
}

// raceStagers stages ten different files as one version at once and checks
// that exactly one stager wins and every region holds the winner's bytes.
func raceStagers(t *testing.T, c *artifact.Client, size int) {
	t.Helper()
	ctx := context.Background()
	const n = 10
	files := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		files[i] = random(size)
		p := writeFile(t, files[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Stage(ctx, "app", "3.0.0", p, artifact.StageOptions{})
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("stagers %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, artifact.ErrConflict):
			t.Fatalf("stager %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no stager won: %v", errs)
	}
	for _, r := range c.Regions {
		one := &artifact.Client{Regions: []artifact.Region{r}}
		out := filepath.Join(t.TempDir(), "out")
		if _, err := one.Download(ctx, "app", "3.0.0", artifact.DownloadOptions{Path: out}); err != nil {
			t.Fatalf("region %s: %v", r.Name, err)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, files[winner]) {
			t.Fatalf("region %s holds bytes that are not the winner's", r.Name)
		}
	}
}

// brokenStore answers every call with one error.
type brokenStore struct {
	store.Store
	err error
}

func (b brokenStore) Get(context.Context, string, store.Range) (io.ReadCloser, store.Info, error) {
	return nil, store.Info{}, b.err
}
func (b brokenStore) Stat(context.Context, string) (store.Info, error) { return store.Info{}, b.err }
func (b brokenStore) List(context.Context, string) ([]store.Info, error) {
	return nil, b.err
}

func TestDownloadFailover(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a", "b", "c")
	data := random(100 << 10)
	if _, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	// Region a is down, region b holds a corrupted copy.
	down := fmt.Errorf("connection refused: %w", store.ErrUnavailable)
	c.Regions[0].Store = brokenStore{c.Regions[0].Store, down}
	c.Regions[0].Pointer = pointer.InStore{Store: c.Regions[0].Store}
	corrupt(t, c.Regions[1].Store, "app", "1.0.0")

	out := filepath.Join(t.TempDir(), "out")
	res, err := c.Download(ctx, "app", "latest", artifact.DownloadOptions{Path: out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Region != "c" || len(res.Failures) != 2 || !strings.Contains(res.Failures[1].Error, "sha256") {
		t.Fatalf("result = %+v", res)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	// No temporary files are left beside the target.
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Fatalf("files beside the download: %v", entries)
	}
}

func corrupt(t *testing.T, s store.Store, project, version string) {
	t.Helper()
	objs, err := s.List(context.Background(), project+"/"+version+"/data/")
	if err != nil || len(objs) != 1 {
		t.Fatalf("data objects: %v %v", objs, err)
	}
	data := random(int(objs[0].Size))
	if _, err := s.Put(context.Background(), objs[0].Key, bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestNotFoundDiffersFromUnavailable(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a", "b")
	out := filepath.Join(t.TempDir(), "out")
	_, err := c.Download(ctx, "app", "9.9.9", artifact.DownloadOptions{Path: out})
	if !errors.Is(err, artifact.ErrVersionNotFound) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("missing everywhere: err = %v", err)
	}
	down := fmt.Errorf("dial: %w", store.ErrUnavailable)
	c.Regions[1].Store = brokenStore{c.Regions[1].Store, down}
	_, err = c.Download(ctx, "app", "9.9.9", artifact.DownloadOptions{Path: out})
	if errors.Is(err, artifact.ErrVersionNotFound) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("missing in one, other down: err = %v", err)
	}
	if !strings.Contains(err.Error(), "region b") {
		t.Fatalf("error does not name the region: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a failed download created the target")
	}
	ok, err := c.Exists(ctx, "app", "9.9.9")
	if ok || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("exists with a region down: %v %v", ok, err)
	}
}

func TestVerifyRepair(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a", "b", "c")
	data := random(200 << 10)
	if _, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, "app", "1.0.0", false); err != nil {
		t.Fatalf("verify of a healthy version: %v", err)
	}
	corrupt(t, c.Regions[1].Store, "app", "1.0.0")
	c.Regions[2].Store.Delete(ctx, "app/1.0.0/manifest.json")

	res, err := c.Verify(ctx, "app", "1.0.0", false)
	if !errors.Is(err, artifact.ErrVerifyFailed) {
		t.Fatalf("err = %v, want ErrVerifyFailed", err)
	}
	if res.Regions[1].Status != artifact.VerifyCorrupt || res.Regions[2].Status != artifact.VerifyMissing {
		t.Fatalf("regions = %+v", res.Regions)
	}
	res, err = c.Verify(ctx, "app", "1.0.0", true)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	// Region c kept the data object of the first stage; its new manifest
	// points at the repaired copy, so the old one is an orphan.
	if len(res.Regions[2].Orphans) != 1 || len(res.Regions[0].Orphans) != 0 {
		t.Fatalf("orphans = %v / %v", res.Regions[0].Orphans, res.Regions[2].Orphans)
	}
	if !res.Regions[1].Repaired || !res.Regions[2].Repaired {
		t.Fatalf("regions = %+v", res.Regions)
	}
	if _, err := c.Verify(ctx, "app", "1.0.0", false); err != nil {
		t.Fatalf("verify after repair: %v", err)
	}
}

func TestInvalidInputWritesNothing(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a")
	file := writeFile(t, []byte("x"))
	cases := []struct {
		project, version string
		opts             artifact.StageOptions
	}{
		{"App", "1.0.0", artifact.StageOptions{}},
		{"app", "v1.0.0", artifact.StageOptions{}},
		{"app", "latest", artifact.StageOptions{}},
		{"app", "1.0", artifact.StageOptions{}},
		{"app", "1.0.0", artifact.StageOptions{Metadata: map[string]string{"berth:x": "y"}}},
		{"app", "1.0.0", artifact.StageOptions{Metadata: map[string]string{"k": "a\nb"}}},
		{"app", "1.0.0", artifact.StageOptions{Filename: "../x"}},
	}
	for _, tc := range cases {
		_, err := c.Stage(ctx, tc.project, tc.version, file, tc.opts)
		if !errors.Is(err, artifact.ErrInvalid) {
			t.Errorf("stage %q %q %+v: err = %v, want ErrInvalid", tc.project, tc.version, tc.opts, err)
		}
	}
	if _, err := c.Stage(ctx, "app", "1.0.0", filepath.Join(t.TempDir(), "missing"), artifact.StageOptions{}); !errors.Is(err, artifact.ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}
	objs, _ := c.Regions[0].Store.List(ctx, "")
	if len(objs) != 0 {
		t.Fatalf("invalid input wrote %v", objs)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "a")
	res, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, []byte("x")), artifact.StageOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Regions[0].Status != artifact.StatusWouldAdd {
		t.Fatalf("dry run = %+v", res.Regions)
	}
	objs, _ := c.Regions[0].Store.List(ctx, "")
	if len(objs) != 0 {
		t.Fatalf("dry run wrote %v", objs)
	}
}
