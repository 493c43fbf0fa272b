// Package store defines the contract every artifact store driver meets:
// conditional writes, ranged reads, listing and deletion, with errors sorted
// into kinds that callers test with errors.Is.
package store

import (
	"context"
	"io"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// Error kinds. Drivers wrap their errors so that errors.Is(err, ErrNotFound)
// and friends answer the question callers actually have. They are berth's
// shared kinds (package errkind).
var (
	ErrNotFound           = errkind.NotFound
	ErrPreconditionFailed = errkind.PreconditionFailed
	ErrPermissionDenied   = errkind.PermissionDenied
	ErrUnavailable        = errkind.Unavailable
	ErrInvalid            = errkind.Invalid
)

// Store is a flat key space of immutable-by-convention objects.
// Keys use "/" as separator and never start with "/".
type Store interface {
	// Put writes size bytes from r under key. size may be -1 when unknown.
	// With opts.IfNoneMatch the write fails with ErrPreconditionFailed if key
	// exists; with opts.IfMatch it fails unless the current ETag equals it.
	// A failed Put leaves nothing behind under key.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (Info, error)
	// Get opens key for reading. A zero Range reads the whole object.
	Get(ctx context.Context, key string, rng Range) (io.ReadCloser, Info, error)
	// Stat returns what Get would return without the body.
	Stat(ctx context.Context, key string) (Info, error)
	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String names the store for messages ("s3://bucket/prefix", "file:///dir").
	String() string
}

// PutOptions carries the preconditions of a write.
type PutOptions struct {
	IfNoneMatch bool   // create only
	IfMatch     string // replace only if the current ETag is this one
	ContentType string
}

// Range selects bytes [Offset, Offset+Length). Length 0 means "to the end".
type Range struct {
	Offset int64
	Length int64
}

// Info describes a stored object.
type Info struct {
	Key      string
	Size     int64
	ETag     string
	Modified time.Time
}

// Cleaner is implemented by drivers that can leave incomplete uploads behind
// (S3 multipart). Abandoned uploads under prefix are removed.
type Cleaner interface {
	AbortIncomplete(ctx context.Context, prefix string) (int, error)
}
