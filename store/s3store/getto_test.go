package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3store"
	"github.com/berth-dev/berth/store/storetest"
)

// spans records the calls of GetTo's written callback and fails the test
// if two of them overlap in time.
type spans struct {
	t    *testing.T
	busy atomic.Bool
	mu   sync.Mutex
	got  [][2]int64
}

func (s *spans) written(off, n int64) {
	if !s.busy.CompareAndSwap(false, true) {
		s.t.Error("written called concurrently")
	}
	time.Sleep(time.Microsecond) // widen the window for an overlap
	s.mu.Lock()
	s.got = append(s.got, [2]int64{off, n})
	s.mu.Unlock()
	s.busy.Store(false)
}

// covers reports whether the spans tile [0, size) exactly.
func (s *spans) covers(size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := slices.Clone(s.got)
	slices.SortFunc(got, func(a, b [2]int64) int { return int(a[0] - b[0]) })
	var end int64
	for _, sp := range got {
		if sp[0] != end || sp[1] <= 0 {
			return fmt.Errorf("span %v after %d", sp, end)
		}
		end += sp[1]
	}
	if end != size {
		return fmt.Errorf("spans end at %d, object is %d bytes", end, size)
	}
	return nil
}

func TestGetToSizes(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	const part = 5 * mib
	s := s3store.New(m.S3Client(t), newBucket(t, m), "pre", s3store.Options{PartSize: part, Concurrency: 3})
	ctx := context.Background()
	data := storetest.Random(t, 4*part+7)
	for _, size := range []int64{0, 1, part - 1, part, part + 1, 2 * part, 2*part + 1, 3*part - 1, 4*part + 7} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			key := fmt.Sprintf("obj-%d", size)
			want := data[:size]
			put, err := s.Put(ctx, key, bytes.NewReader(want), size, store.PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sp := &spans{t: t}
			starts := 0
			info, err := s.GetTo(ctx, key, f, func(info store.Info) error {
				starts++
				if info.Size != size || info.ETag != put.ETag {
					t.Errorf("start got %+v, want size %d and ETag %s", info, size, put.ETag)
				}
				if len(sp.got) > 0 {
					t.Error("start called after a write")
				}
				return nil
			}, sp.written)
			if err != nil {
				t.Fatal(err)
			}
			if starts != 1 || info.Size != size || info.Key != key || info.ETag != put.ETag {
				t.Errorf("start called %d times, info %+v", starts, info)
			}
			if err := sp.covers(size); err != nil {
				t.Error(err)
			}
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("file holds %d bytes, not the %d put", len(got), size)
			}
		})
	}
}

// TestGetToObjectReplaced replaces the object after the first write: the
// ranges still to come are pinned to the first one's ETag, so GetTo fails
// instead of writing a mix of both objects.
func TestGetToObjectReplaced(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	s := s3store.New(m.S3Client(t), newBucket(t, m), "", s3store.Options{PartSize: 5 * mib, Concurrency: 1})
	ctx := context.Background()
	data := storetest.Random(t, 20*mib)
	if _, err := s.Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	other := storetest.Random(t, 20*mib)
	var once sync.Once
	var replaceErr error
	_, err := s.GetTo(ctx, "obj", &memFile{}, nil, func(off, n int64) {
		once.Do(func() {
			_, replaceErr = s.Put(ctx, "obj", bytes.NewReader(other), int64(len(other)), store.PutOptions{})
		})
	})
	if replaceErr != nil {
		t.Fatal(replaceErr)
	}
	if !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("GetTo of a replaced object: %v, want ErrPreconditionFailed", err)
	}
}

