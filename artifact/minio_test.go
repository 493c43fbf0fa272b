package artifact_test

// End-to-end and fault tests on real MinIO servers acting as regions.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/policy"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3store"
)

const bucket = "releases"

type minioRegions struct {
	servers []*testenv.MinIO
	client  *artifact.Client

	// Set by startPolicyRegions only.
	proxies []*testenv.DenyingProxy
	creds   map[policy.Kind][]aws.CredentialsProvider // one per region
}

// startRegions starts n MinIO servers and an artifact client over them with
// a small retry budget, so a dead region fails fast.
func startRegions(t *testing.T, n int) *minioRegions {
	t.Helper()
	servers := testenv.StartRegions(t, n)
	c := &artifact.Client{Identity: "test"}
	for _, m := range servers {
		m.CreateBucket(t, bucket)
		s3c := m.S3Client(t, func(o *s3.Options) {
			o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 2 })
		})
		s := s3store.New(s3c, bucket, "releases", s3store.Options{PartSize: s3store.MinPartSize, Concurrency: 3})
		c.Regions = append(c.Regions, artifact.Region{Name: m.Region, Store: s, Pointer: pointer.InStore{Store: s}})
	}
	return &minioRegions{servers: servers, client: c}
}

// startPolicyRegions is startRegions as berth runs on AWS: the client
// stages as an identity holding only berth's rendered artifact-write
// policy, and every request goes through a proxy that answers a missing
// key with 403 AccessDenied, as S3 does to callers who may list only under
// the prefix. The identities are MinIO sessions narrowed by the policies
// (creating users through the admin API costs seconds each).
func startPolicyRegions(t *testing.T, n int) *minioRegions {
	t.Helper()
	r := &minioRegions{servers: testenv.StartRegions(t, n), creds: map[policy.Kind][]aws.CredentialsProvider{}}
	for _, kind := range []policy.Kind{policy.KindArtifactWrite, policy.KindArtifactRead} {
		doc, err := policy.Render(kind, policy.Params{Bucket: bucket, Prefix: "releases", Partition: "aws"})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.servers {
			r.creds[kind] = append(r.creds[kind], m.SessionCredentials(t, doc.JSON()))
		}
	}
	for _, m := range r.servers {
		m.CreateBucket(t, bucket)
		r.proxies = append(r.proxies, testenv.StartDenyingProxy(t, m.Endpoint))
	}
	r.client = r.clientAs(t, r.creds[policy.KindArtifactWrite], "releases")
	return r
}

// clientAs is an artifact client over the proxies with the given
// credentials (one per region) and store prefix.
func (r *minioRegions) clientAs(t *testing.T, creds []aws.CredentialsProvider, prefix string) *artifact.Client {
	c := &artifact.Client{Identity: "test"}
	for i, m := range r.servers {
		s3c := m.S3Client(t, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(r.proxies[i].Endpoint)
			o.Credentials = creds[i]
			o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 2 })
		})
		s := s3store.New(s3c, bucket, prefix, s3store.Options{PartSize: s3store.MinPartSize, Concurrency: 3})
		c.Regions = append(c.Regions, artifact.Region{Name: m.Region, Store: s, Pointer: pointer.InStore{Store: s}})
	}
	return c
}

// refused sums what the proxies turned from 404 into 403.
func (r *minioRegions) refused() int64 {
	var n int64
	for _, p := range r.proxies {
		n += p.Refused()
	}
	return n
}

// eachAccess runs test with root credentials straight to MinIO, and as
// the writer identity with berth's policy through denying proxies.
func eachAccess(t *testing.T, test func(t *testing.T, start func(*testing.T, int) *minioRegions)) {
	t.Run("Root", func(t *testing.T) { test(t, startRegions) })
	t.Run("Policy", func(t *testing.T) {
		var started []*minioRegions
		test(t, func(t *testing.T, n int) *minioRegions {
			r := startPolicyRegions(t, n)
			started = append(started, r)
			return r
		})
		for _, r := range started {
			if r.refused() == 0 {
				t.Error("the proxies refused nothing: the test did not see S3's 403 for a missing key")
			}
		}
	})
}

// incompleteUploads counts the multipart uploads of key. MinIO lists
// uploads by exact key only, and forgets prefix listings on restart.
func incompleteUploads(t *testing.T, m *testenv.MinIO, key string) int {
	t.Helper()
	out, err := m.S3Client(t).ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("list multipart uploads on %s: %v", m.Region, err)
	}
	return len(out.Uploads)
}

func TestMinIOStageDownloadAndAWSCLI(t *testing.T) { eachAccess(t, testStageDownloadAndAWSCLI) }

