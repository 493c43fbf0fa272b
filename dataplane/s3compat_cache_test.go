package dataplane_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/cache"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3store"
)

func cacheClient(servers []*testenv.MinIO, c dataplane.Credentials) *cache.Client {
	cc := &cache.Client{}
	for _, m := range servers {
		cc.Regions = append(cc.Regions, cache.Region{Name: m.Region, Store: s3store.New(client(m, c.AccessKeyID, c.SecretAccessKey), "ci-cache", "rel", s3store.Options{})})
	}
	return cc
}

// TestS3CompatCacheBucket deploys with a cache bucket on two MinIO servers:
// the bucket is unversioned with the expiration rule, and the writer and
// reader identities get cache-write and cache-read, which MinIO enforces.
func TestS3CompatCacheBucket(t *testing.T) {
	ctx := context.Background()
	servers := testenv.StartRegions(t, 2)
	var kept keeper
	in := dataplane.S3CompatInput{Targets: targets(t, servers), Bucket: "releases", Prefix: "rel", Identities: true,
		KeepCredentials: kept.keep, CacheBucket: "ci-cache", CacheExpirationDays: 7}
	plan, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	count := actions(plan)
	// Per region: two buckets, artifact and cache lifecycles, four policies, two users, four attachments.
	if count["create-bucket"] != 4 || count["set-lifecycle"] != 4 || count["enable-versioning"] != 2 || count["put-policy"] != 8 ||
		count["create-user"] != 4 || count["attach-policy"] != 8 {
		t.Fatalf("plan = %v", count)
	}
	res, err := dataplane.ApplyS3Compat(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unsupported) != 0 {
		t.Errorf("unsupported on MinIO: %+v", res.Unsupported)
	}
	again, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if again.Changes() {
		t.Fatalf("second plan has changes: %+v", again.Steps)
	}
	// A changed expiration is a change.
	in.CacheExpirationDays = 30
	if p, err := dataplane.PlanS3Compat(ctx, in); err != nil || actions(p)["set-lifecycle"] != 2 {
		t.Fatalf("plan with 30 days: %v %+v", err, p)
	}

	for _, m := range servers {
		admin := client(m, m.AccessKey, m.SecretKey)
		v, err := admin.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("ci-cache")})
		if err != nil || v.Status != "" {
			t.Errorf("%s: cache bucket versioning %q, %v; want never enabled", m.Region, v.Status, err)
		}
		lc, err := admin.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String("ci-cache")})
		if err != nil || len(lc.Rules) != 1 || lc.Rules[0].Expiration == nil || aws.ToInt32(lc.Rules[0].Expiration.Days) != 7 {
			t.Errorf("%s: cache lifecycle %+v, %v", m.Region, lc, err)
		}
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("cached"), 0o644)
	writer := cacheClient(servers, kept.role("writer"))
	if _, err := writer.Save(ctx, "go-1", dir, []string{"a.txt"}); err != nil {
		t.Fatalf("writer save: %v", err)
	}
	reader := cacheClient(servers, kept.role("reader"))
	out := t.TempDir()
	r, err := reader.Restore(ctx, "go-2", []string{"go-"}, out)
	if err != nil || r.Key != "go-1" {
		t.Fatalf("reader restore: %+v %v", r, err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "a.txt")); string(b) != "cached" {
		t.Errorf("restored %q", b)
	}
	if _, err := reader.Save(ctx, "go-3", dir, []string{"a.txt"}); !errors.Is(err, store.ErrPermissionDenied) {
		t.Errorf("reader save: %v, want permission denied", err)
	}
	// The writer may not delete, and not touch artifacts through cache-write.
	w := client(servers[0], kept.role("writer").AccessKeyID, kept.role("writer").SecretAccessKey)
	if _, err := w.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("ci-cache"), Key: aws.String("rel/keys/go-1.json")}); err == nil {
		t.Error("writer deleted a cache entry")
	}

	for _, bad := range []dataplane.S3CompatInput{
		{CacheBucket: "releases"}, {CacheBucket: "Bad_Name"}, {CacheBucket: "ci-cache", CacheExpirationDays: -1}, {CacheExpirationDays: 3},
	} {
		bad.Targets, bad.Bucket = in.Targets, "releases"
		if _, err := dataplane.PlanS3Compat(ctx, bad); !errors.Is(err, dataplane.ErrInvalid) {
			t.Errorf("PlanS3Compat(cache %q, %d days) = %v, want invalid", bad.CacheBucket, bad.CacheExpirationDays, err)
		}
	}
}
