package s3store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3store"
	"github.com/berth-dev/berth/store/storetest"
)

const mib = 1 << 20

var bucketSeq atomic.Int64

// newBucket creates a fresh bucket on m and returns its name.
func newBucket(t testing.TB, m *testenv.MinIO) string {
	name := fmt.Sprintf("test-%d", bucketSeq.Add(1))
	m.CreateBucket(t, name)
	return name
}

// fewRetries keeps tests against a dead server fast.
func fewRetries(o *s3.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = 2
		so.MaxBackoff = 10 * time.Millisecond
	})
}

func TestConformance(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	client := m.S3Client(t)
	// Through this proxy a missing key is 403 AccessDenied, as S3 answers
	// callers who may not list the whole bucket.
	proxy := testenv.StartDenyingProxy(t, m.Endpoint)
	denied := m.S3Client(t, func(o *s3.Options) { o.BaseEndpoint = aws.String(proxy.Endpoint) })
	for _, tc := range []struct {
		name   string
		client *s3.Client
		prefix string
		opts   s3store.Options
	}{
		{"Plain", client, "", s3store.Options{}},
		{"Prefix", client, "releases/v1", s3store.Options{}},
		// Every Put of more than a byte goes through the multipart path,
		// so its preconditions face the whole suite too.
		{"Multipart", client, "mp", s3store.Options{MultipartThreshold: 1}},
		{"Denied", denied, "releases/v1", s3store.Options{}},
		{"DeniedMultipart", denied, "mp", s3store.Options{MultipartThreshold: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				return s3store.New(tc.client, newBucket(t, m), tc.prefix, tc.opts)
			})
		})
	}
	if proxy.Refused() == 0 {
		t.Error("the proxy refused nothing: the Denied runs did not see S3's 403")
	}
}

func TestPrefixIsolation(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	client := m.S3Client(t)
	bucket := newBucket(t, m)
	a := s3store.New(client, bucket, "/a/", s3store.Options{})
	b := s3store.New(client, bucket, "b", s3store.Options{})
	if a.String() != "s3://"+bucket+"/a" {
		t.Errorf("String() = %q", a.String())
	}
	ctx := context.Background()
	if _, err := a.Put(ctx, "k", strings.NewReader("x"), 1, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other prefix sees the key: %v", err)
	}
	out, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/k")})
	if err != nil || aws.ToInt64(out.ContentLength) != 1 {
		t.Fatalf("object not at a/k: %v", err)
	}
}

func TestMultipartRoundTrip(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	client := m.S3Client(t)
	bucket := newBucket(t, m)
	s := s3store.New(client, bucket, "rel", s3store.Options{PartSize: 5 * mib, Concurrency: 3})
	ctx := context.Background()
	data := storetest.Random(t, 23*mib+123)

	for _, size := range []int64{int64(len(data)), -1} {
		key := fmt.Sprintf("size%d/app.tar.gz", size)
		// onlyReader hides bytes.Reader's Seek and WriterTo.
		info, err := s.Put(ctx, key, onlyReader{bytes.NewReader(data)}, size, store.PutOptions{IfNoneMatch: true})
		if err != nil {
			t.Fatalf("put size %d: %v", size, err)
		}
		if info.Size != int64(len(data)) || !strings.HasSuffix(info.ETag, "-5") {
			t.Fatalf("put info %+v, want size %d and a 5-part ETag", info, len(data))
		}
		st, err := s.Stat(ctx, key)
		if err != nil || st.ETag != info.ETag || st.Size != info.Size {
			t.Fatalf("stat = %+v, %v; want %+v", st, err, info)
		}
		if got := readAll(t, s, key, store.Range{}); !bytes.Equal(got, data) {
			t.Fatal("parallel get returned other bytes")
		}
		assertNoUploads(t, client, bucket, "rel/"+key)
	}

	// A peer client reads the same bytes.
	cli := testenv.AWSCLI(t)
	dst := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(cli, "s3", "cp", "--endpoint-url", m.Endpoint,
		fmt.Sprintf("s3://%s/rel/size%d/app.tar.gz", bucket, len(data)), dst)
	cmd.Env = append(os.Environ(), m.AWSEnv()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aws s3 cp: %v\n%s", err, out)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("aws s3 cp read other bytes than were put")
	}
}

