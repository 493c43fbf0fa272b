package s3store

import (
	"errors"

	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/store"
)

// fail wraps err into a *store.Error for op on key, sorted into a kind.
func (s *Store) fail(op, key string, err error) error {
	kind := classify(err)
	if errorCode(err) == "NoSuchBucket" {
		err = &bucketError{bucket: s.bucket, err: err}
	}
	return &store.Error{Op: op, Store: s.String(), Key: key, Kind: kind, Err: err}
}

// kindError attaches a kind to an error this package makes itself.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

func withKind(kind, err error) error { return &kindError{kind: kind, err: err} }

// bucketError says plainly that the bucket is missing: "not found" alone
// reads as if the key were.
type bucketError struct {
	bucket string
	err    error
}

func (e *bucketError) Error() string {
	return "bucket " + e.bucket + " does not exist: " + e.err.Error()
}
func (e *bucketError) Unwrap() error { return e.err }

// classify returns the store error kind of an error from the SDK or from
// this package, or nil when it has none.
func classify(err error) error {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	return awserr.Kind(err)
}

func errorCode(err error) string { return awserr.Code(err) }
