package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/cache"
	"github.com/berth-dev/berth/store/filestore"
)

// smallTree writes files of 1 to 8 KiB in directories of 256, half random
// and half text, like bench/cache.sh's tree, and returns their total size.
func smallTree(b *testing.B, dir string, files int) int64 {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	text := bytes.Repeat([]byte("func handler(ctx context.Context, req *Request) (*Response, error) {\n"), 128)
	var total int64
	for i := range files {
		d := filepath.Join(dir, "tree", fmt.Sprintf("d%03d", i/256))
		if i%256 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		size := 1024 + rng.IntN(7*1024)
		body := make([]byte, size)
		for j := range size / 2 {
			body[j] = byte(rng.Uint32())
		}
		copy(body[size/2:], text)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d.o", i)), body, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	return total
}

// BenchmarkUnpackSmallFiles restores 4096 small files from an archive in
// memory into a new directory on disk: the per-file cost of a restore.
func BenchmarkUnpackSmallFiles(b *testing.B) {
	src := b.TempDir()
	size := smallTree(b, src, 4096)
	var archive bytes.Buffer
	if err := cache.Pack(&archive, src, []string{"tree"}); err != nil {
		b.Fatal(err)
	}
	restoreLoop(b, size, func(dst string) error {
		if err := os.Mkdir(dst, 0o755); err != nil {
			return err
		}
		return cache.Unpack(bytes.NewReader(archive.Bytes()), dst)
	})
}

// restoreLoop times restore into a new directory each iteration, size
// bytes of files each; removing them is not timed.
func restoreLoop(b *testing.B, size int64, restore func(dst string) error) {
	base := b.TempDir()
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		dst := filepath.Join(base, fmt.Sprint(i))
		if err := restore(dst); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(dst); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkPackSmallFiles packs the same tree: the per-file cost of a save.
func BenchmarkPackSmallFiles(b *testing.B) {
	src := b.TempDir()
	size := smallTree(b, src, 4096)
	b.SetBytes(size)
	b.ReportAllocs()
	var archive bytes.Buffer
	for b.Loop() {
		archive.Reset()
		if err := cache.Pack(&archive, src, []string{"tree"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestoreSmallFiles is a whole restore from a file store: fetch,
// SHA-256 check and unpack.
func BenchmarkRestoreSmallFiles(b *testing.B) {
	ctx := context.Background()
	src := b.TempDir()
	size := smallTree(b, src, 4096)
	s, err := filestore.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c := &cache.Client{Regions: []cache.Region{{Name: "r0", Store: s}}, TempDir: b.TempDir()}
	if _, err := c.Save(ctx, "bench", src, []string{"tree"}); err != nil {
		b.Fatal(err)
	}
	restoreLoop(b, size, func(dst string) error {
		_, err := c.Restore(ctx, "bench", nil, dst)
		return err
	})
}
