package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/store"
)

// Get opens key. With a zero Range, objects larger than PartSize are read
// with Concurrency parallel range requests, all pinned to the ETag seen by
// the first one: if the object is replaced while it is read, Read fails
// with ErrPreconditionFailed instead of returning a mix of both.
// Info.Size is the size of the whole object, also for ranges.
func (s *Store) Get(ctx context.Context, key string, rng store.Range) (io.ReadCloser, store.Info, error) {
	rc, info, err := s.get(ctx, key, rng)
	if err != nil {
		return nil, store.Info{}, s.fail("get", key, err)
	}
	return rc, info, nil
}

func (s *Store) get(ctx context.Context, key string, rng store.Range) (io.ReadCloser, store.Info, error) {
	if err := checkKey(key); err != nil {
		return nil, store.Info{}, err
	}
	if rng.Offset < 0 || rng.Length < 0 {
		return nil, store.Info{}, withKind(store.ErrInvalid, fmt.Errorf("invalid range %+v", rng))
	}
	if rng != (store.Range{}) {
		header := fmt.Sprintf("bytes=%d-", rng.Offset)
		if rng.Length > 0 {
			header += strconv.FormatInt(rng.Offset+rng.Length-1, 10)
		}
		out, err := s.getObject(ctx, key, header, "")
		if err != nil {
			return nil, store.Info{}, err
		}
		return out.Body, s.infoOf(key, out), nil
	}

	first, info, err := s.getFirst(ctx, key)
	if err != nil {
		return nil, store.Info{}, err
	}
	if info.Size <= s.partSize {
		return first, info, nil
	}
	return s.newParallelReader(ctx, key, info, first), info, nil
}

func (s *Store) getObject(ctx context.Context, key, rangeHeader, ifMatch string) (*s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	}
	if rangeHeader != "" {
		in.Range = aws.String(rangeHeader)
	}
	if ifMatch != "" {
		in.IfMatch = aws.String(quote(ifMatch))
	}
	return readDenied(ctx, s, key, func() (*s3.GetObjectOutput, error) { return s.client.GetObject(ctx, in) })
}

func (s *Store) infoOf(key string, out *s3.GetObjectOutput) store.Info {
	size := aws.ToInt64(out.ContentLength)
	// "bytes 0-99/1234": the total is after the slash.
	if cr := aws.ToString(out.ContentRange); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				size = n
			}
		}
	}
	return store.Info{
		Key:      key,
		Size:     size,
		ETag:     unquote(aws.ToString(out.ETag)),
		Modified: aws.ToTime(out.LastModified),
	}
}

var errClosed = errors.New("read after close")

// chunk is one fetched range.
type chunk struct {
	buf []byte
	n   int
	err error
}

// parallelReader delivers an object in order while up to Concurrency
// ranges after the current one are being fetched. The body of the first
// range is read straight from the network; later ranges land in buffers
// from a pool of Concurrency+1.
type parallelReader struct {
	s      *Store
	key    string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pool   *bufPool
	queue  chan chan chunk // pending ranges, in object order

	first     io.ReadCloser // body of range 0 until it is used up
	firstLeft int64
	cur       []byte // unread bytes of the current buffer
	curBuf    []byte // the current buffer, to give back to the pool
	err       error  // sticky
}

func (s *Store) newParallelReader(ctx context.Context, key string, info store.Info, first io.ReadCloser) *parallelReader {
	ctx, cancel := context.WithCancel(ctx)
	r := &parallelReader{
		s:         s,
		key:       key,
		cancel:    cancel,
		pool:      newBufPool(s.concurrency+1, s.partSize),
		queue:     make(chan chan chunk, s.concurrency),
		first:     first,
		firstLeft: s.partSize,
	}
	r.wg.Add(1)
	go r.produce(ctx, info)
	return r
}

// produce queues one fetch per range after the first. The queue's capacity
// bounds the fetches in flight; the pool bounds memory.
func (r *parallelReader) produce(ctx context.Context, info store.Info) {
	defer r.wg.Done()
	defer close(r.queue)
	for off := r.s.partSize; off < info.Size; off += r.s.partSize {
		n := min(r.s.partSize, info.Size-off)
		result := make(chan chunk, 1)
		select {
		case r.queue <- result:
		case <-ctx.Done():
			return
		}
		buf, err := r.pool.get(ctx)
		if err != nil {
			result <- chunk{err: err}
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			result <- r.fetch(ctx, info.ETag, off, buf[:n])
		}()
	}
}

func (r *parallelReader) fetch(ctx context.Context, etag string, off int64, buf []byte) chunk {
	rangeHeader := fmt.Sprintf("bytes=%d-%d", off, off+int64(len(buf))-1)
	out, err := r.s.getObject(ctx, r.key, rangeHeader, etag)
	if err != nil {
		if classify(err) == store.ErrPreconditionFailed {
			err = fmt.Errorf("object changed while it was read: %w", err)
		}
		return chunk{buf: buf, err: err}
	}
	defer out.Body.Close()
	n, _, err := fill(out.Body, buf)
	if err == nil && n < len(buf) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return chunk{buf: buf, err: fmt.Errorf("read range at %d: %w", off, err)}
	}
	return chunk{buf: buf, n: n}
}

func (r *parallelReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.first != nil {
		n, err := r.first.Read(p[:min(int64(len(p)), r.firstLeft)])
		r.firstLeft -= int64(n)
		if r.firstLeft == 0 {
			r.first.Close()
			r.first = nil
			return n, nil
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			r.err = r.s.fail("get", r.key, fmt.Errorf("read range at 0: %w", err))
			return n, r.err
		}
		return n, nil
	}
	for len(r.cur) == 0 {
		if r.curBuf != nil {
			r.pool.put(r.curBuf)
			r.curBuf = nil
		}
		result, ok := <-r.queue
		if !ok {
			r.err = io.EOF
			return 0, io.EOF
		}
		c := <-result
		if c.err != nil {
			if c.buf != nil {
				r.pool.put(c.buf)
			}
			r.err = r.s.fail("get", r.key, c.err)
			return 0, r.err
		}
		r.cur, r.curBuf = c.buf[:c.n], c.buf
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// Close stops the fetches and waits for them to end.
func (r *parallelReader) Close() error {
	r.cancel()
	if r.first != nil {
		r.first.Close()
		r.first = nil
	}
	r.wg.Wait()
	if r.err == nil || r.err == io.EOF {
		r.err = errClosed
	}
	return nil
}
