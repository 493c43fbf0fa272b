package artifact

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store"
)

// Pointer names, usable where a version is expected. Latest is the highest
// release; LatestPrerelease the highest version including prereleases.
const (
	Latest           = pointer.Latest
	LatestPrerelease = pointer.LatestPrerelease
)

func isPointer(version string) bool { return version == Latest || version == LatestPrerelease }

func isPrerelease(version string) bool {
	v, err := ParseVersion(version)
	return err == nil && len(v.Pre) > 0
}

// compareLatest orders candidates for the latest pointer: any release above
// any prerelease, then by version. A store written before latest-prerelease
// existed may hold a prerelease there, which the next release replaces.
func compareLatest(a, b string) int {
	if pa, pb := isPrerelease(a), isPrerelease(b); pa != pb {
		if pb {
			return 1
		}
		return -1
	}
	return CompareVersions(a, b)
}

// readPointer returns the version the named pointer of r holds. A store from
// before latest-prerelease has only latest, which then counted prereleases
// too: it stands in.
func readPointer(ctx context.Context, r Region, project, name string) (string, error) {
	if r.Pointer == nil {
		return "", fmt.Errorf("no %s pointer configured: %w", name, store.ErrNotFound)
	}
	v, err := r.Pointer.Get(ctx, project, name)
	if name == LatestPrerelease && errors.Is(err, store.ErrNotFound) {
		v, err = r.Pointer.Get(ctx, project, Latest)
	}
	if errors.Is(err, store.ErrInvalid) {
		// A damaged pointer object is not the caller's invalid input.
		return "", fmt.Errorf("read %s version: %v: %w", name, err, ErrCorrupt)
	}
	if err != nil {
		return "", fmt.Errorf("read %s version: %w", name, err)
	}
	if _, err := ParseVersion(v); err != nil {
		return "", fmt.Errorf("%s pointer holds %q: %w", name, v, ErrCorrupt)
	}
	return v, nil
}

// pointerMoves is what a stage did to a region's pointers.
type pointerMoves struct {
	latestMoved, prereleaseMoved   bool
	latestBefore, prereleaseBefore string
}

// movePointers moves the pointers of p for a newly staged version: a release
// moves latest forward (force: to it, whatever it held); a prerelease moves
// latest only when forced. Every version moves latest-prerelease forward.
func movePointers(ctx context.Context, p pointer.Pointer, project, version string, force bool) (pointerMoves, error) {
	var pm pointerMoves
	var err error
	if !isPrerelease(version) || force {
		pm.latestMoved, pm.latestBefore, err = p.Advance(ctx, project, Latest, version, compareLatest, force)
	} else {
		pm.latestBefore, err = p.Get(ctx, project, Latest)
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
	}
	if err != nil {
		return pm, fmt.Errorf("move the latest pointer: %w", err)
	}
	// A store from before latest-prerelease: its latest counted prereleases,
	// so the new pointer starts from there.
	if _, err := p.Get(ctx, project, LatestPrerelease); errors.Is(err, store.ErrNotFound) && pm.latestBefore != "" {
		if _, err := ParseVersion(pm.latestBefore); err == nil {
			if _, _, err := p.Advance(ctx, project, LatestPrerelease, pm.latestBefore, CompareVersions, false); err != nil {
				return pm, fmt.Errorf("move the %s pointer: %w", LatestPrerelease, err)
			}
		}
	}
	pm.prereleaseMoved, pm.prereleaseBefore, err = p.Advance(ctx, project, LatestPrerelease, version, CompareVersions, false)
	if err != nil {
		return pm, fmt.Errorf("move the %s pointer: %w", LatestPrerelease, err)
	}
	return pm, nil
}
