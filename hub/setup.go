package hub

import (
	"crypto/subtle"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// errSetupCode: the setup code is wrong, or the hub has its first user.
var errSetupCode = errkind.New("setup: wrong or expired setup code; use the link berth server printed at start", errkind.PermissionDenied)

// checkSetupCode compares a first-start code, counting wrong ones against
// the caller's address.
func (s *Server) checkSetupCode(r *http.Request, code string) error {
	ip := clientIP(r)
	if err := s.limits().failures.check(ip); err != nil {
		return err
	}
	if s.SetupCode == "" || subtle.ConstantTimeCompare([]byte(code), []byte(s.SetupCode)) != 1 {
		s.limits().failures.take(ip)
		return errSetupCode
	}
	return nil
}

// setupPage is where the one-time link berth server prints leads: a form
// for the first user's e-mail and name.
func (s *Server) setupPage(w http.ResponseWriter, r *http.Request, _ *db.User) error {
	code := r.URL.Query().Get("code")
	if err := s.checkSetupCode(r, code); err != nil {
		return err
	}
	n, err := s.DB.CountUsers(r.Context())
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("the hub already has users; sign in instead: %w", errkind.Conflict)
	}
	return s.renderPage(w, http.StatusOK, "setup", &pageData{Title: "Set up berth", Code: code})
}

// setupSubmit creates the first user and signs the browser in. It needs
// no CSRF token: there is no session yet, and the setup code is the proof.
func (s *Server) setupSubmit(w http.ResponseWriter, r *http.Request, _ *db.User) (err error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	code, email, name := r.PostFormValue("code"), r.PostFormValue("email"), r.PostFormValue("name")
	if err := s.checkSetupCode(r, code); err != nil {
		return err
	}
	if len(name) > 200 {
		name = name[:200]
	}
	if err := validEmail(email); err != nil {
		return s.renderPage(w, http.StatusBadRequest, "setup", &pageData{Title: "Set up berth", Code: code, Email: email, Name: name, Error: err.Error()})
	}
	u, err := s.DB.CreateFirstUser(r.Context(), email, name, "default")
	defer func() { s.audit(r, u, "setup", "user/"+truncate(email, 64), err) }()
	if err != nil {
		return err
	}
	if _, err := s.StartSession(w, r, u.ID); err != nil {
		return err
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}
