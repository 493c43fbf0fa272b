package store

import (
	"fmt"

	"github.com/berth-dev/berth/errkind"
)

// Error ties an error kind to the store and key it happened on, so messages
// say where without every caller repeating it.
type Error struct {
	Op    string // "put", "get", ...
	Store string
	Key   string
	Kind  error // one of the Err* kinds, or nil when unknown
	Err   error
}

func (e *Error) Error() string {
	where := e.Store
	if e.Key != "" {
		where += " key " + e.Key
	}
	if e.Err == nil {
		return fmt.Sprintf("%s %s: %v", e.Op, where, e.Kind)
	}
	return fmt.Sprintf("%s %s: %v", e.Op, where, e.Err)
}

func (e *Error) Unwrap() []error {
	errs := []error{}
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// KindOf returns the kind of err, or nil if it has none.
func KindOf(err error) error {
	return errkind.Of(err)
}
