// Package errkind holds the kinds of error that every layer of berth shares:
// stores, AWS callers, the artifact library, the CLI and the hub. Callers
// test them with errors.Is; the CLI maps them to exit codes and the hub to
// HTTP statuses, each in one place.
package errkind

import "errors"

// The kinds. A package that wants its own wording declares a sentinel with
// New, which is still its kind for errors.Is.
var (
	// NotFound: the thing asked for does not exist.
	NotFound = errors.New("not found")
	// Conflict: the request contradicts what exists; nothing was changed.
	Conflict = errors.New("conflict")
	// PreconditionFailed: a conditional write's condition did not hold
	// (create-only on an existing key, replace-if-unchanged after a change).
	PreconditionFailed = errors.New("precondition failed")
	// PermissionDenied: the caller's credentials are missing, expired or
	// not allowed to do this.
	PermissionDenied = errors.New("permission denied")
	// Unavailable: the service could not be reached or failed after
	// retries; trying again later may work.
	Unavailable = errors.New("unavailable")
	// Invalid: the request itself is wrong; nothing was attempted.
	Invalid = errors.New("invalid request")
	// TooMany: the caller made too many attempts (failed sign-ins) and is
	// held back for a while; trying again later may work.
	TooMany = errors.New("too many requests")
)

// Of returns the kind of err, or nil if it has none. When err carries
// several kinds, the first in the order of the list above wins.
func Of(err error) error {
	for _, k := range []error{NotFound, Conflict, PreconditionFailed, PermissionDenied, TooMany, Unavailable, Invalid} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// New returns a sentinel error with its own message that is also kind
// (errors.Is(New(msg, kind), kind) holds).
func New(msg string, kind error) error { return &sentinel{msg: msg, kind: kind} }

type sentinel struct {
	msg  string
	kind error
}

func (s *sentinel) Error() string { return s.msg }
func (s *sentinel) Unwrap() error { return s.kind }
