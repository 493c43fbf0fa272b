// Package s3store is the store.Store driver for Amazon S3 and S3-compatible
// servers such as MinIO. It does its own parallel multipart uploads and
// ranged downloads so that memory stays bounded whatever the object size.
package s3store

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/store"
)

// Limits and defaults of multipart transfers.
const (
	MinPartSize        = 5 << 20 // S3's minimum for every part but the last
	DefaultPartSize    = 8 << 20
	DefaultConcurrency = 4

	maxParts    = 10000   // S3's limit on parts per upload
	maxPartSize = 5 << 30 // S3's limit on one part
)

// Options tune transfers. The zero value is ready to use.
type Options struct {
	// PartSize is the size of multipart upload parts and of parallel
	// download ranges. Default 8 MiB, at least 5 MiB. Put raises it for
	// objects that would otherwise need more than 10,000 parts.
	PartSize int64
	// Concurrency is how many parts or ranges are in flight at once.
	// Default 4. At most Concurrency+1 part buffers are held in memory.
	Concurrency int
	// MultipartThreshold: objects of known size up to this many bytes are
	// sent with one PutObject. Default PartSize. A stream of unknown size
	// is sent with one PutObject when it fits in one part.
	MultipartThreshold int64
}

// Store keeps objects in one bucket under an optional key prefix.
type Store struct {
	client      *s3.Client
	bucket      string
	prefix      string // without leading or trailing "/"; may be empty
	partSize    int64
	concurrency int
	threshold   int64
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Cleaner = (*Store)(nil)
)

// New returns a store for bucket. Keys are stored under prefix + "/" when
// prefix is not empty.
func New(client *s3.Client, bucket, prefix string, opts Options) *Store {
	s := &Store{
		client:      client,
		bucket:      bucket,
		prefix:      strings.Trim(prefix, "/"),
		partSize:    opts.PartSize,
		concurrency: opts.Concurrency,
		threshold:   opts.MultipartThreshold,
	}
	if s.partSize <= 0 {
		s.partSize = DefaultPartSize
	}
	s.partSize = min(max(s.partSize, MinPartSize), maxPartSize)
	if s.concurrency <= 0 {
		s.concurrency = DefaultConcurrency
	}
	if s.threshold <= 0 {
		s.threshold = s.partSize
	}
	return s
}

// String returns "s3://bucket/prefix".
func (s *Store) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + s.prefix
}

// objectKey maps a store key to an S3 key.
func (s *Store) objectKey(key string) string {
	if s.prefix == "" {
		return key
	}
	return s.prefix + "/" + key
}

// storeKey maps an S3 key back to a store key.
func (s *Store) storeKey(objKey string) string {
	if s.prefix == "" {
		return objKey
	}
	return strings.TrimPrefix(objKey, s.prefix+"/")
}

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") {
		return withKind(store.ErrInvalid, fmt.Errorf("invalid key %q", key))
	}
	return nil
}

// Stat returns the size, ETag and modification time of key.
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	if err := checkKey(key); err != nil {
		return store.Info{}, s.fail("stat", key, err)
	}
	info, err := s.stat(ctx, key)
	if err != nil {
		return store.Info{}, s.fail("stat", key, err)
	}
	return info, nil
}

func (s *Store) stat(ctx context.Context, key string) (store.Info, error) {
	out, err := readDenied(ctx, s, key, func() (*s3.HeadObjectOutput, error) {
		return s.client.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(s.bucket),
			Key:    aws.String(s.objectKey(key)),
		})
	})
	if err != nil {
		return store.Info{}, err
	}
	return store.Info{
		Key:      key,
		Size:     aws.ToInt64(out.ContentLength),
		ETag:     unquote(aws.ToString(out.ETag)),
		Modified: aws.ToTime(out.LastModified),
	}, nil
}

