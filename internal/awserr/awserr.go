// Package awserr sorts errors from aws-sdk-go-v2 calls into the store error
// kinds, so every caller can test them with errors.Is.
package awserr

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/berth-dev/berth/errkind"
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
	if err == nil || errkind.Of(err) != nil {
		return err
	}
	if k := Kind(err); k != nil {
		return &classified{kind: k, err: err}
	}
	return err
}

// Kind returns the store error kind of an SDK error, or nil when it has
// none: a cancelled context, or an S3 upload someone else aborted
// (NoSuchUpload: the key is not missing).
func Kind(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil // the caller gave up; nothing is wrong with the service
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errkind.Unavailable
	}
	switch code := Code(err); code {
	case "NoSuchUpload":
		return nil
	case "NoSuchKey", "NotFound", "NoSuchBucket", "ParameterNotFound", "NoSuchEntity":
		return errkind.NotFound
	case "PreconditionFailed", "ConditionalRequestConflict":
		return errkind.PreconditionFailed
	case "AccessDenied", "AccessDeniedException", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"ExpiredToken", "ExpiredTokenException", "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled",
		"AccountProblem", "InvalidSecurity", "RequestTimeTooSkewed", "InvalidClientTokenId",
		"UnrecognizedClientException", "AuthorizationHeaderMalformed", "UnauthorizedOperation":
		return errkind.PermissionDenied
	case "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
		"TooManyRequestsException", "RequestThrottled", "ServiceUnavailable", "InternalServerError",
		"InternalError", "RequestTimeout", "XMinioServerNotInitialized":
		return errkind.Unavailable
	case "InvalidArgument", "InvalidRange", "InvalidRequest", "InvalidPart",
		"InvalidPartOrder", "EntityTooSmall", "EntityTooLarge", "KeyTooLongError",
		"InvalidBucketName", "MalformedXML", "BadDigest", "InvalidDigest",
		"XAmzContentChecksumMismatch", "InvalidObjectName", "MethodNotAllowed":
		return errkind.Invalid
	default:
		if strings.HasSuffix(code, "NotFoundException") {
			return errkind.NotFound
		}
	}
	if status := HTTPStatus(err); status != 0 {
		switch {
		case status == 404:
			return errkind.NotFound
		case status == 412:
			return errkind.PreconditionFailed
		case status == 401 || status == 403:
			return errkind.PermissionDenied
		case status == 429 || status >= 500:
			return errkind.Unavailable
		case status == 400 || status == 416:
			return errkind.Invalid
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
		return errkind.Unavailable
	}
	return nil
}

// Code returns the API error code of err, or "".
func Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// HTTPStatus returns the HTTP status of a service response error, or 0.
func HTTPStatus(err error) int {
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
