package awserr

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/errkind"
)

func TestKind(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	for _, tc := range []struct {
		err  error
		want error
	}{
		{api("NoSuchKey"), errkind.NotFound},
		{api("ParameterNotFound"), errkind.NotFound},
		{api("StackSetNotFoundException"), errkind.NotFound},
		{api("PreconditionFailed"), errkind.PreconditionFailed},
		{api("AccessDeniedException"), errkind.PermissionDenied},
		{api("ExpiredToken"), errkind.PermissionDenied},
		{api("ThrottlingException"), errkind.Unavailable},
		{api("InvalidArgument"), errkind.Invalid},
		{api("NoSuchUpload"), nil},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), errkind.Unavailable},
		{context.DeadlineExceeded, errkind.Unavailable},
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
	if !errors.Is(err, errkind.PermissionDenied) || err.Error() != "get parameter /x: api error AccessDeniedException: no" {
		t.Fatalf("Classify = %q", err)
	}
	if Classify(nil) != nil {
		t.Fatal("Classify(nil) != nil")
	}
}
