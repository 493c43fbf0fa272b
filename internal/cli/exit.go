package cli

import (
	"context"
	"errors"
	"os"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/cache"
	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/hubclient"
	"github.com/berth-dev/berth/org"
	"github.com/berth-dev/berth/store"
)

// Exit codes; the table in the root command's help documents them.
const (
	ExitOK          = 0
	ExitNo          = 1
	ExitUsage       = 2
	ExitConflict    = 3
	ExitDenied      = 4
	ExitUnavailable = 5
	ExitInterrupted = 130
)

// errUsage marks usage errors: bad flags, arguments or input.
var errUsage = errors.New("usage")

type usageError struct{ err error }

func (e usageError) Error() string   { return e.err.Error() }
func (e usageError) Unwrap() []error { return []error{errUsage, e.err} }

func usageErr(err error) error { return usageError{err} }

// errNo is a "no" answer that was already printed (exists).
var errNo = errors.New("no")

func isSilent(err error) bool { return errors.Is(err, errSilent) || err == errNo }

// ExitCode maps an error to the documented exit code. The order matters for
// errors that carry several kinds (one region missing, another down).
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, errUsage), errors.Is(err, artifact.ErrInvalid), errors.Is(err, config.ErrInvalid),
		errors.Is(err, store.ErrInvalid):
		return ExitUsage
	case errors.Is(err, artifact.ErrConflict), errors.Is(err, errkind.Conflict), errors.Is(err, os.ErrExist):
		return ExitConflict
	case errors.Is(err, errNo), errors.Is(err, errLintFindings), errors.Is(err, artifact.ErrVerifyFailed), errors.Is(err, artifact.ErrVersionNotFound), errors.Is(err, org.ErrInvalid):
		return ExitNo
	case errors.Is(err, store.ErrPermissionDenied):
		return ExitDenied
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, errkind.TooMany):
		return ExitUnavailable
	case errors.Is(err, store.ErrNotFound), errors.Is(err, artifact.ErrUntrusted), errors.Is(err, artifact.ErrCorrupt),
		errors.Is(err, cache.ErrCorrupt), errors.Is(err, cache.ErrUnsafe):
		// No intact, trusted copy in any region that answered: the answer
		// is no, not a failure to try again (a retry finds the same bytes
		// and signatures). After denied and unavailable, since a region
		// that did not answer may hold a good copy.
		return ExitNo
	}
	return ExitUnavailable
}

// hint says what to do about an error, when there is something to say.
func hint(err error) string {
	switch {
	case errors.Is(err, errUsage):
		return "see \"berth --help\" or \"berth COMMAND --help\""
	case errors.Is(err, artifact.ErrConflict):
		return "versions are immutable: stage the changed file as a new version"
	case errors.Is(err, os.ErrExist):
		return "pass --force to replace it"
	case errors.Is(err, hubclient.ErrLoginRefused):
		return "" // the hub's message says what to do
	case errors.Is(err, hubclient.ErrUnauthenticated):
		return "log in again: berth login --url URL"
	case errors.Is(err, store.ErrPermissionDenied):
		return "check the credentials (AWS_PROFILE, --profile, AWS_ACCESS_KEY_ID) and the policy attached to them"
	case errors.Is(err, store.ErrUnavailable):
		return "check the endpoint and network; berth retried before giving up"
	case errors.Is(err, artifact.ErrUntrusted):
		return "only versions signed by a trusted key are accepted (--trusted-key, trusted_keys in the config); ask the publisher which key signs its releases, and treat a copy whose signature does not match as tampered with"
	}
	return ""
}
