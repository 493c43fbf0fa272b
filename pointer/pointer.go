// Package pointer keeps the "latest version" pointers of each project, per
// region, either as objects in the artifact store or as SSM parameters.
// A pointer only moves forward unless the caller forces it.
package pointer

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/store"
)

// Pointer names. Latest is the highest release, LatestPrerelease the highest
// version including prereleases; the caller decides which versions move
// which.
const (
	Latest           = "latest"
	LatestPrerelease = "latest-prerelease"
)

// Pointer reads and advances a project's named pointers.
type Pointer interface {
	// Get returns the version the pointer holds; an error of kind
	// store.ErrNotFound when it was never set.
	Get(ctx context.Context, project, name string) (string, error)
	// Advance sets the pointer to version if cmp(version, current) > 0,
	// or unconditionally when force is set. It reports whether the pointer
	// moved and what it held before ("" when unset).
	Advance(ctx context.Context, project, name, version string, cmp func(a, b string) int, force bool) (moved bool, previous string, err error)
	String() string
}

// maxAttempts bounds the read-compare-write loop under contention.
const maxAttempts = 10

// path is where a pointer lives below the project, without the in-store
// ".json". Latest keeps the place it always had, so old stores work; the
// others end in "/latest" as well, which the artifact-write policy's
// PROJECT/latest patterns (IAM wildcards span "/") already allow.
func path(name string) (string, error) {
	switch name {
	case Latest:
		return "latest", nil
	case LatestPrerelease:
		return "prerelease/latest", nil
	}
	return "", fmt.Errorf("unknown pointer %q (use %s or %s): %w", name, Latest, LatestPrerelease, store.ErrInvalid)
}
