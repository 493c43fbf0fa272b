package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// recorder stands in for a testing.TB to see what Require does.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = true
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = format
	runtime.Goexit()
}

// run calls f in its own goroutine, as testing does, so Goexit ends only f.
func run(tb testing.TB, f func(testing.TB)) *recorder {
	r := &recorder{TB: tb}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestRequire(t *testing.T) {
	t.Setenv(RequireServersEnv, "")
	if r := run(t, func(tb testing.TB) { Require(tb, "no server") }); !r.skipped || r.failed {
		t.Errorf("without %s: skipped=%v failed=%v, want a skip", RequireServersEnv, r.skipped, r.failed)
	}
	t.Setenv(RequireServersEnv, "1")
	if r := run(t, func(tb testing.TB) { Require(tb, "no server") }); r.skipped || !r.failed {
		t.Errorf("with %s=1: skipped=%v failed=%v, want a failure", RequireServersEnv, r.skipped, r.failed)
	}
}

func TestMinIOBinaryEnv(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "minio")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BERTH_MINIO", fake)
	if got := MinIOBinary(t); got != fake {
		t.Errorf("MinIOBinary = %q, want $BERTH_MINIO %q", got, fake)
	}

	t.Setenv("BERTH_MINIO", filepath.Join(dir, "missing"))
	t.Setenv(RequireServersEnv, "")
	if r := run(t, func(tb testing.TB) { MinIOBinary(tb) }); !r.skipped {
		t.Errorf("MinIOBinary with a missing $BERTH_MINIO did not skip")
	}
}

func TestStartMinIO(t *testing.T) {
	m := StartMinIO(t, "eu-west-1")
	if !strings.HasPrefix(m.Endpoint, "http://127.0.0.1:") || m.Region != "eu-west-1" {
		t.Fatalf("endpoint %q region %q", m.Endpoint, m.Region)
	}
	m.CreateBucket(t, "bkt")
	c := m.S3Client(t)
	ctx := context.Background()
	putGet(t, c, "bkt", "hello", "world")

	loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("bkt")})
	if err != nil {
		t.Fatal(err)
	}
	if string(loc.LocationConstraint) != "eu-west-1" {
		t.Errorf("bucket location %q, want eu-west-1", loc.LocationConstraint)
	}
}

func TestKillRestart(t *testing.T) {
	m := StartMinIO(t, "us-east-1")
	m.CreateBucket(t, "bkt")
	putGet(t, m.S3Client(t), "bkt", "k", "before")
	endpoint := m.Endpoint

	m.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	noRetry := func(o *s3.Options) { o.RetryMaxAttempts = 1 }
	if _, err := m.S3Client(t, noRetry).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("bkt")}); err == nil {
		t.Fatal("request to a killed server succeeded")
	}
	m.Kill() // twice is fine

	m.Restart(t)
	if m.Endpoint != endpoint {
		t.Fatalf("endpoint changed across restart: %s -> %s", endpoint, m.Endpoint)
	}
	out, err := m.S3Client(t).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "before" {
		t.Fatalf("after restart got %q", b)
	}
}

func TestStartRegions(t *testing.T) {
	ms := StartRegions(t, 2)
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.Endpoint] || seen[m.Region] {
			t.Fatalf("regions share endpoint or name: %+v", m)
		}
		seen[m.Endpoint], seen[m.Region] = true, true
		m.CreateBucket(t, "artifacts")
		putGet(t, m.S3Client(t), "artifacts", "region", m.Region)
	}
	if ms[0].Region != "eu-west-1" || ms[1].Region != "us-east-1" {
		t.Errorf("regions %s, %s", ms[0].Region, ms[1].Region)
	}
}

func TestWrongCredentials(t *testing.T) {
	m := StartMinIO(t, "eu-west-1")
	m.CreateBucket(t, "bkt")
	wrong := func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(m.AccessKey, "not-the-secret", "")
	}
	_, err := m.S3Client(t, wrong).HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String("bkt")})
	if err == nil {
		t.Fatal("wrong secret accepted: the server does not check credentials")
	}
}

func putGet(t *testing.T, c *s3.Client, bucket, key, body string) {
	t.Helper()
	ctx := context.Background()
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil || !bytes.Equal(b, []byte(body)) {
		t.Fatalf("get %s = %q, %v; want %q", key, b, err, body)
	}
}