func TestMultipartCreateOnly(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	client := m.S3Client(t)
	bucket := newBucket(t, m)
	s := s3store.New(client, bucket, "", s3store.Options{PartSize: 5 * mib, Concurrency: 2})
	ctx := context.Background()
	first := storetest.Random(t, 11*mib)
	orig, err := s.Put(ctx, "v1/app", bytes.NewReader(first), int64(len(first)), store.PutOptions{IfNoneMatch: true})
	if err != nil {
		t.Fatal(err)
	}

	second := storetest.Random(t, 11*mib)
	_, err = s.Put(ctx, "v1/app", bytes.NewReader(second), int64(len(second)), store.PutOptions{IfNoneMatch: true})
	if !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("create-only put over an existing key: %v, want ErrPreconditionFailed", err)
	}
	if got := readAll(t, s, "v1/app", store.Range{}); !bytes.Equal(got, first) {
		t.Fatal("create-only put replaced the object")
	}
	assertNoUploads(t, client, bucket, "v1/app")

	// The object appears while the parts are uploading: the check on
	// CompleteMultipartUpload must catch what the early check could not.
	var once sync.Once
	racer := &hookReader{r: bytes.NewReader(second), at: 6 * mib, hook: func() {
		once.Do(func() {
			_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("v2/app"), Body: strings.NewReader("winner")})
			if err != nil {
				t.Error(err)
			}
		})
	}}
	_, err = s.Put(ctx, "v2/app", racer, int64(len(second)), store.PutOptions{IfNoneMatch: true})
	if !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("create-only put that lost the race: %v, want ErrPreconditionFailed", err)
	}
	if got := readAll(t, s, "v2/app", store.Range{}); string(got) != "winner" {
		t.Fatalf("object replaced by the loser: %d bytes", len(got))
	}
	assertNoUploads(t, client, bucket, "v2/app")

	// Same for If-Match: the object changes during the upload.
	racer = &hookReader{r: bytes.NewReader(second), at: 6 * mib, hook: func() {
		if _, err := s.Put(ctx, "v1/app", strings.NewReader("changed"), 7, store.PutOptions{}); err != nil {
			t.Error(err)
		}
	}}
	_, err = s.Put(ctx, "v1/app", racer, int64(len(second)), store.PutOptions{IfMatch: orig.ETag})
	if !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("if-match put on a changed object: %v, want ErrPreconditionFailed", err)
	}
	if got := readAll(t, s, "v1/app", store.Range{}); string(got) != "changed" {
		t.Fatalf("stale if-match put replaced the object")
	}
	assertNoUploads(t, client, bucket, "v1/app")
}

func TestFailedPutLeavesNoUpload(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	client := m.S3Client(t)
	bucket := newBucket(t, m)
	s := s3store.New(client, bucket, "p", s3store.Options{PartSize: 5 * mib, Concurrency: 2})
	data := storetest.Random(t, 23*mib)

	cases := []struct {
		name string
		put  func(ctx context.Context, key string) error
		kind error
	}{
		{"ReaderFails", func(ctx context.Context, key string) error {
			r := io.MultiReader(bytes.NewReader(data[:12*mib]), errReader{})
			_, err := s.Put(ctx, key, r, int64(len(data)), store.PutOptions{})
			return err
		}, nil},
		{"ReaderShort", func(ctx context.Context, key string) error {
			_, err := s.Put(ctx, key, bytes.NewReader(data[:12*mib]), int64(len(data)), store.PutOptions{})
			return err
		}, store.ErrInvalid},
		{"ReaderLong", func(ctx context.Context, key string) error {
			_, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data))-1, store.PutOptions{})
			return err
		}, store.ErrInvalid},
		{"UnexpectedEOF", func(ctx context.Context, key string) error {
			// A cut-off download must not pass for a complete stream.
			r := io.MultiReader(bytes.NewReader(data[:12*mib]), errReader{io.ErrUnexpectedEOF})
			_, err := s.Put(ctx, key, r, -1, store.PutOptions{})
			return err
		}, nil},
		{"Cancelled", func(ctx context.Context, key string) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			r := &hookReader{r: bytes.NewReader(data), at: 12 * mib, hook: cancel}
			_, err := s.Put(ctx, key, r, -1, store.PutOptions{})
			return err
		}, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			key := "f/" + tc.name
			err := tc.put(ctx, key)
			if err == nil {
				t.Fatal("put succeeded")
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("err = %v, want kind %v", err, tc.kind)
			}
			if tc.kind == nil && store.KindOf(err) != nil {
				// The source failed, not this store.
				t.Errorf("reader failure reported as %v: %v", store.KindOf(err), err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("failed put left an object: %v", err)
			}
			assertNoUploads(t, client, bucket, "p/"+key)
		})
	}
}

