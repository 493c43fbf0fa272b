package hub

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/errkind"
)

// apiError is the one shape of every error the API returns.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		// Field names the request field an invalid request is about, when
		// the handler knows it, so a form can show the message beside it.
		Field string `json:"field,omitempty"`
	} `json:"error"`
}

// fieldError ties an error to the request field it is about.
type fieldError struct {
	field string
	err   error
	kind  error // errkind.Invalid when err had no kind
}

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() []error {
	if e.kind != nil {
		return []error{e.err, e.kind}
	}
	return []error{e.err}
}

// inField marks err (nil stays nil) as being about the request field. An
// error without a kind, as from a validator of another package, is about
// the input: errkind.Invalid.
func inField(field string, err error) error {
	if err == nil {
		return nil
	}
	fe := &fieldError{field: field, err: err}
	if errkind.Of(err) == nil {
		fe.kind = errkind.Invalid
	}
	return fe
}

// status chooses, in this one place, the HTTP status and API code of an
// error by its kind. Errors without a kind are the hub's own failures:
// their text stays in the log, and the caller gets the request id.
func status(err error) (int, string, bool) {
	switch {
	case errors.Is(err, errUnauthenticated):
		return http.StatusUnauthorized, "unauthenticated", true
	case errors.Is(err, errkind.Invalid):
		return http.StatusBadRequest, "invalid", true
	case errors.Is(err, errkind.PermissionDenied):
		return http.StatusForbidden, "forbidden", true
	case errors.Is(err, errkind.NotFound):
		return http.StatusNotFound, "not_found", true
	case errors.Is(err, errkind.Conflict), errors.Is(err, errkind.PreconditionFailed):
		return http.StatusConflict, "conflict", true
	case errors.Is(err, errkind.TooMany):
		return http.StatusTooManyRequests, "too_many", true
	case errors.Is(err, errkind.Unavailable):
		return http.StatusServiceUnavailable, "unavailable", true
	}
	return http.StatusInternalServerError, "unavailable", false
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, name, known := status(err)
	var body apiError
	body.Error.Code = name
	body.Error.Message = err.Error()
	if !known {
		s.log().Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r), "err", err)
		body.Error.Message = "internal error; the hub's log has request " + requestID(r)
	}
	if fe := (*fieldError)(nil); known && errors.As(err, &fe) {
		body.Error.Field = fe.field
	}
	setErrorHeaders(w, code, err)
	writeJSON(w, code, body)
}

// setErrorHeaders adds what some statuses promise: how to authenticate
// (401) and when to come back (429).
func setErrorHeaders(w http.ResponseWriter, code int, err error) {
	switch code {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="berth"`)
	case http.StatusTooManyRequests:
		if tm, ok := errors.AsType[*errTooMany](err); ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(tm.retryAfter.Seconds()))))
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
