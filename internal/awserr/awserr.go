// Package awserr sorts errors from aws-sdk-go-v2 calls into the store error
// kinds, so every caller can test them with errors.Is.
package awserr

import (
	"context"
	"errors"
	"net"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/store"
)

type classified struct {
	kind error
	err  error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.kind, c.err} }

// Classify returns err with its kind attached, or err itself when it already
// has a kind or none applies (context cancellation).
func Classify(err error) error {
	if err == nil || store.KindOf(err) != nil {
		return err
	}
	if k := Kind(err); k != nil {
		return &classified{kind: k, err: err}
	}
	return err
}

// Kind returns the store error kind of an SDK error, or nil.
func Kind(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch code := api.ErrorCode(); {
		case code == "NoSuchKey" || code == "NotFound" || code == "NoSuchBucket" || code == "NoSuchUpload" ||
			code == "ParameterNotFound" || strings.HasSuffix(code, "NotFoundException") || code == "NoSuchEntity":
			return store.ErrNotFound
		case code == "PreconditionFailed" || code == "ConditionalRequestConflict":
			return store.ErrPreconditionFailed
		case code == "AccessDenied" || code == "AccessDeniedException" || code == "InvalidAccessKeyId" ||
			code == "SignatureDoesNotMatch" || code == "ExpiredToken" || code == "ExpiredTokenException" ||
			code == "InvalidClientTokenId" || code == "UnrecognizedClientException" || code == "AllAccessDisabled" ||
			code == "InvalidToken" || code == "AuthorizationHeaderMalformed" || code == "UnauthorizedOperation":
			return store.ErrPermissionDenied
		case strings.Contains(code, "Throttl") || code == "SlowDown" || code == "RequestTimeout" ||
			code == "InternalError" || code == "ServiceUnavailable" || code == "InternalServerError":
			return store.ErrUnavailable
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch s := re.HTTPStatusCode(); {
		case s == 404:
			return store.ErrNotFound
		case s == 412:
			return store.ErrPreconditionFailed
		case s == 401 || s == 403:
			return store.ErrPermissionDenied
		case s == 429 || s >= 500:
			return store.ErrUnavailable
		case s >= 400:
			return store.ErrInvalid
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return store.ErrUnavailable
	}
	msg := err.Error()
	if strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "retry quota exceeded") || strings.Contains(msg, "exceeded maximum number of attempts") ||
		strings.Contains(msg, "no such host") || strings.Contains(msg, "EOF") {
		return store.ErrUnavailable
	}
	return nil
}
