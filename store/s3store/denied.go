package s3store

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/store"
)

// S3 answers GET and HEAD of a missing key with 404 only to callers allowed
// s3:ListBucket on the bucket, and that check carries no s3:prefix: berth's
// own policies, which allow listing only under the project prefix, get 403
// AccessDenied for every missing key. resolveDenied tells the two apart by
// listing the key itself as prefix, which those policies do allow. It costs
// one request, and only after a 403.

// readDenied runs a read of key and resolves a 403 with resolveDenied.
// When the listing shows the key, it may have been created after the read
// was answered (a concurrent stager's manifest): the read is made once
// more, and its answer stands.
func readDenied[T any](ctx context.Context, s *Store, key string, read func() (T, error)) (T, error) {
	v, err := read()
	if err == nil {
		return v, nil
	}
	err, listed := s.resolveDenied(ctx, key, err)
	if !listed {
		return v, err
	}
	return read()
}

// resolveDenied returns err, or a not-found error when err is a 403 on key
// and a listing shows that key does not exist. When the key is listed
// (listed is true), or the listing fails too (no list permission at all,
// bad credentials), the 403 stands.
func (s *Store) resolveDenied(ctx context.Context, key string, err error) (_ error, listed bool) {
	if awserr.HTTPStatus(err) != 403 {
		return err, false
	}
	// GET says why in its body; HEAD has none, and the SDK names the
	// status. Other codes (bad signature, unknown key ID, expired token)
	// are refusals whatever the key, and a listing would only be refused
	// too.
	if code := errorCode(err); code != "AccessDenied" && code != "Forbidden" {
		return err, false
	}
	objKey := s.objectKey(key)
	// A key sorts before every other key it is a prefix of, so the first
	// entry of the listing is the key itself when it exists.
	out, lerr := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(objKey),
		MaxKeys: aws.Int32(1),
	})
	if lerr != nil {
		return err, false
	}
	if len(out.Contents) > 0 && aws.ToString(out.Contents[0].Key) == objKey {
		return err, true
	}
	return withKind(store.ErrNotFound, &missingError{err: err}), false
}

// missingError is a 403 that a listing showed to mean "no such key". It
// keeps the 403 in the chain, for errors.As (request ID, code).
type missingError struct{ err error }

func (e *missingError) Error() string {
	return "key does not exist (S3 answered 403; a listing of the key found nothing)"
}

func (e *missingError) Unwrap() error { return e.err }

// listPrefix lists one key under the store's prefix. It asks what
// HeadBucket would (does the bucket exist, are the credentials good) in a
// way berth's policies allow: HeadBucket needs s3:ListBucket without a
// prefix condition, so it is refused to them even when all is well.
func (s *Store) listPrefix(ctx context.Context) error {
	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(s.objectKey("")),
		MaxKeys: aws.Int32(1),
	})
	return err
}
