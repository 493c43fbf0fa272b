package cache_test

// The cache on real MinIO servers acting as three regions.

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/cache"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/store/s3store"
)

func minioRegions(t *testing.T, n int) ([]cache.Region, []*testenv.MinIO) {
	t.Helper()
	servers := testenv.StartRegions(t, n)
	var rs []cache.Region
	for _, m := range servers {
		m.CreateBucket(t, "cache")
		c := m.S3Client(t, func(o *s3.Options) {
			o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 2 })
		})
		rs = append(rs, cache.Region{Name: m.Region, Store: s3store.New(c, "cache", "ci", s3store.Options{})})
	}
	return rs, servers
}

func TestMinIO(t *testing.T) {
	regions, servers := minioRegions(t, 3)
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, regions) })
	t.Run("ConcurrentSaves", func(t *testing.T) { concurrentSaves(t, regions) })
	t.Run("PrefixNewestAndRegionDown", func(t *testing.T) {
		ctx := context.Background()
		src := t.TempDir()
		c := &cache.Client{Regions: regions}
		// S3 times are whole seconds: entries saved within one second
		// are told apart by the time recorded in them.
		for _, k := range []string{"pip-b", "pip-a", "pip-c"} {
			os.WriteFile(filepath.Join(src, "f"), []byte(k), 0o644)
			if _, err := c.Save(ctx, k, src, []string{"f"}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		servers[0].Kill()
		dst := t.TempDir()
		got, err := c.Restore(ctx, "pip-new", []string{"pip-"}, dst)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dst, "f"))
		if got.Key != "pip-c" || string(b) != "pip-c" || got.Region != servers[1].Region {
			t.Errorf("Restore = %+v holding %q; want pip-c from %s", got, b, servers[1].Region)
		}
	})
}
