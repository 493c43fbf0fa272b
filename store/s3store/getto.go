package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/store"
)

const (
	// copyBufSize is what each range worker reads from the network before
	// it writes to the destination: large enough that syscalls are few.
	// Not larger: on Linux 6.18 with ext4, 1 MiB writes into the page cache
	// cost 3-5 times the CPU of 256 KiB ones (measured: 0.6-0.7 s against
	// 0.13-0.15 s per 512 MiB); on tmpfs both cost the same.
	copyBufSize = 256 << 10
	// maxRangeSize caps the ranges of GetTo. Every request costs the server
	// CPU of its own (on MinIO, 1 GiB in 8 MiB ranges took 50% more server
	// CPU than in 64 MiB ones); with ranges written in place their size
	// costs no memory here.
	maxRangeSize = 64 << 20
)

// GetTo writes the whole object key into w at its offsets and returns its
// Info. Concurrency workers fetch ranges and write each straight where it
// belongs, so nothing is buffered beyond one small copy buffer per worker,
// whatever the range size. Ranges are handed out in object order; they are
// large (up to 64 MiB, at least PartSize) while much of the object is left
// and shrink towards its end, so that the workers finish together and a
// caller that consumes the object in order (hashing it) waits little for
// its last bytes. Every range after the first
// is pinned to the first one's ETag: if the object is replaced while it is
// read, GetTo fails with ErrPreconditionFailed instead of writing a mix.
//
// start, when not nil, is called once with the object's Info before
// anything is written; an error from it ends GetTo and is returned as is.
// written, when not nil, is called after each write of bytes
// [off, off+n) to w; its calls never overlap. When GetTo fails, w holds
// an arbitrary part of the object.
func (s *Store) GetTo(ctx context.Context, key string, w io.WriterAt, start func(store.Info) error, written func(off, n int64)) (store.Info, error) {
	var startErr error
	check := func(info store.Info) error {
		if start != nil {
			startErr = start(info)
		}
		return startErr
	}
	info, err := s.getTo(ctx, key, w, check, written)
	if err != nil {
		if startErr != nil && errors.Is(err, startErr) {
			return info, startErr
		}
		return info, s.fail("get", key, err)
	}
	return info, nil
}

func (s *Store) getTo(ctx context.Context, key string, w io.WriterAt, start func(store.Info) error, written func(off, n int64)) (store.Info, error) {
	if err := checkKey(key); err != nil {
		return store.Info{}, err
	}
	first, info, err := s.getFirst(ctx, key)
	if err != nil {
		return store.Info{}, err
	}
	if err := start(info); err != nil {
		first.Close()
		return info, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel(err) })
	}
	var mu sync.Mutex // serialises written
	report := func(off, n int64) {
		if written != nil {
			mu.Lock()
			written(off, n)
			mu.Unlock()
		}
	}
	var (
		nextMu sync.Mutex
		next   = min(s.partSize, info.Size) // the first range is open already
	)
	take := func() (off, n int64, ok bool) {
		nextMu.Lock()
		defer nextMu.Unlock()
		if next >= info.Size {
			return 0, 0, false
		}
		off = next
		n = min(s.rangeSize(info.Size-off), info.Size-off)
		next += n
		return off, n, true
	}

	var wg sync.WaitGroup
	for i := range s.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, min(copyBufSize, s.partSize))
			if i == 0 {
				// The first range's body is open already.
				err := copyAt(ctx, w, 0, min(s.partSize, info.Size), first, buf, report)
				first.Close()
				if err != nil {
					fail(fmt.Errorf("read range at 0: %w", err))
					return
				}
			}
			for ctx.Err() == nil {
				off, n, ok := take()
				if !ok {
					return
				}
				if err := s.fetchAt(ctx, key, info.ETag, w, off, n, buf, report); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return info, firstErr
}

// rangeSize is the size of the next range when left bytes remain: a share
// of them that shrinks as they do (guided scheduling), within
// [PartSize, max(PartSize, maxRangeSize)].
func (s *Store) rangeSize(left int64) int64 {
	return max(s.partSize, min(left/int64(2*s.concurrency), maxRangeSize))
}

// getFirst opens the object's first range, which also tells its size and
// ETag, so that small objects cost one request.
func (s *Store) getFirst(ctx context.Context, key string) (io.ReadCloser, store.Info, error) {
	out, err := s.getObject(ctx, key, fmt.Sprintf("bytes=0-%d", s.partSize-1), "")
	if errorCode(err) == "InvalidRange" || awserr.HTTPStatus(err) == 416 {
		// S3 refuses any range of an empty object.
		out, err = s.getObject(ctx, key, "", "")
	}
	if err != nil {
		return nil, store.Info{}, err
	}
	return out.Body, s.infoOf(key, out), nil
}

// fetchAt fetches n bytes at off, pinned to etag, and writes them to w.
func (s *Store) fetchAt(ctx context.Context, key, etag string, w io.WriterAt, off, n int64, buf []byte, report func(off, n int64)) error {
	out, err := s.getObject(ctx, key, fmt.Sprintf("bytes=%d-%d", off, off+n-1), etag)
	if err != nil {
		if classify(err) == store.ErrPreconditionFailed {
			return fmt.Errorf("object changed while it was read: %w", err)
		}
		return err
	}
	defer out.Body.Close()
	if err := copyAt(ctx, w, off, n, out.Body, buf, report); err != nil {
		return fmt.Errorf("read range at %d: %w", off, err)
	}
	return nil
}

// copyAt copies exactly n bytes from r to w at off through buf. A body
// that ends early is io.ErrUnexpectedEOF; one that goes on is an error too.
func copyAt(ctx context.Context, w io.WriterAt, off, n int64, r io.Reader, buf []byte, report func(off, n int64)) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		m, eof, err := fill(r, buf[:min(int64(len(buf)), n)])
		if m > 0 {
			if _, werr := w.WriteAt(buf[:m], off); werr != nil {
				// No kind: a full disk says nothing about the store.
				return withKind(nil, fmt.Errorf("write at %d: %w", off, werr))
			}
			report(off, int64(m))
			off += int64(m)
			n -= int64(m)
		}
		if err != nil {
			return err
		}
		if eof && n > 0 {
			return io.ErrUnexpectedEOF
		}
	}
	return nil
}
