package artifact_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/artifact"
)

// countingBar sums what a transfer reports.
type countingBar struct {
	mu    sync.Mutex
	added int64
	done  int
	err   error
}

func (b *countingBar) Add(n int) { b.mu.Lock(); b.added += int64(n); b.mu.Unlock() }
func (b *countingBar) Done(err error) {
	b.mu.Lock()
	b.done++
	b.err = err
	b.mu.Unlock()
}

// TestMinIODownloadParallelRanges downloads through the S3 store's parallel
// ranged path (several ranges, written in place and hashed in order): the
// bytes, the progress and the checks on size and hash must hold as on the
// streaming path.
func TestMinIODownloadParallelRanges(t *testing.T) {
	ctx := context.Background()
	r := startRegions(t, 2)
	data := random(17<<20 + 3) // four 5 MiB ranges, the last one short
	if _, err := r.client.Stage(ctx, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}
	var bars []*countingBar
	r.client.Progress = func(region string, total int64) artifact.ProgressBar {
		b := &countingBar{}
		bars = append(bars, b)
		return b
	}
	out := filepath.Join(t.TempDir(), "a")
	if _, err := r.client.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: out}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
	if len(bars) != 1 || bars[0].added != int64(len(data)) || bars[0].done != 1 || bars[0].err != nil {
		t.Fatalf("progress: %d bars, first %+v", len(bars), bars[0])
	}

	// A data object of another size fails before any byte is written,
	// and the next region serves the download.
	info, err := r.client.Info(ctx, "app", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.servers[0].S3Client(t).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String("releases/" + info.Object), Body: bytes.NewReader(data[:len(data)-1]),
	}); err != nil {
		t.Fatal(err)
	}
	bars = nil
	res, err := r.client.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: out, PreferRegion: r.servers[0].Region})
	if err != nil {
		t.Fatal(err)
	}
	if res.Region != r.servers[1].Region || len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Error, "manifest says") {
		t.Fatalf("short object: result %+v", res)
	}
	if len(bars) != 1 {
		t.Errorf("%d progress bars, want one for the region that served the bytes", len(bars))
	}

	// Cancelled: an error, and no file.
	cctx, cancel := context.WithCancel(ctx)
	r.client.Progress = func(string, int64) artifact.ProgressBar { return cancelBar{cancel} }
	out2 := filepath.Join(t.TempDir(), "b")
	if _, err := r.client.Download(cctx, "app", "1.0.0", artifact.DownloadOptions{Path: out2, PreferRegion: r.servers[1].Region}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled download: %v", err)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("cancelled download left %s: %v", out2, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(out2))
	if len(entries) != 0 {
		t.Errorf("cancelled download left %d files", len(entries))
	}
}

// cancelBar cancels the transfer at its first progress.
type cancelBar struct{ cancel context.CancelFunc }

func (b cancelBar) Add(int)    { b.cancel() }
func (b cancelBar) Done(error) {}