func TestServerKilledDuringPut(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	bucket := newBucket(t, m)
	s := s3store.New(m.S3Client(t, fewRetries), bucket, "", s3store.Options{PartSize: 5 * mib, Concurrency: 2})
	ctx := context.Background()
	data := storetest.Random(t, 30*mib)

	r := &hookReader{r: bytes.NewReader(data), at: 16 * mib, hook: m.Kill}
	_, err := s.Put(ctx, "big", r, int64(len(data)), store.PutOptions{IfNoneMatch: true})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("put while the server died: %v, want ErrUnavailable", err)
	}
	t.Logf("put error: %v", err)

	m.Restart(t)
	if _, err := s.Stat(ctx, "big"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("interrupted put left an object: %v", err)
	}
	// The abort could not reach the dead server, so the upload is left.
	// A restarted MinIO finds it by its exact key only.
	n, err := s.AbortIncomplete(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("AbortIncomplete aborted %d uploads, want 1", n)
	}
	assertNoUploads(t, m.S3Client(t), bucket, "big")

	// And the same Put now goes through.
	if _, err := s.Put(ctx, "big", bytes.NewReader(data), int64(len(data)), store.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
}

func TestAbortIncomplete(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	client := m.S3Client(t)
	bucket := newBucket(t, m)
	s := s3store.New(client, bucket, "pre", s3store.Options{})
	ctx := context.Background()
	for _, key := range []string{"pre/a/k", "pre/a/k", "pre/a/l", "pre/b/x", "other/z"} {
		_, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.AbortIncompleteOlderThan(ctx, "", time.Hour); err != nil || n != 0 {
		t.Fatalf("AbortIncompleteOlderThan(1h) = %d, %v; want 0: all uploads are new", n, err)
	}
	for _, tc := range []struct {
		prefix string
		want   int
	}{
		{"a/", 3}, // a directory prefix, which MinIO does not filter by
		{"a/", 0},
		{"", 1}, // the rest under the store's prefix, not other/z
	} {
		if n, err := s.AbortIncomplete(ctx, tc.prefix); err != nil || n != tc.want {
			t.Fatalf("AbortIncomplete(%q) = %d, %v; want %d", tc.prefix, n, err, tc.want)
		}
	}
	for _, key := range []string{"pre/a/k", "pre/a/l", "pre/b/x"} {
		assertNoUploads(t, client, bucket, key)
	}
	out, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String("other/z")})
	if err != nil || len(out.Uploads) != 1 {
		t.Fatalf("upload outside the store's prefix: %v, %v", out, err)
	}
}

