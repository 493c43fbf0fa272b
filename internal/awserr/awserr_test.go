package awserr

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/store"
)

func TestKind(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	for _, tc := range []struct {
		err  error
		want error
	}{
		{api("NoSuchKey"), store.ErrNotFound},
		{api("ParameterNotFound"), store.ErrNotFound},
		{api("StackSetNotFoundException"), store.ErrNotFound},
		{api("PreconditionFailed"), store.ErrPreconditionFailed},
		{api("AccessDeniedException"), store.ErrPermissionDenied},
		{api("ExpiredToken"), store.ErrPermissionDenied},
		{api("ThrottlingException"), store.ErrUnavailable},
		{api("InvalidArgument"), store.ErrInvalid},
		{api("NoSuchUpload"), nil},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), store.ErrUnavailable},
		{context.DeadlineExceeded, store.ErrUnavailable},
		{context.Canceled, nil},
		{errors.New("something else"), nil},
	} {
		if got := Kind(tc.err); got != tc.want {
			t.Errorf("Kind(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestClassifyKeepsMessageAndKind(t *testing.T) {
	err := Classify(fmt.Errorf("get parameter /x: %w", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}))
	if !errors.Is(err, store.ErrPermissionDenied) || err.Error() != "get parameter /x: api error AccessDeniedException: no" {
		t.Fatalf("Classify = %q", err)
	}
	if Classify(nil) != nil {
		t.Fatal("Classify(nil) != nil")
	}
}
