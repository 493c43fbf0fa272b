// Package pointer keeps the "latest version" of each project, per region,
// either as an object in the artifact store or as an SSM parameter.
// The latest version only moves forward unless the caller forces it.
package pointer

import (
	"context"
)

// Pointer reads and advances a project's latest version.
type Pointer interface {
	// Get returns the latest version; an error of kind store.ErrNotFound
	// when none was ever set.
	Get(ctx context.Context, project string) (string, error)
	// Advance sets the latest version to version if cmp(version, current) > 0,
	// or unconditionally when force is set. It reports whether the pointer
	// moved and what it held before ("" when unset).
	Advance(ctx context.Context, project, version string, cmp func(a, b string) int, force bool) (moved bool, previous string, err error)
	String() string
}

// maxAttempts bounds the read-compare-write loop under contention.
const maxAttempts = 10
