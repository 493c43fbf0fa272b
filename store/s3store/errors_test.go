package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/policy"
	"github.com/berth-dev/berth/store"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{context.DeadlineExceeded, store.ErrUnavailable},
		{context.Canceled, nil},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, store.ErrUnavailable},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), store.ErrUnavailable},
		{io.ErrUnexpectedEOF, store.ErrUnavailable},
		{fmt.Errorf("get token: %w", ratelimit.QuotaExceededError{Available: 0, Requested: 5}), store.ErrUnavailable},
		{&smithy.GenericAPIError{Code: "NoSuchKey"}, store.ErrNotFound},
		{&smithy.GenericAPIError{Code: "ConditionalRequestConflict"}, store.ErrPreconditionFailed},
		{&smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}, store.ErrPermissionDenied},
		{&smithy.GenericAPIError{Code: "SlowDown"}, store.ErrUnavailable},
		{&smithy.GenericAPIError{Code: "EntityTooSmall"}, store.ErrInvalid},
		{withKind(store.ErrInvalid, errors.New("x")), store.ErrInvalid},
		{readError(&net.OpError{Op: "read", Err: syscall.ECONNRESET}), nil},
		{errors.New("something else"), nil},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestErrorResponses checks the mapping of S3 error responses that MinIO
// does not produce on demand, through the SDK's real deserialisation.
func TestErrorResponses(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string // empty: no XML body, as from a proxy or for HEAD
		want   error
	}{
		{503, "SlowDown", store.ErrUnavailable},
		{500, "InternalError", store.ErrUnavailable},
		{502, "", store.ErrUnavailable},
		{429, "", store.ErrUnavailable},
		{409, "ConditionalRequestConflict", store.ErrPreconditionFailed},
		{412, "PreconditionFailed", store.ErrPreconditionFailed},
		{403, "ExpiredToken", store.ErrPermissionDenied},
		{403, "AccessDenied", store.ErrPermissionDenied},
		{400, "InvalidArgument", store.ErrInvalid},
		{404, "NoSuchBucket", store.ErrNotFound},
	} {
		name := fmt.Sprintf("%d%s", tc.status, tc.code)
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if tc.code == "" {
					w.WriteHeader(tc.status)
					return
				}
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>test</Message><RequestId>r1</RequestId></Error>`, tc.code)
			}))
			defer srv.Close()
			s := fakeStore(srv.URL)
			_, err := s.Put(context.Background(), "k", strings.NewReader("x"), 1, store.PutOptions{IfNoneMatch: true})
			if got := store.KindOf(err); got != tc.want {
				t.Fatalf("put: kind %v, want %v (err: %v)", got, tc.want, err)
			}
			if tc.code == "NoSuchBucket" && !strings.Contains(err.Error(), "bucket bkt does not exist") {
				t.Errorf("missing bucket message: %v", err)
			}
			if strings.Contains(err.Error(), "secret-for-test") {
				t.Errorf("message contains the secret: %v", err)
			}
		})
	}
}

func TestPartSizeFor(t *testing.T) {
	s := New(nil, "b", "", Options{})
	for _, tc := range []struct {
		size int64
		want int64
	}{
		{-1, DefaultPartSize},
		{5 << 30, DefaultPartSize},
		{DefaultPartSize * maxParts, DefaultPartSize},
		{100 << 30, 11 << 20},
		{5 << 40, 525 << 20},
	} {
		got, err := s.partSizeFor(tc.size)
		if err != nil || got != tc.want {
			t.Errorf("partSizeFor(%d) = %d, %v; want %d", tc.size, got, err, tc.want)
		}
		if tc.size > 0 && (tc.size+got-1)/got > maxParts {
			t.Errorf("partSizeFor(%d) = %d needs more than %d parts", tc.size, got, maxParts)
		}
	}
	if _, err := s.partSizeFor(maxPartSize*maxParts + 1); classify(err) != store.ErrInvalid {
		t.Errorf("object beyond S3's limit: %v", err)
	}
}

func TestNewDefaults(t *testing.T) {
	s := New(nil, "b", "/x/y/", Options{PartSize: 1})
	if s.partSize != MinPartSize || s.concurrency != DefaultConcurrency || s.threshold != MinPartSize {
		t.Errorf("defaults: part %d, concurrency %d, threshold %d", s.partSize, s.concurrency, s.threshold)
	}
	if s.String() != "s3://b/x/y" || s.objectKey("k") != "x/y/k" || s.storeKey("x/y/k") != "k" {
		t.Errorf("prefix handling: %s %s", s.String(), s.objectKey("k"))
	}
}

// TestRefusedWhileSending: a server that refuses a write may answer and
// close the connection before it has read the body, so the client sees a
// reset, not the answer. Put asks again without a body to learn why. The
// question must be one berth's policies may ask: they allow listing only
// under the prefix, so S3 refuses them HeadBucket even when all is well.
func TestRefusedWhileSending(t *testing.T) {
	for _, tc := range []struct {
		name string
		list func(w http.ResponseWriter) // answer to a listing under the prefix
		want error
	}{
		{"refused", func(w http.ResponseWriter) { w.WriteHeader(http.StatusForbidden) }, store.ErrPermissionDenied},
		{"no bucket", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `<Error><Code>NoSuchBucket</Code><Message>m</Message></Error>`)
		}, store.ErrNotFound},
		// Only the connection failed: the listing works (HeadBucket would
		// not), so the write stays "unavailable", not "access refused".
		{"reset", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, `<ListBucketResult><Name>bkt</Name><Prefix>rel/</Prefix><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`)
		}, store.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodHead:
					w.WriteHeader(http.StatusForbidden) // HeadBucket, as S3 answers berth's policies
					return
				case r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2":
					if p := r.URL.Query().Get("prefix"); p != "rel/" {
						t.Errorf("listing with prefix %q, want the store's rel/", p)
					}
					tc.list(w)
					return
				}
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				conn.(*net.TCPConn).SetLinger(0) // close with a reset, body unread
				conn.Close()
			}))
			defer srv.Close()
			s := fakeStore(srv.URL)
			s.prefix = "rel"
			body := strings.Repeat("x", 4<<20)
			_, err := s.Put(context.Background(), "k", strings.NewReader(body), int64(len(body)), store.PutOptions{})
			if store.KindOf(err) != tc.want {
				t.Fatalf("put: kind %v, want %v (err: %v)", store.KindOf(err), tc.want, err)
			}
		})
	}
}

// fakeStore is a store on bucket bkt of the test server at url, with a
// small, fast retry budget.
func fakeStore(url string) *Store {
	client := s3.New(s3.Options{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-for-test", ""),
		BaseEndpoint: aws.String(url),
		UsePathStyle: true,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 2
			o.MaxBackoff = time.Millisecond
		}),
	})
	return New(client, "bkt", "", Options{})
}

// TestProbeWithPolicy: on a healthy server the probe, asked as berth's
// writer identity, finds nothing wrong, so a reset write stays
// "unavailable". HeadBucket is refused to that identity, by MinIO as by S3.
func TestProbeWithPolicy(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	m.CreateBucket(t, "releases")
	doc, err := policy.Render(policy.KindArtifactWrite, policy.Params{Bucket: "releases", Prefix: "rel", Partition: "aws"})
	if err != nil {
		t.Fatal(err)
	}
	writer := m.SessionCredentials(t, doc.JSON())
	ctx := context.Background()
	reset := withKind(store.ErrUnavailable, syscall.ECONNRESET)
	for _, tc := range []struct {
		name   string
		creds  aws.CredentialsProvider
		bucket string
		want   error
	}{
		{"healthy", writer, "releases", nil},
		{"wrong secret", credentials.NewStaticCredentialsProvider(m.AccessKey, "not-the-secret", ""), "releases", store.ErrPermissionDenied},
		{"no bucket", credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""), "missing", store.ErrNotFound},
	} {
		client := m.S3Client(t, func(o *s3.Options) { o.Credentials = tc.creds })
		if got := New(client, tc.bucket, "rel", Options{}).probe(ctx, reset); got != tc.want {
			t.Errorf("%s: probe = %v, want %v", tc.name, got, tc.want)
		}
	}
	client := m.S3Client(t, func(o *s3.Options) { o.Credentials = writer })
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("releases")}); classify(err) != store.ErrPermissionDenied {
		t.Errorf("HeadBucket as the writer: %v, want refused (else this test shows nothing)", err)
	}
}