func TestParallelGet(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	client := m.S3Client(t)
	bucket := newBucket(t, m)
	ctx := context.Background()
	data := storetest.Random(t, 21*mib+7)
	s := s3store.New(client, bucket, "", s3store.Options{PartSize: 5 * mib, Concurrency: 3})
	if _, err := s.Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	rc, info, err := s.Get(ctx, "obj", store.Range{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.Key != "obj" || info.ETag == "" || info.Modified.IsZero() {
		t.Errorf("info = %+v", info)
	}
	// Small odd reads cross every chunk boundary at odd places.
	got, err := io.ReadAll(io.LimitReader(&smallReads{rc, 1000}, int64(len(data))+10))
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("parallel get: %d bytes, not the ones put", len(got))
	}

	// Ranges across a part boundary, and to the end.
	for _, rng := range []store.Range{{Offset: 5*mib - 3, Length: 10}, {Offset: 20 * mib}} {
		end := int64(len(data))
		if rng.Length > 0 {
			end = rng.Offset + rng.Length
		}
		if got := readAll(t, s, "obj", rng); !bytes.Equal(got, data[rng.Offset:end]) {
			t.Errorf("range %+v: wrong bytes", rng)
		}
	}

	// Closing early stops the workers; Close waits for them.
	for range 5 {
		rc, _, err := s.Get(ctx, "obj", store.Range{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Read(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		if _, err := rc.Read(make([]byte, 1)); err == nil {
			t.Fatal("read after close succeeded")
		}
	}
}

func TestGetObjectReplacedWhileReading(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	bucket := newBucket(t, m)
	ctx := context.Background()
	s := s3store.New(m.S3Client(t), bucket, "", s3store.Options{PartSize: 5 * mib, Concurrency: 1})
	data := storetest.Random(t, 20*mib)
	if _, err := s.Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(ctx, "obj", store.Range{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	other := storetest.Random(t, 20*mib)
	if _, err := s.Put(ctx, "obj", bytes.NewReader(other), int64(len(other)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	if !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("reading a replaced object: %v, want ErrPreconditionFailed", err)
	}
}

func TestEmptyObject(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	s := s3store.New(m.S3Client(t), newBucket(t, m), "", s3store.Options{})
	ctx := context.Background()
	for _, size := range []int64{0, -1} {
		if _, err := s.Put(ctx, "empty", strings.NewReader(""), size, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		rc, info, err := s.Get(ctx, "empty", store.Range{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || len(b) != 0 || info.Size != 0 {
			t.Fatalf("get empty: %d bytes, info %+v, %v", len(b), info, err)
		}
	}
}

func TestNotFound(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	client := m.S3Client(t)
	ctx := context.Background()
	s := s3store.New(client, newBucket(t, m), "", s3store.Options{})
	if _, _, err := s.Get(ctx, "missing", store.Range{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get missing key: %v", err)
	}
	if _, _, err := s.Get(ctx, "missing", store.Range{Offset: 5}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get range of missing key: %v", err)
	}

	nb := s3store.New(client, "no-such-bucket", "", s3store.Options{})
	_, _, err := nb.Get(ctx, "k", store.Range{})
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "bucket no-such-bucket does not exist") {
		t.Errorf("get from missing bucket: %v", err)
	}
	if err := nb.Delete(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete in missing bucket: %v, want an error", err)
	}
	if _, err := nb.List(ctx, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("list of missing bucket: %v", err)
	}
}

func TestServerDown(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	s := s3store.New(m.S3Client(t, fewRetries), newBucket(t, m), "", s3store.Options{})
	m.Kill()
	start := time.Now()
	checkKind(t, s, store.ErrUnavailable)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("calls to a dead server took %v", d)
	}
}

func TestWrongCredentials(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	bucket := newBucket(t, m)
	const secret = "wrong-secret-do-not-print"
	client := m.S3Client(t, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(m.AccessKey, secret, "")
	})
	s := s3store.New(client, bucket, "", s3store.Options{})
	for _, err := range checkKind(t, s, store.ErrPermissionDenied) {
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), m.SecretKey) {
			t.Errorf("error message contains a secret: %v", err)
		}
	}
	unknown := m.S3Client(t, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider("nobody", secret, "")
	})
	if _, err := s3store.New(unknown, bucket, "", s3store.Options{}).List(context.Background(), ""); !errors.Is(err, store.ErrPermissionDenied) {
		t.Errorf("unknown access key: %v", err)
	}
}

// checkKind runs every operation and wants kind from each.
func checkKind(t *testing.T, s *s3store.Store, kind error) []error {
	t.Helper()
	ctx := context.Background()
	var errs []error
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, kind) || errors.Is(err, store.ErrNotFound) && kind != store.ErrNotFound {
			t.Errorf("%s: %v, want %v", op, err, kind)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, _, err := s.Get(ctx, "k", store.Range{})
	check("get", err)
	_, err = s.Stat(ctx, "k")
	check("stat", err)
	_, err = s.Put(ctx, "k", strings.NewReader("x"), 1, store.PutOptions{})
	check("put", err)
	big := storetest.Random(t, 6*mib)
	_, err = s.Put(ctx, "k", bytes.NewReader(big), int64(len(big)), store.PutOptions{})
	check("multipart put", err)
	_, err = s.List(ctx, "")
	check("list", err)
	check("delete", s.Delete(ctx, "k"))
	_, err = s.AbortIncomplete(ctx, "k")
	check("abort incomplete", err)
	return errs
}

// TestLargeStreamMemory puts and gets an object many times the part size
// and checks that the heap does not grow with it. BERTH_HUGE_TESTS=1 makes
// the object 5 GiB.
func TestLargeStreamMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 200 MiB")
	}
	size := int64(200 * mib)
	if os.Getenv("BERTH_HUGE_TESTS") == "1" {
		size = 5<<30 + 1
	}
	m := testenv.StartMinIO(t, "eu-west-1")
	s := s3store.New(m.S3Client(t), newBucket(t, m), "", s3store.Options{PartSize: 5 * mib, Concurrency: 2})
	ctx := context.Background()
	// Part buffers, plus what the SDK and HTTP stack hold.
	const limit = (2+1)*5*mib + 24*mib

	peak := watchHeap(t)
	want := sha256.New()
	info, err := s.Put(ctx, "big", io.TeeReader(io.LimitReader(newPRNG(1), size), want), size, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != size {
		t.Fatalf("size %d", info.Size)
	}
	rc, _, err := s.Get(ctx, "big", store.Range{})
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	if _, err := io.Copy(got, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("bytes read back differ")
	}
	if p := peak(); p > limit {
		t.Errorf("heap grew by %d MiB moving %d MiB, want at most %d MiB", p/mib, size/mib, int64(limit)/mib)
	} else {
		t.Logf("heap grew by at most %d MiB", p/mib)
	}
}

// watchHeap samples the heap until the returned function is called, which
// reports the largest growth seen.
func watchHeap(t *testing.T) func() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
			}
		}
	}()
	var once sync.Once
	stop := func() uint64 {
		once.Do(func() { close(done); <-stopped })
		return peak.Load()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// newPRNG is a fast reader of pseudo-random bytes.
type prng struct{ r *rand.ChaCha8 }

func newPRNG(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return &prng{rand.NewChaCha8(s)}
}

func (p *prng) Read(b []byte) (int, error) { return p.r.Read(b) }

func readAll(t *testing.T, s *s3store.Store, key string, rng store.Range) []byte {
	t.Helper()
	rc, _, err := s.Get(context.Background(), key, rng)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func assertNoUploads(t *testing.T, client *s3.Client, bucket, key string) {
	t.Helper()
	out, err := client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket),
		Prefix: aws.String(key),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 0 {
		t.Fatalf("%d incomplete uploads left under %s", len(out.Uploads), key)
	}
}

type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return 0, errors.New("disk on fire")
}

// hookReader calls hook once at least `at` bytes have been read.
type hookReader struct {
	r    io.Reader
	at   int64
	n    int64
	hook func()
	done bool
}

func (h *hookReader) Read(p []byte) (int, error) {
	if !h.done && h.n >= h.at {
		h.done = true
		h.hook()
	}
	n, err := h.r.Read(p)
	h.n += int64(n)
	return n, err
}

// smallReads caps every Read at n bytes.
type smallReads struct {
	r io.Reader
	n int
}

func (s *smallReads) Read(p []byte) (int, error) {
	if len(p) > s.n {
		p = p[:s.n]
	}
	return s.r.Read(p)
}
