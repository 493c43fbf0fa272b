package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/policy"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3store"
	"github.com/berth-dev/berth/store/storetest"
)

// TestResolveDenied checks, at the wire, how a 403 on a read is sorted:
// S3 gives it for a missing key to callers who may list only part of the
// bucket, and a listing of the key itself tells a missing key from a
// refused one. Only AccessDenied (GET) and a bodiless 403 (HEAD) are worth
// the extra request.
func TestResolveDenied(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		code    string // of GET; HEAD has no body
		listing string // "empty", "key", "longer" (only keys below it), "denied"
		want    error
		// Listings per HEAD and per GET. A HEAD's 403 has no body to say
		// why, so it is always worth one.
		headLists, getLists int
	}{
		{"missing", 403, "AccessDenied", "empty", store.ErrNotFound, 1, 1},
		{"only longer keys", 403, "AccessDenied", "longer", store.ErrNotFound, 1, 1},
		{"present", 403, "AccessDenied", "key", store.ErrPermissionDenied, 1, 1},
		{"listing refused", 403, "AccessDenied", "denied", store.ErrPermissionDenied, 1, 1},
		{"bad signature", 403, "SignatureDoesNotMatch", "denied", store.ErrPermissionDenied, 1, 0},
		{"unknown key id", 403, "InvalidAccessKeyId", "denied", store.ErrPermissionDenied, 1, 0},
		{"plain 404", 404, "NoSuchKey", "denied", store.ErrNotFound, 0, 0},
		{"found", 200, "", "denied", nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var listings []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				q := r.URL.Query()
				if q.Get("list-type") == "2" {
					mu.Lock()
					listings = append(listings, r.URL.Path+"?prefix="+q.Get("prefix")+"&max-keys="+q.Get("max-keys"))
					mu.Unlock()
					key := map[string]string{"empty": "", "key": "rel/k", "longer": "rel/k/x"}[tc.listing]
					if tc.listing == "denied" {
						xmlError(w, 403, "AccessDenied")
						return
					}
					w.Header().Set("Content-Type", "application/xml")
					fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bkt</Name><Prefix>rel/k</Prefix><KeyCount>1</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated>`)
					if key != "" {
						fmt.Fprintf(w, `<Contents><Key>%s</Key><Size>1</Size><ETag>"e"</ETag></Contents>`, key)
					}
					fmt.Fprint(w, `</ListBucketResult>`)
					return
				}
				if r.URL.Path != "/bkt/rel/k" {
					t.Errorf("unexpected request %s %s", r.Method, r.URL)
				}
				if tc.status == 200 {
					w.Header().Set("ETag", `"e"`)
					w.Header().Set("Content-Length", "1")
					w.Write([]byte("x"))
					return
				}
				if r.Method == http.MethodHead {
					w.WriteHeader(tc.status)
					return
				}
				xmlError(w, tc.status, tc.code)
			}))
			defer srv.Close()
			client := s3.New(s3.Options{
				Region:       "eu-west-1",
				Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-for-test", ""),
				BaseEndpoint: aws.String(srv.URL),
				UsePathStyle: true,
				Retryer:      retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 }),
			})
			s := s3store.New(client, "bkt", "rel", s3store.Options{})
			ctx := context.Background()

			reads := map[string]func() error{
				"stat": func() error { _, err := s.Stat(ctx, "k"); return err },
				"get": func() error {
					rc, _, err := s.Get(ctx, "k", store.Range{})
					if err == nil {
						rc.Close()
					}
					return err
				},
				"get range": func() error {
					rc, _, err := s.Get(ctx, "k", store.Range{Offset: 0, Length: 1})
					if err == nil {
						rc.Close()
					}
					return err
				},
			}
			for op, read := range reads {
				mu.Lock()
				listings = nil
				mu.Unlock()
				err := read()
				if got := store.KindOf(err); got != tc.want {
					t.Errorf("%s: kind %v, want %v (err: %v)", op, got, tc.want, err)
				}
				if tc.want == store.ErrNotFound && tc.status == 403 && !strings.Contains(err.Error(), "key does not exist") {
					t.Errorf("%s: message does not say the key is missing: %v", op, err)
				}
				if strings.Contains(fmt.Sprint(err), "secret-for-test") {
					t.Errorf("%s: message contains the secret: %v", op, err)
				}
				mu.Lock()
				lists := tc.getLists
				if op == "stat" {
					lists = tc.headLists
				}
				if len(listings) != lists {
					t.Errorf("%s: %d listings %v, want %d", op, len(listings), listings, lists)
				}
				for _, l := range listings {
					if l != "/bkt?prefix=rel/k&max-keys=1" {
						t.Errorf("%s: listing %s, want the key itself as prefix, one key", op, l)
					}
				}
				mu.Unlock()
			}
		})
	}
}

func xmlError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>m</Message><RequestId>r1</RequestId></Error>`, code)
}

// policyCredentials returns credentials that may do only what berth's
// rendered policy of kind allows on bucket "releases", prefix "rel".
func policyCredentials(t *testing.T, m *testenv.MinIO, kind policy.Kind) aws.CredentialsProvider {
	t.Helper()
	doc, err := policy.Render(kind, policy.Params{Bucket: "releases", Prefix: "rel", Partition: "aws"})
	if err != nil {
		t.Fatal(err)
	}
	return m.SessionCredentials(t, doc.JSON())
}

// TestDeniedMissingKeyWithPolicy reads and writes through a proxy that
// answers missing keys with 403, as S3 does, as identities holding only
// berth's artifact-write and artifact-read policies: a missing key is "not
// found", a create-only write of a new key succeeds, and real refusals
// stay refusals.
func TestDeniedMissingKeyWithPolicy(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	m.CreateBucket(t, "releases")
	writeCreds := policyCredentials(t, m, policy.KindArtifactWrite)
	readCreds := policyCredentials(t, m, policy.KindArtifactRead)
	proxy := testenv.StartDenyingProxy(t, m.Endpoint)
	opts := s3store.Options{PartSize: 5 * mib, Concurrency: 2}
	as := func(creds aws.CredentialsProvider, prefix string, opts s3store.Options) *s3store.Store {
		c := m.S3Client(t, fewRetries, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(proxy.Endpoint)
			o.Credentials = creds
		})
		return s3store.New(c, "releases", prefix, opts)
	}
	writer := as(writeCreds, "rel", opts)
	reader := as(readCreds, "rel", opts)
	ctx := context.Background()

	for name, s := range map[string]*s3store.Store{"writer": writer, "reader": reader} {
		if _, err := s.Stat(ctx, "app/1.0.0/manifest.json"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: stat of a missing manifest: %v, want not found", name, err)
		}
		if _, _, err := s.Get(ctx, "app/1.0.0/manifest.json", store.Range{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: get of a missing manifest: %v, want not found", name, err)
		}
		if _, _, err := s.Get(ctx, "app/1.0.0/manifest.json", store.Range{Offset: 3}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: ranged get of a missing manifest: %v, want not found", name, err)
		}
	}
	if proxy.Refused() == 0 {
		t.Fatal("the proxy refused nothing: the test did not see S3's 403")
	}

	// A create-only multipart put looks first whether the key exists.
	data := storetest.Random(t, 20*mib)
	const dataKey = "app/1.0.0/data/0123"
	if _, err := writer.Put(ctx, dataKey, bytes.NewReader(data), int64(len(data)), store.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatalf("create-only multipart put of a new key: %v", err)
	}
	if _, err := writer.Put(ctx, dataKey, bytes.NewReader(data), int64(len(data)), store.PutOptions{IfNoneMatch: true}); !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("create-only put over an existing key: %v, want precondition failed", err)
	}
	if _, err := writer.Put(ctx, "app/1.0.0/manifest.json", strings.NewReader("{}"), 2, store.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatalf("create-only put of a manifest: %v", err)
	}
	if _, err := reader.Stat(ctx, "app/1.0.0/manifest.json"); err != nil {
		t.Fatalf("stat of a present manifest: %v", err)
	}

	// The object goes away during a parallel read: the later ranges (with
	// If-Match) get 403 too, and that is a missing key as well. With one
	// range in flight, the last ones are asked for after the delete.
	one := as(readCreds, "rel", s3store.Options{PartSize: 5 * mib, Concurrency: 1})
	rc, _, err := one.Get(ctx, dataKey, store.Range{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.S3Client(t).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("releases"), Key: aws.String("rel/" + dataKey)}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("parallel read of a deleted object: %v, want not found", err)
	}

	// Real refusals stay refusals: keys outside the policy's prefix (the
	// listing is refused too), the reader writing, a wrong secret.
	outside := as(writeCreds, "other", opts)
	wrong := as(credentials.NewStaticCredentialsProvider(m.AccessKey, "not-the-secret", ""), "rel", opts)
	for _, tc := range []struct {
		name string
		s    *s3store.Store
		key  string
	}{
		{"outside the prefix", outside, "app/1.0.0/manifest.json"},
		{"wrong secret, missing key", wrong, "app/2.0.0/manifest.json"},
		{"wrong secret, present key", wrong, "app/1.0.0/manifest.json"},
	} {
		if _, err := tc.s.Stat(ctx, tc.key); !errors.Is(err, store.ErrPermissionDenied) {
			t.Errorf("%s: stat: %v, want permission denied", tc.name, err)
		}
		if _, _, err := tc.s.Get(ctx, tc.key, store.Range{}); !errors.Is(err, store.ErrPermissionDenied) {
			t.Errorf("%s: get: %v, want permission denied", tc.name, err)
		}
	}
	if _, err := reader.Put(ctx, "app/2.0.0/manifest.json", strings.NewReader("{}"), 2, store.PutOptions{IfNoneMatch: true}); !errors.Is(err, store.ErrPermissionDenied) {
		t.Errorf("reader put: %v, want permission denied", err)
	}
	big := storetest.Random(t, 6*mib)
	if _, err := reader.Put(ctx, "app/2.0.0/data/x", bytes.NewReader(big), int64(len(big)), store.PutOptions{IfNoneMatch: true}); !errors.Is(err, store.ErrPermissionDenied) {
		t.Errorf("reader multipart put: %v, want permission denied", err)
	}
}

