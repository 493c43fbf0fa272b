package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/berth-dev/berth/store"
)

// abortTimeout bounds the cleanup of a failed multipart upload, which runs
// on a fresh context because the caller's may be cancelled.
const abortTimeout = 30 * time.Second

// Put writes size bytes from r under key; size -1 means unknown. Small
// objects go up in one PutObject, others in a parallel multipart upload.
// A failed Put leaves neither an object nor an incomplete upload behind,
// except when the server is unreachable for the abort too
// (AbortIncomplete cleans up later). The returned Info has no Modified time.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts store.PutOptions) (store.Info, error) {
	info, err := s.put(ctx, key, r, size, opts)
	if err != nil {
		if k := s.probe(ctx, err); k != nil {
			err = withKind(k, err)
		}
		return store.Info{}, s.fail("put", key, err)
	}
	return info, nil
}

// probe finds the real cause of a write that failed as "unavailable": a
// server refusing a request (bad credentials, missing bucket) may answer and
// close the connection while the body is still being sent, so the client
// sees only a reset. A bodiless request tells. It returns nil when the probe
// adds nothing.
func (s *Store) probe(ctx context.Context, err error) error {
	if classify(err) != store.ErrUnavailable || ctx.Err() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	herr := s.listPrefix(ctx)
	switch k := classify(herr); k {
	case store.ErrPermissionDenied, store.ErrNotFound:
		return k
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, opts store.PutOptions) (store.Info, error) {
	if err := checkKey(key); err != nil {
		return store.Info{}, err
	}
	if opts.IfNoneMatch && opts.IfMatch != "" {
		return store.Info{}, withKind(store.ErrInvalid, errors.New("IfNoneMatch and IfMatch together"))
	}
	if size < -1 {
		return store.Info{}, withKind(store.ErrInvalid, fmt.Errorf("invalid size %d", size))
	}
	if size >= 0 && size <= s.threshold {
		// Buffered whole so that a failing reader sends nothing and the
		// SDK can rewind the body on retries.
		buf := make([]byte, size)
		if err := readExactly(r, buf, size); err != nil {
			return store.Info{}, err
		}
		return s.putObject(ctx, key, buf, opts)
	}
	return s.putMultipart(ctx, key, r, size, opts)
}

// readExactly fills buf from r and checks that r ends there, so a size that
// does not match the stream is an error rather than a truncated object.
func readExactly(r io.Reader, buf []byte, size int64) error {
	n, eof, err := fill(r, buf)
	if err != nil {
		return readError(err)
	}
	if n < len(buf) {
		return sizeMismatch(size, int64(n))
	}
	if !eof {
		if err := expectEOF(r, size); err != nil {
			return err
		}
	}
	return nil
}

func expectEOF(r io.Reader, size int64) error {
	var one [1]byte
	n, eof, err := fill(r, one[:])
	if err != nil {
		return readError(err)
	}
	if n > 0 || !eof {
		return withKind(store.ErrInvalid, fmt.Errorf("body is longer than size %d", size))
	}
	return nil
}

// readError marks a failure of the caller's reader. It has no kind of its
// own: a network error while reading the source says nothing about this
// store.
func readError(err error) error {
	return withKind(nil, fmt.Errorf("read body: %w", err))
}

func sizeMismatch(size, got int64) error {
	return withKind(store.ErrInvalid, fmt.Errorf("body ended after %d bytes, size is %d", got, size))
}

func (s *Store) putObject(ctx context.Context, key string, body []byte, opts store.PutOptions) (store.Info, error) {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.objectKey(key)),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	}
	if opts.ContentType != "" {
		in.ContentType = aws.String(opts.ContentType)
	}
	if opts.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		in.IfMatch = aws.String(quote(opts.IfMatch))
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return store.Info{}, err
	}
	return store.Info{Key: key, Size: int64(len(body)), ETag: unquote(aws.ToString(out.ETag))}, nil
}

// partSizeFor returns the part size for an object of size bytes (-1 when
// unknown), raised so that the upload stays within 10,000 parts.
func (s *Store) partSizeFor(size int64) (int64, error) {
	ps := s.partSize
	if size > ps*maxParts {
		ps = (size + maxParts - 1) / maxParts
		ps = (ps + 1<<20 - 1) &^ (1<<20 - 1) // round up to a MiB
	}
	if ps > maxPartSize {
		return 0, withKind(store.ErrInvalid, fmt.Errorf("object of %d bytes is larger than S3 allows", size))
	}
	return ps, nil
}

