package testenv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// TestDenyingProxyRewrites checks which answers the proxy rewrites, against
// a backend that answers as MinIO does, and that requests reach the backend
// as sent.
func TestDenyingProxyRewrites(t *testing.T) {
	var mu sync.Mutex
	var hosts []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Amz-Request-Id", "REQ1")
		notFound := func(code string) {
			w.Header().Set("X-Minio-Error-Code", code) // MinIO's header for bodiless answers
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusNotFound)
			if r.Method != http.MethodHead {
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>`+code+`</Code><Message>m</Message><Key>k</Key></Error>`)
			}
		}
		switch {
		case r.Method == http.MethodPut:
			w.Header().Set("ETag", `"e"`)
			io.WriteString(w, string(body))
		case strings.HasPrefix(r.URL.Path, "/bkt/present"):
			io.WriteString(w, "data")
		case strings.HasPrefix(r.URL.Path, "/bkt/"):
			notFound("NoSuchKey")
		case r.URL.Path == "/bkt" || r.URL.Path == "/bkt/":
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, "<ListBucketResult/>")
		default:
			notFound("NoSuchBucket")
		}
	}))
	defer backend.Close()
	p := StartDenyingProxy(t, backend.URL)
	proxyHost := strings.TrimPrefix(p.Endpoint, "http://")

	for _, tc := range []struct {
		method, path string
		status       int
		body         string // substring of the answer's body
	}{
		{"GET", "/bkt/missing", 403, "<Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>REQ1</RequestId>"},
		{"GET", "/bkt/dir/missing?partNumber=1", 403, "<Code>AccessDenied</Code>"},
		{"HEAD", "/bkt/missing", 403, ""},
		{"GET", "/bkt/present", 200, "data"},
		{"HEAD", "/bkt/present", 200, ""},
		{"GET", "/nobucket/k", 404, "<Code>NoSuchBucket</Code>"},
		{"HEAD", "/nobucket/k", 404, ""},
		{"HEAD", "/nobucket", 404, ""},
		{"GET", "/bkt?list-type=2&prefix=missing", 200, "<ListBucketResult/>"},
		{"PUT", "/bkt/new", 200, "put body"},
		{"DELETE", "/bkt/missing", 404, "<Code>NoSuchKey</Code>"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			var body io.Reader
			if tc.method == "PUT" {
				body = strings.NewReader("put body")
			}
			req, err := http.NewRequest(tc.method, p.Endpoint+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
				t.Fatalf("%s %s: %d %q, want %d with %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.body)
			}
			if tc.method == "HEAD" && len(b) != 0 {
				t.Errorf("HEAD answer has a body: %q", b)
			}
			if resp.StatusCode == 403 {
				if resp.Header.Get("X-Minio-Error-Code") != "" {
					t.Errorf("refusal still carries MinIO's error code header")
				}
				if resp.Header.Get("X-Amz-Request-Id") != "REQ1" {
					t.Errorf("request ID lost: %v", resp.Header)
				}
				if tc.method == "GET" && !strings.HasPrefix(string(b), `<?xml version="1.0" encoding="UTF-8"?>`) {
					t.Errorf("body is not S3's XML error: %q", b)
				}
			}
		})
	}
	if got := p.Refused(); got != 3 {
		t.Errorf("Refused() = %d, want 3", got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range hosts {
		if h != proxyHost {
			t.Fatalf("backend saw Host %q, want the proxy's %q that the client signed", h, proxyHost)
		}
	}
}

// TestDenyingProxyMinIO runs SigV4-signed SDK calls through the proxy to a
// real MinIO: they verify there, and only missing keys change answer.
func TestDenyingProxyMinIO(t *testing.T) {
	m := StartMinIO(t, "eu-west-1")
	m.CreateBucket(t, "bkt")
	p := StartDenyingProxy(t, m.Endpoint)
	via := func(o *s3.Options) { o.BaseEndpoint = aws.String(p.Endpoint) }
	c := m.S3Client(t, via)
	ctx := context.Background()

	data := bytes.Repeat([]byte("proxy"), 2<<20) // 10 MiB: the SDK sends Expect: 100-continue
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/a b+c"), Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("put through the proxy: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/a b+c")})
	if err != nil {
		t.Fatalf("get through the proxy: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get through the proxy: %d bytes, %v", len(got), err)
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt"), Prefix: aws.String("dir/")})
	if err != nil || len(list.Contents) != 1 {
		t.Fatalf("list through the proxy: %v, %v", list, err)
	}

	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/missing")})
	wantAPIError(t, "get missing key", err, 403, "AccessDenied")
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/missing")})
	wantAPIError(t, "head missing key", err, 403, "Forbidden")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k")})
	wantAPIError(t, "get in missing bucket", err, 404, "NoSuchBucket")
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k")})
	wantAPIError(t, "head in missing bucket", err, 404, "NotFound")
	if got := p.Refused(); got != 2 {
		t.Errorf("Refused() = %d, want 2", got)
	}

	// MinIO still checks signatures: a wrong secret is refused by MinIO,
	// not let through.
	bad := m.S3Client(t, via, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(m.AccessKey, "wrong-secret", "")
	})
	_, err = bad.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("dir/a b+c")})
	wantAPIError(t, "wrong secret", err, 403, "SignatureDoesNotMatch")

}

func wantAPIError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var apiErr smithy.APIError
	var respErr *awshttp.ResponseError
	if !errors.As(err, &apiErr) || !errors.As(err, &respErr) {
		t.Fatalf("%s: %v, want an API error %d %s", what, err, status, code)
	}
	if respErr.HTTPStatusCode() != status || apiErr.ErrorCode() != code {
		t.Fatalf("%s: %d %s, want %d %s (%v)", what, respErr.HTTPStatusCode(), apiErr.ErrorCode(), status, code, err)
	}
}
