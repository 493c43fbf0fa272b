package errkind_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/berth-dev/berth/errkind"
)

func TestOf(t *testing.T) {
	own := errkind.New("version not found", errkind.NotFound)
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"nil", nil, nil},
		{"no kind", errors.New("boom"), nil},
		{"wrapped", fmt.Errorf("get key: %w", errkind.Unavailable), errkind.Unavailable},
		{"own sentinel", fmt.Errorf("download: %w", own), errkind.NotFound},
		{"joined, list order wins", errors.Join(errkind.Unavailable, errkind.NotFound), errkind.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errkind.Of(tt.err); got != tt.want {
				t.Errorf("Of(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestNewKeepsItsMessage(t *testing.T) {
	err := errkind.New("invalid configuration", errkind.Invalid)
	if err.Error() != "invalid configuration" {
		t.Errorf("message %q", err)
	}
	if !errors.Is(err, errkind.Invalid) || errors.Is(err, errkind.NotFound) {
		t.Errorf("kind of %v is %v", err, errkind.Of(err))
	}
}