func (s *Store) putMultipart(ctx context.Context, key string, r io.Reader, size int64, opts store.PutOptions) (_ store.Info, err error) {
	partSize, err := s.partSizeFor(size)
	if err != nil {
		return store.Info{}, err
	}
	pool := newBufPool(s.concurrency+1, partSize)

	var total int64
	// readPart fills buf with the next part and reports whether the stream
	// is known to have ended with it.
	readPart := func(buf []byte) (int, bool, error) {
		want := int64(len(buf))
		if size >= 0 {
			want = min(want, size-total)
		}
		n, eof, err := fill(r, buf[:want])
		total += int64(n)
		if err != nil {
			return n, false, readError(err)
		}
		if size < 0 {
			return n, eof, nil
		}
		if int64(n) < want {
			return n, false, sizeMismatch(size, total)
		}
		if total == size {
			if !eof {
				if err := expectEOF(r, size); err != nil {
					return n, false, err
				}
			}
			return n, true, nil
		}
		return n, false, nil
	}

	// The first part is read before anything is created: a stream of
	// unknown size that fits in it goes up in one request, and a reader
	// that fails at once leaves nothing to clean up.
	buf, err := pool.get(ctx)
	if err != nil {
		return store.Info{}, err
	}
	n, last, err := readPart(buf)
	if err != nil {
		return store.Info{}, err
	}
	if size < 0 && last {
		return s.putObject(ctx, key, buf[:n], opts)
	}

	// Fail before uploading gigabytes that the precondition on Complete
	// would reject anyway. Complete still checks; this is only early.
	if err := s.checkPrecondition(ctx, key, opts); err != nil {
		return store.Info{}, err
	}

	objKey := s.objectKey(key)
	create := &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(s.bucket),
		Key:               aws.String(objKey),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	}
	if opts.ContentType != "" {
		create.ContentType = aws.String(opts.ContentType)
	}
	created, err := s.client.CreateMultipartUpload(ctx, create)
	if err != nil {
		return store.Info{}, err
	}
	uploadID := created.UploadId
	defer func() {
		if err != nil {
			if abortErr := s.abort(ctx, objKey, uploadID); abortErr != nil {
				err = fmt.Errorf("%w (abort of the upload failed too: %v)", err, abortErr)
			}
		}
	}()

	uctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		parts []types.CompletedPart
	)
	upload := func(num int32, buf []byte, n int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pool.put(buf)
			out, err := s.client.UploadPart(uctx, &s3.UploadPartInput{
				Bucket:            aws.String(s.bucket),
				Key:               aws.String(objKey),
				UploadId:          uploadID,
				PartNumber:        aws.Int32(num),
				Body:              bytes.NewReader(buf[:n]),
				ContentLength:     aws.Int64(int64(n)),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
			})
			if err != nil {
				cancel(fmt.Errorf("upload part %d: %w", num, err))
				return
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{
				PartNumber:    aws.Int32(num),
				ETag:          out.ETag,
				ChecksumCRC32: out.ChecksumCRC32,
			})
			mu.Unlock()
		}()
	}

	num := int32(1)
	upload(num, buf, n)
	for !last {
		if num == maxParts {
			err = withKind(store.ErrInvalid, fmt.Errorf("stream is longer than %d parts of %d bytes; pass its size to Put", maxParts, partSize))
			break
		}
		if buf, err = pool.get(uctx); err != nil {
			break
		}
		if n, last, err = readPart(buf); err != nil {
			pool.put(buf)
			break
		}
		if n == 0 {
			// A stream of unknown size that ended on a part boundary.
			pool.put(buf)
			break
		}
		num++
		upload(num, buf, n)
	}
	if err != nil {
		cancel(err)
	}
	wg.Wait()
	if uctx.Err() != nil {
		return store.Info{}, context.Cause(uctx)
	}

	slices.SortFunc(parts, func(a, b types.CompletedPart) int {
		return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber))
	})
	complete := &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(objKey),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if opts.IfNoneMatch {
		complete.IfNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		complete.IfMatch = aws.String(quote(opts.IfMatch))
	}
	out, err := s.client.CompleteMultipartUpload(ctx, complete)
	if err != nil {
		return store.Info{}, err
	}
	return store.Info{Key: key, Size: total, ETag: unquote(aws.ToString(out.ETag))}, nil
}

// checkPrecondition tells whether opts can hold for key right now.
func (s *Store) checkPrecondition(ctx context.Context, key string, opts store.PutOptions) error {
	if !opts.IfNoneMatch && opts.IfMatch == "" {
		return nil
	}
	info, err := s.stat(ctx, key)
	switch {
	case err != nil && opts.IfNoneMatch && keyMissing(err):
		return nil
	case err != nil:
		return err
	case opts.IfNoneMatch:
		return withKind(store.ErrPreconditionFailed, errors.New("object already exists"))
	case info.ETag != unquote(opts.IfMatch):
		return withKind(store.ErrPreconditionFailed, fmt.Errorf("object has ETag %s, want %s", info.ETag, unquote(opts.IfMatch)))
	}
	return nil
}

// abort removes an upload on a fresh context: the caller's may be the
// reason we are aborting.
func (s *Store) abort(ctx context.Context, objKey string, uploadID *string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(objKey),
		UploadId: uploadID,
	})
	if err != nil && errorCode(err) != "NoSuchUpload" {
		return err
	}
	return nil
}
