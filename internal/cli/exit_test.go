package cli

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/cache"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/store"
)

func TestExitCode(t *testing.T) {
	region := func(name string, err error) *artifact.RegionError {
		return &artifact.RegionError{Region: name, Err: err}
	}
	corrupt := fmt.Errorf("sha256 mismatch: %w", artifact.ErrCorrupt)
	missing := fmt.Errorf("get: %w", store.ErrNotFound)
	down := fmt.Errorf("dial: %w", store.ErrUnavailable)
	denied := fmt.Errorf("AccessDenied: %w", store.ErrPermissionDenied)
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"corrupt everywhere", &artifact.MultiError{Op: "download", Kind: artifact.ErrCorrupt, Errors: []*artifact.RegionError{region("a", corrupt), region("b", corrupt)}}, ExitNo},
		{"corrupt and missing", &artifact.MultiError{Op: "download", Kind: artifact.ErrCorrupt, Errors: []*artifact.RegionError{region("a", corrupt), region("b", missing)}}, ExitNo},
		{"corrupt and down", &artifact.MultiError{Op: "download", Errors: []*artifact.RegionError{region("a", corrupt), region("b", down)}}, ExitUnavailable},
		{"corrupt and refused", &artifact.MultiError{Op: "download", Errors: []*artifact.RegionError{region("a", corrupt), region("b", denied)}}, ExitDenied},
		{"missing everywhere", &artifact.MultiError{Op: "download", Kind: artifact.ErrVersionNotFound, Errors: []*artifact.RegionError{region("a", missing)}}, ExitNo},
		{"interrupted", fmt.Errorf("read artifact file: %w", context.Canceled), ExitInterrupted},
		{"reworded", reworded{"interrupted", fmt.Errorf("x: %w", context.Canceled)}, ExitInterrupted},
		{"invalid", fmt.Errorf("x: %w", artifact.ErrInvalid), ExitUsage},
		{"cache archive refused", fmt.Errorf("restore k: %w", cache.ErrUnsafe), ExitNo},
		{"cache corrupt everywhere", errors.Join(fmt.Errorf("a: %w", cache.ErrCorrupt), fmt.Errorf("b: %w", cache.ErrCorrupt)), ExitNo},
		{"cache corrupt and down", errors.Join(fmt.Errorf("a: %w", cache.ErrCorrupt), down), ExitUnavailable},
		{"cache miss", fmt.Errorf("restore k: %w", cache.ErrMiss), ExitNo},
		{"hub holds the address back", fmt.Errorf("hub h: too many attempts: %w", errkind.TooMany), ExitUnavailable},
		{"unknown", errors.New("boom"), ExitUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