// A key created between a read's 403 and the listing (a concurrent
// stager's manifest) is read again, not reported as access refused.
func TestDeniedKeyCreatedMeanwhile(t *testing.T) {
	var reads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("list-type") == "2" {
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>bkt</Name><Prefix>rel/k</Prefix><KeyCount>1</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>rel/k</Key><Size>1</Size><ETag>"e"</ETag></Contents></ListBucketResult>`)
			return
		}
		if reads.Add(1)%2 == 1 { // every first read: not there yet
			if r.Method == http.MethodHead {
				w.WriteHeader(403)
				return
			}
			xmlError(w, 403, "AccessDenied")
			return
		}
		w.Header().Set("ETag", `"e"`)
		w.Header().Set("Content-Length", "1")
		w.Write([]byte("x"))
	}))
	defer srv.Close()
	client := s3.New(s3.Options{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret-for-test", ""),
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Retryer:      retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 }),
	})
	s := s3store.New(client, "bkt", "rel", s3store.Options{})
	ctx := context.Background()
	if info, err := s.Stat(ctx, "k"); err != nil || info.Size != 1 {
		t.Errorf("stat of a key created meanwhile: %+v, %v", info, err)
	}
	rc, _, err := s.Get(ctx, "k", store.Range{})
	if err != nil {
		t.Fatalf("get of a key created meanwhile: %v", err)
	}
	rc.Close()
	if n := reads.Load(); n != 4 {
		t.Errorf("%d reads, want 4 (each read once more after the listing)", n)
	}
}
