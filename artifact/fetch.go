package artifact

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/berth-dev/berth/store"
)

// fileGetter is a store that writes an object into a file itself, in
// parallel ranges at their offsets (store/s3store). start sees the object's
// Info before anything is written; written reports each write, one call at
// a time.
type fileGetter interface {
	GetTo(ctx context.Context, key string, w io.WriterAt, start func(store.Info) error, written func(off, n int64)) (store.Info, error)
}

// fetch writes the data object of m from region r into f, starting at the
// beginning of f, and returns how many bytes it wrote and their SHA-256.
// The caller compares both with the manifest.
func (c *Client) fetch(ctx context.Context, r Region, m Manifest, f *os.File) (int64, string, error) {
	if g, ok := r.Store.(fileGetter); ok {
		return c.fetchTo(ctx, g, r, m, f)
	}
	rc, info, err := r.Store.Get(ctx, m.Object, store.Range{})
	if err != nil {
		return 0, "", missingData(m, err)
	}
	defer rc.Close()
	if err := checkSize(info, m); err != nil {
		return 0, "", err
	}
	bar := c.bar(r.Name, m.Size)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h, barWriter{bar}), ctxReader{ctx, rc})
	if err != nil {
		err = fmt.Errorf("transfer: %w", err)
	}
	bar.Done(err)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// fetchTo lets the store write the ranges of the object into f in parallel,
// without a copy through this process, while a goroutine hashes f in order
// as the written part at its start grows, reading it back from the page
// cache. Hashing overlaps the transfer, so it ends soon after the last write.
func (c *Client) fetchTo(ctx context.Context, g fileGetter, r Region, m Manifest, f *os.File) (int64, string, error) {
	hr := newOrderedHasher(f)
	defer hr.stop()
	var bar ProgressBar = nopBar{}
	_, err := g.GetTo(ctx, m.Object, f,
		func(info store.Info) error {
			if err := checkSize(info, m); err != nil {
				return err
			}
			bar = c.bar(r.Name, m.Size)
			return nil
		},
		func(off, n int64) {
			bar.Add(int(n))
			hr.written(off, n)
		})
	if err != nil {
		err = missingData(m, err)
		bar.Done(err)
		return 0, "", err
	}
	n, sum, err := hr.finish()
	if err != nil {
		err = fmt.Errorf("hash download: %w", err)
	}
	bar.Done(err)
	return n, sum, err
}

func missingData(m Manifest, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		// The manifest exists, so the version does: its bytes are lost here.
		return fmt.Errorf("data object %s is missing: %w", m.Object, ErrCorrupt)
	}
	return err
}

func checkSize(info store.Info, m Manifest) error {
	if info.Size != m.Size {
		return fmt.Errorf("data object is %d bytes, manifest says %d: %w", info.Size, m.Size, ErrCorrupt)
	}
	return nil
}

type barWriter struct{ bar ProgressBar }

func (b barWriter) Write(p []byte) (int, error) { b.bar.Add(len(p)); return len(p), nil }

// orderedHasher hashes a file whose parts are written out of order: it
// follows the end of the contiguous written part from offset 0 and reads
// each newly completed stretch back, in order, on its own goroutine. Behind
// it, it starts the writeback of what it hashed, so that the disk writes
// during the transfer rather than all in the fsync at its end.
type orderedHasher struct {
	f       *os.File
	h       hash.Hash
	flushed int64 // writeback started for [0, flushed)

	mu      sync.Mutex
	wake    *sync.Cond
	ready   int64      // [0, ready) is written
	pending [][2]int64 // written spans beyond ready, sorted by start
	closed  bool       // no more writes
	stopped bool       // give up

	done   chan struct{}
	hashed int64 // set by the goroutine before done closes
	err    error
}

// writebackChunk is how much hashed data waits before its writeback starts.
const writebackChunk = 8 << 20

func newOrderedHasher(f *os.File) *orderedHasher {
	o := &orderedHasher{f: f, h: sha256.New(), done: make(chan struct{})}
	o.wake = sync.NewCond(&o.mu)
	go o.run()
	return o
}

// written records that [off, off+n) is in the file.
func (o *orderedHasher) written(off, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if off != o.ready {
		// Each range is written front to back, so a new span mostly
		// continues a pending one: merged, the list stays as short as the
		// number of ranges in flight.
		end := off + n
		i, _ := slices.BinarySearchFunc(o.pending, off, func(s [2]int64, off int64) int { return cmp.Compare(s[0], off) })
		switch {
		case i > 0 && o.pending[i-1][1] == off:
			o.pending[i-1][1] = end
			if i < len(o.pending) && o.pending[i][0] == end {
				o.pending[i-1][1] = o.pending[i][1]
				o.pending = slices.Delete(o.pending, i, i+1)
			}
		case i < len(o.pending) && o.pending[i][0] == end:
			o.pending[i][0] = off
		default:
			o.pending = slices.Insert(o.pending, i, [2]int64{off, end})
		}
		return
	}
	o.ready += n
	for len(o.pending) > 0 && o.pending[0][0] <= o.ready {
		o.ready = max(o.ready, o.pending[0][1])
		o.pending = o.pending[1:]
	}
	o.wake.Signal()
}

func (o *orderedHasher) run() {
	defer close(o.done)
	buf := make([]byte, 1<<20)
	for {
		o.mu.Lock()
		for o.hashed == o.ready && !o.closed && !o.stopped {
			o.wake.Wait()
		}
		ready, stopped := o.ready, o.stopped
		o.mu.Unlock()
		if stopped || o.hashed == ready {
			return
		}
		for o.hashed < ready {
			b := buf[:min(int64(len(buf)), ready-o.hashed)]
			if _, err := o.f.ReadAt(b, o.hashed); err != nil {
				o.err = err
				return
			}
			o.h.Write(b)
			o.hashed += int64(len(b))
			if o.hashed-o.flushed >= writebackChunk {
				startWriteback(o.f, o.flushed, o.hashed-o.flushed)
				o.flushed = o.hashed
			}
		}
	}
}

// finish waits until everything written is hashed and returns the length
// of the contiguous written part and its SHA-256.
func (o *orderedHasher) finish() (int64, string, error) {
	o.mu.Lock()
	o.closed = true
	o.wake.Signal()
	o.mu.Unlock()
	<-o.done
	if o.err != nil {
		return 0, "", o.err
	}
	return o.hashed, hex.EncodeToString(o.h.Sum(nil)), nil
}

// stop ends the goroutine without waiting for the hash.
func (o *orderedHasher) stop() {
	o.mu.Lock()
	o.stopped = true
	o.wake.Signal()
	o.mu.Unlock()
	<-o.done
}