func testStageDownloadAndAWSCLI(t *testing.T, startRegions func(*testing.T, int) *minioRegions) {
	ctx := context.Background()
	r := startRegions(t, 3)
	data := random(17<<20 + 123) // several multipart parts
	if _, err := r.client.Stage(ctx, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "app")
	res, err := r.client.Download(ctx, "app", "latest", artifact.DownloadOptions{Path: out, PreferRegion: r.servers[2].Region})
	if err != nil {
		t.Fatal(err)
	}
	if res.Region != r.servers[2].Region {
		t.Fatalf("downloaded from %s, want the preferred %s", res.Region, r.servers[2].Region)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ")
	}

	// A peer client reads what berth wrote.
	aws := testenv.AWSCLI(t)
	info, err := r.client.Info(ctx, "app", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range r.servers {
		peer := filepath.Join(t.TempDir(), "peer")
		cmd := exec.Command(aws, "s3", "cp", "--endpoint-url", m.Endpoint, "s3://"+bucket+"/releases/"+info.Object, peer)
		cmd.Env = append(os.Environ(), m.AWSEnv()...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("aws s3 cp from %s: %v\n%s", m.Region, err, b)
		}
		if got, _ := os.ReadFile(peer); !bytes.Equal(got, data) {
			t.Fatalf("aws s3 cp from %s: bytes differ", m.Region)
		}
	}
	if _, err := r.client.Verify(ctx, "app", "1.0.0", false); err != nil {
		t.Fatal(err)
	}
}

// killAt wraps progress so that region's server is killed once n bytes
// have gone to it.
type killBar struct {
	sent  *atomic.Int64
	limit int64
	kill  func()
	once  *sync.Once
}

func (k killBar) Add(n int) {
	if k.sent.Add(int64(n)) >= k.limit {
		k.once.Do(k.kill)
	}
}
func (killBar) Done(error) {}

func TestMinIORegionKilledMidStage(t *testing.T) { eachAccess(t, testRegionKilledMidStage) }

func testRegionKilledMidStage(t *testing.T, startRegions func(*testing.T, int) *minioRegions) {
	ctx := context.Background()
	r := startRegions(t, 3)
	victim := r.servers[1]
	data := random(40 << 20)
	file := writeFile(t, data)

	var sent atomic.Int64
	var once sync.Once
	r.client.Progress = func(region string, total int64) artifact.ProgressBar {
		if region != victim.Region {
			return nil
		}
		return killBar{sent: &sent, limit: 15 << 20, kill: victim.Kill, once: &once}
	}
	r.client.Progress = wrapNil(r.client.Progress)
	r.client.Journal = artifact.FileJournal{Path: filepath.Join(t.TempDir(), "uploads.json")}
	res, err := r.client.Stage(ctx, "app", "2.0.0", file, artifact.StageOptions{})
	if err == nil {
		t.Fatal("stage succeeded although a region died")
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("err = %v, want a region unavailable", err)
	}
	for i, rr := range res.Regions {
		want := artifact.StatusStaged
		if i == 1 {
			want = artifact.StatusFailed
		}
		if rr.Status != want {
			t.Fatalf("region %s: status %s, want %s (%s)", rr.Region, rr.Status, want, rr.Error)
		}
	}

	victim.Restart(t)
	r.client.Progress = nil
	stale, err := r.client.Journal.Stale(ctx, victim.Region, r.client.Regions[1].Store.String())
	if err != nil || len(stale) != 1 {
		t.Fatalf("journal holds %v, %v; want the killed region's upload", stale, err)
	}
	leftover := stale[0].Key
	if n := incompleteUploads(t, victim, "releases/"+leftover); n != 1 {
		t.Fatalf("%d incomplete uploads under %s after the kill, want 1", n, leftover)
	}
	one := &artifact.Client{Regions: r.client.Regions[1:2]}
	if ok, err := one.Exists(ctx, "app", "2.0.0"); ok || err != nil {
		t.Fatalf("killed region has a manifest: %v %v", ok, err)
	}

	res, err = r.client.Stage(ctx, "app", "2.0.0", file, artifact.StageOptions{})
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if res.Regions[1].Status != artifact.StatusStaged || res.Regions[0].Status != artifact.StatusPresent {
		t.Fatalf("re-run regions: %+v", res.Regions)
	}
	if n := incompleteUploads(t, victim, "releases/"+leftover); n != 0 {
		t.Fatalf("%d incomplete multipart uploads left on the killed region", n)
	}
	if stale, _ := r.client.Journal.Stale(ctx, victim.Region, r.client.Regions[1].Store.String()); len(stale) != 0 {
		t.Fatalf("journal still holds %v", stale)
	}
	if _, err := r.client.Verify(ctx, "app", "2.0.0", false); err != nil {
		t.Fatal(err)
	}
}

type nopBar struct{}

func (nopBar) Add(int)    {}
func (nopBar) Done(error) {}

func wrapNil(f func(string, int64) artifact.ProgressBar) func(string, int64) artifact.ProgressBar {
	return func(region string, total int64) artifact.ProgressBar {
		if b := f(region, total); b != nil {
			return b
		}
		return nopBar{}
	}
}

func TestMinIOConcurrentStagers(t *testing.T) {
	eachAccess(t, func(t *testing.T, startRegions func(*testing.T, int) *minioRegions) {
		raceStagers(t, startRegions(t, 3).client, 6<<20) // multipart: two parts each
	})
}

func TestMinIODownloadFailover(t *testing.T) { eachAccess(t, testDownloadFailover) }

func testDownloadFailover(t *testing.T, startRegions func(*testing.T, int) *minioRegions) {
	ctx := context.Background()
	r := startRegions(t, 3)
	data := random(7 << 20)
	if _, err := r.client.Stage(ctx, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := r.client.Info(ctx, "app", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}

	// Preferred region down.
	r.servers[0].Kill()
	out := filepath.Join(t.TempDir(), "a")
	res, err := r.client.Download(ctx, "app", "latest", artifact.DownloadOptions{Path: out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Region != r.servers[1].Region || len(res.Failures) != 1 || res.Failures[0].Region != r.servers[0].Region {
		t.Fatalf("down: result %+v", res)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}

	// Preferred region holds a corrupted copy.
	bad := random(len(data))
	if _, err := r.servers[1].S3Client(t).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("releases/" + info.Object), Body: bytes.NewReader(bad),
	}); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "b")
	res, err = r.client.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: out2, PreferRegion: r.servers[1].Region})
	if err != nil {
		t.Fatal(err)
	}
	if res.Region != r.servers[2].Region || !strings.Contains(res.Failures[0].Error, "sha256") {
		t.Fatalf("corrupt: result %+v", res)
	}
	if got, _ := os.ReadFile(out2); !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}

	// All regions unreachable: unavailable, not "not found".
	r.servers[1].Kill()
	r.servers[2].Kill()
	_, err = r.client.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: out2})
	if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, artifact.ErrVersionNotFound) {
		t.Fatalf("all down: err = %v", err)
	}
}