func TestGetToCancel(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	s := s3store.New(m.S3Client(t), newBucket(t, m), "", s3store.Options{PartSize: 5 * mib, Concurrency: 3})
	data := storetest.Random(t, 40*mib)
	if _, err := s.Put(context.Background(), "obj", bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var after atomic.Int64
	w := &memFile{}
	_, err := s.GetTo(ctx, "obj", w, nil, func(off, n int64) {
		if ctx.Err() != nil {
			after.Add(n)
		}
		cancel()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled GetTo: %v, want context.Canceled", err)
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancellation sorted into a store kind: %v", err)
	}
	// Each of the 3 workers may finish the write it was doing.
	if a := after.Load(); a > 3*mib {
		t.Errorf("%d bytes written after cancel", a)
	}
	// GetTo has returned, so no worker may write any more.
	n := w.size()
	time.Sleep(100 * time.Millisecond)
	if w.size() != n {
		t.Error("writes after GetTo returned")
	}
}

func TestGetToErrors(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	s := s3store.New(m.S3Client(t), newBucket(t, m), "", s3store.Options{PartSize: 5 * mib, Concurrency: 2})
	ctx := context.Background()
	data := storetest.Random(t, 12*mib)
	if _, err := s.Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	if _, err := s.GetTo(ctx, "missing", &memFile{}, nil, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing key: %v, want ErrNotFound", err)
	}
	if _, err := s.GetTo(ctx, "/bad", &memFile{}, nil, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bad key: %v, want ErrInvalid", err)
	}

	// An error from start comes back as is, and nothing is written.
	refuse := errors.New("wrong size")
	w := &memFile{}
	info, err := s.GetTo(ctx, "obj", w, func(store.Info) error { return refuse }, nil)
	if err != refuse || info.Size != int64(len(data)) || w.size() != 0 {
		t.Errorf("refused by start: %v, info %+v, %d bytes written", err, info, w.size())
	}

	// A failing destination is not the store's fault.
	disk := errors.New("disk full")
	_, err = s.GetTo(ctx, "obj", failingWriter{disk}, nil, nil)
	if !errors.Is(err, disk) {
		t.Errorf("failing writer: %v", err)
	}
	for _, kind := range []error{store.ErrUnavailable, store.ErrNotFound, store.ErrPermissionDenied, store.ErrInvalid} {
		if errors.Is(err, kind) {
			t.Errorf("failing writer sorted into %v: %v", kind, err)
		}
	}
}

// TestGetToMemory fetches an object many times the range size with large
// ranges: the heap must not grow with either.
func TestGetToMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 200 MiB")
	}
	m := testenv.StartMinIO(t, "eu-west-1")
	client, bucket := m.S3Client(t), newBucket(t, m)
	s := s3store.New(client, bucket, "", s3store.Options{PartSize: 64 * mib, Concurrency: 4})
	ctx := context.Background()
	const size = 200 * mib
	small := s3store.New(client, bucket, "", s3store.Options{PartSize: 5 * mib, Concurrency: 2})
	if _, err := small.Put(ctx, "big", io.LimitReader(newPRNG(2), size), size, store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	peak := watchHeap(t)
	if _, err := s.GetTo(ctx, "big", f, nil, nil); err != nil {
		t.Fatal(err)
	}
	// One copy buffer per worker, plus what the SDK and HTTP stack hold;
	// the ranges themselves are 256 MiB together.
	const limit = 4*mib + 16*mib
	if p := peak(); p > limit {
		t.Errorf("heap grew by %d MiB, want at most %d MiB", p/mib, limit/mib)
	} else {
		t.Logf("heap grew by at most %d MiB", p/mib)
	}
}

// memFile is an io.WriterAt in memory.
type memFile struct {
	mu      sync.Mutex
	buf     []byte
	written int
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(f.buf)) {
		f.buf = append(f.buf, make([]byte, end-int64(len(f.buf)))...)
	}
	f.written += len(p)
	return copy(f.buf[off:], p), nil
}

// size is how many bytes were written, overwrites included.
func (f *memFile) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}

type failingWriter struct{ err error }

func (w failingWriter) WriteAt([]byte, int64) (int, error) { return 0, w.err }
