package s3store

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

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
	if errors.Is(err, context.Canceled) {
		return nil // the caller gave up; nothing is wrong with the store
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return store.ErrUnavailable
	}
	switch errorCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchBucket":
		return store.ErrNotFound
	case "NoSuchUpload":
		return nil // our upload was aborted by someone else; the key is not missing
	case "PreconditionFailed", "ConditionalRequestConflict":
		return store.ErrPreconditionFailed
	case "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled",
		"AccountProblem", "InvalidSecurity", "RequestTimeTooSkewed":
		return store.ErrPermissionDenied
	case "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
		"TooManyRequestsException", "RequestThrottled", "ServiceUnavailable",
		"InternalError", "RequestTimeout", "XMinioServerNotInitialized":
		return store.ErrUnavailable
	case "InvalidArgument", "InvalidRange", "InvalidRequest", "InvalidPart",
		"InvalidPartOrder", "EntityTooSmall", "EntityTooLarge", "KeyTooLongError",
		"InvalidBucketName", "MalformedXML", "BadDigest", "InvalidDigest",
		"XAmzContentChecksumMismatch", "InvalidObjectName", "MethodNotAllowed":
		return store.ErrInvalid
	}
	if status := httpStatus(err); status != 0 {
		switch {
		case status == 404:
			return store.ErrNotFound
		case status == 412:
			return store.ErrPreconditionFailed
		case status == 401 || status == 403:
			return store.ErrPermissionDenied
		case status == 429 || status >= 500:
			return store.ErrUnavailable
		case status == 400 || status == 416:
			return store.ErrInvalid
		}
	}
	var quota ratelimit.QuotaExceededError
	var netErr net.Error
	var sendErr *smithyhttp.RequestSendError
	switch {
	case errors.As(err, &quota),
		errors.As(err, &netErr),
		errors.As(err, &sendErr),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF):
		return store.ErrUnavailable
	}
	return nil
}

func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		return respErr.HTTPStatusCode()
	}
	var smithyErr *smithyhttp.ResponseError
	if errors.As(err, &smithyErr) {
		return smithyErr.HTTPStatusCode()
	}
	return 0
}
