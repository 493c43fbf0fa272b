package artifact

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestOrderedHasher writes a file in shuffled, uneven spans, as parallel
// ranges do, and wants the hash of the whole file in order.
func TestOrderedHasher(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// The larger size crosses writebackChunk, so writeback starts behind the hash.
	for _, tc := range []struct {
		size  int
		seeds uint64
	}{{3<<20 + 17, 20}, {2*writebackChunk + 5, 2}} {
		data := make([]byte, tc.size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		want := sha256.Sum256(data)
		for seed := range tc.seeds {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			// Cut the data into spans of random length and write them in random order.
			var spans [][2]int64
			for off := int64(0); off < int64(len(data)); {
				n := min(int64(len(data))-off, 1+rng.Int64N(700<<10))
				spans = append(spans, [2]int64{off, n})
				off += n
			}
			r := rand.New(rand.NewPCG(seed, seed))
			r.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })
			h := newOrderedHasher(f)
			for _, sp := range spans {
				if _, err := f.WriteAt(data[sp[0]:sp[0]+sp[1]], sp[0]); err != nil {
					t.Fatal(err)
				}
				h.written(sp[0], sp[1])
			}
			n, sum, err := h.finish()
			h.stop()
			f.Close()
			if err != nil || n != int64(len(data)) || sum != hex.EncodeToString(want[:]) {
				t.Fatalf("seed %d: %d bytes, sum %s, %v; want %d bytes, %x", seed, n, sum, err, len(data), want)
			}
		}
	}
}

// TestOrderedHasherGap stops at the first byte not written: a missing span
// must show as a short length, never as a hash over a hole.
func TestOrderedHasherGap(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("x"), 300)
	f.WriteAt(data, 0)
	h := newOrderedHasher(f)
	h.written(0, 100)
	h.written(200, 100)
	n, sum, err := h.finish()
	want := sha256.Sum256(data[:100])
	if err != nil || n != 100 || sum != hex.EncodeToString(want[:]) {
		t.Fatalf("got %d bytes, %s, %v; want 100 bytes", n, sum, err)
	}
	h.stop()
}

// TestOrderedHasherMerges writes four ranges front to back in small
// interleaved pieces, as GetTo's workers do: the spans waiting beyond the
// hashed part merge, so there are never more than the ranges in flight.
func TestOrderedHasherMerges(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const ranges, rangeSize, piece = 4, 1 << 20, 64 << 10
	data := bytes.Repeat([]byte("berth"), ranges*rangeSize/5+1)[:ranges*rangeSize]
	h := newOrderedHasher(f)
	defer h.stop()
	// Range 0 last, so that nothing is contiguous until the end.
	for p := 0; p < rangeSize; p += piece {
		for r := ranges - 1; r >= 0; r-- {
			off := int64(r*rangeSize + p)
			f.WriteAt(data[off:off+piece], off)
			h.written(off, piece)
			h.mu.Lock()
			n := len(h.pending)
			h.mu.Unlock()
			if n > ranges {
				t.Fatalf("%d pending spans with %d ranges", n, ranges)
			}
		}
	}
	n, sum, err := h.finish()
	want := sha256.Sum256(data)
	if err != nil || n != int64(len(data)) || sum != hex.EncodeToString(want[:]) {
		t.Fatalf("got %d bytes, %s, %v", n, sum, err)
	}
}