// List returns the objects under prefix, sorted by key.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Info, error) {
	var infos []store.Info
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.objectKey(prefix)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.fail("list", prefix, err)
		}
		for _, o := range page.Contents {
			infos = append(infos, store.Info{
				Key:      s.storeKey(aws.ToString(o.Key)),
				Size:     aws.ToInt64(o.Size),
				ETag:     unquote(aws.ToString(o.ETag)),
				Modified: aws.ToTime(o.LastModified),
			})
		}
	}
	slices.SortFunc(infos, func(a, b store.Info) int { return strings.Compare(a.Key, b.Key) })
	return infos, nil
}

// Delete removes key. A missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return s.fail("delete", key, err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil && !keyMissing(err) {
		return s.fail("delete", key, err)
	}
	return nil
}

// keyMissing reports whether err says the key does not exist, as opposed
// to the bucket.
func keyMissing(err error) bool {
	return classify(err) == store.ErrNotFound && errorCode(err) != "NoSuchBucket"
}

// AbortIncomplete aborts the multipart uploads under prefix and returns
// how many it aborted. It cannot tell abandoned uploads from live ones: an
// upload that another Put is still sending under prefix is aborted too,
// and that Put fails. AbortIncompleteOlderThan spares recent uploads.
func (s *Store) AbortIncomplete(ctx context.Context, prefix string) (int, error) {
	return s.AbortIncompleteOlderThan(ctx, prefix, 0)
}

// AbortIncompleteOlderThan is AbortIncomplete for uploads begun at least
// age ago by the server's clock, as far as ours agrees with it.
func (s *Store) AbortIncompleteOlderThan(ctx context.Context, prefix string, age time.Duration) (int, error) {
	full := s.objectKey(prefix)
	// MinIO filters uploads by exact key only, and lists a whole bucket's
	// uploads only from a cache of those begun since it started. Asking
	// both ways finds what either can see; on S3 the second is redundant.
	uploads := map[string]string{} // upload ID -> key
	for _, listPrefix := range []string{full, ""} {
		in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket)}
		if listPrefix != "" {
			in.Prefix = aws.String(listPrefix)
		}
		p := s3.NewListMultipartUploadsPaginator(s.client, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return 0, s.fail("abort incomplete", prefix, err)
			}
			for _, u := range page.Uploads {
				key := aws.ToString(u.Key)
				if !strings.HasPrefix(key, full) || time.Since(aws.ToTime(u.Initiated)) < age {
					continue
				}
				uploads[aws.ToString(u.UploadId)] = key
			}
		}
		if full == "" {
			break
		}
	}
	n := 0
	for id, key := range uploads {
		_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(s.bucket),
			Key:      aws.String(key),
			UploadId: aws.String(id),
		})
		if err != nil && errorCode(err) != "NoSuchUpload" {
			return n, s.fail("abort incomplete", s.storeKey(key), err)
		}
		n++
	}
	return n, nil
}

// unquote strips the quotes S3 puts around ETags, so that callers store
// and compare plain values.
func unquote(etag string) string {
	return strings.Trim(etag, `"`)
}

// quote puts them back for If-Match headers.
func quote(etag string) string {
	if strings.HasPrefix(etag, `"`) || etag == "*" {
		return etag
	}
	return `"` + etag + `"`
}

// bufPool hands out at most n buffers of size bytes, allocated on first use.
type bufPool struct {
	size int64
	bufs chan []byte
}

func newBufPool(n int, size int64) *bufPool {
	p := &bufPool{size: size, bufs: make(chan []byte, n)}
	for range n {
		p.bufs <- nil
	}
	return p
}

// get waits for a free buffer.
func (p *bufPool) get(ctx context.Context) ([]byte, error) {
	select {
	case b := <-p.bufs:
		if b == nil {
			b = make([]byte, p.size)
		}
		return b, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (p *bufPool) put(b []byte) { p.bufs <- b[:cap(b)] }

// fill reads into buf until it is full or r reports io.EOF. Any other error
// is a failure, io.ErrUnexpectedEOF included: a stream cut short must not
// pass for a complete one.
func fill(r io.Reader, buf []byte) (n int, eof bool, err error) {
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
	return n, false, nil
}