// TestMinIOMissingVersionWithPolicy: with berth's own policies, S3 answers
// every missing key with 403. A missing version must still be "not found"
// (exists says no, info and download say not found), and a refusal a
// listing confirms must still be "permission denied".
func TestMinIOMissingVersionWithPolicy(t *testing.T) {
	ctx := context.Background()
	r := startPolicyRegions(t, 2)
	reader := r.clientAs(t, r.creds[policy.KindArtifactRead], "releases")
	out := filepath.Join(t.TempDir(), "out")
	notFound := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, artifact.ErrVersionNotFound) || errors.Is(err, store.ErrPermissionDenied) {
			t.Errorf("%s: %v, want version not found and not permission denied", what, err)
		}
	}
	denied := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrPermissionDenied) || errors.Is(err, artifact.ErrVersionNotFound) {
			t.Errorf("%s: %v, want permission denied", what, err)
		}
	}
	missing := func(who string, c *artifact.Client) {
		t.Helper()
		if ok, err := c.Exists(ctx, "app", "2.0.0"); ok || err != nil {
			t.Errorf("%s: exists of a missing version = %v, %v; want false, nil", who, ok, err)
		}
		_, err := c.Info(ctx, "app", "2.0.0")
		notFound(who+": info", err)
		_, err = c.Download(ctx, "app", "2.0.0", artifact.DownloadOptions{Path: out})
		notFound(who+": download", err)
	}

	// Nothing staged yet: no manifest, no latest pointer.
	missing("writer", r.client)
	missing("reader", reader)
	_, err := reader.Download(ctx, "app", "latest", artifact.DownloadOptions{Path: out})
	notFound("download latest of a new project", err)
	if r.refused() == 0 {
		t.Fatal("the proxies refused nothing: the test did not see S3's 403")
	}

	// The writer stages a new version; the reader reads it; the other
	// version is still missing.
	data := random(6 << 20)
	if _, err := r.client.Stage(ctx, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{}); err != nil {
		t.Fatalf("stage of a new version: %v", err)
	}
	if ok, err := reader.Exists(ctx, "app", "1.0.0"); !ok || err != nil {
		t.Fatalf("exists after stage = %v, %v", ok, err)
	}
	if _, err := reader.Download(ctx, "app", "latest", artifact.DownloadOptions{Path: out}); err != nil {
		t.Fatalf("download latest: %v", err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("downloaded bytes differ")
	}
	missing("reader after a stage", reader)

	// Real refusals: the reader staging, keys outside the policy's prefix
	// (the listing is refused too), a wrong secret.
	_, err = reader.Stage(ctx, "app", "2.0.0", writeFile(t, data), artifact.StageOptions{})
	denied("reader stage", err)
	var wrong []aws.CredentialsProvider
	for _, m := range r.servers {
		wrong = append(wrong, credentials.NewStaticCredentialsProvider(m.AccessKey, "not-the-secret", ""))
	}
	for name, c := range map[string]*artifact.Client{
		"outside the prefix": r.clientAs(t, r.creds[policy.KindArtifactWrite], "elsewhere"),
		"wrong secret":       r.clientAs(t, wrong, "releases"),
	} {
		_, err := c.Exists(ctx, "app", "1.0.0")
		denied(name+": exists", err)
		_, err = c.Info(ctx, "app", "2.0.0")
		denied(name+": info", err)
		_, err = c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: out})
		denied(name+": download", err)
	}
}
