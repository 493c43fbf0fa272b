package hub

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// berth login without --token is a browser approval, as gh auth login:
// the CLI opens a login request (public, limited per address) and gets an
// approval link, a user code and a poll secret; a signed-in user approves
// or denies it on the link's page (CSRF-protected); the CLI polls with
// the secret and collects a new API token once.

func (s *Server) loginRequestTTL() time.Duration {
	if s.LoginRequestTTL > 0 {
		return s.LoginRequestTTL
	}
	return 10 * time.Minute
}

func (s *Server) loginPollInterval() time.Duration {
	if s.LoginPollInterval > 0 {
		return s.LoginPollInterval
	}
	return 2 * time.Second
}

func hashPollSecret(secret string) string {
	sum := sha256.Sum256([]byte("berth login poll\x00" + secret))
	return hex.EncodeToString(sum[:])
}

// userCodeAlphabet has no vowels (no words) and no look-alikes (0/O, 1/I).
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

func newUserCode() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	code := make([]byte, 0, 9)
	for i, c := range b {
		if i == 4 {
			code = append(code, '-')
		}
		code = append(code, userCodeAlphabet[int(c)%len(userCodeAlphabet)])
	}
	return string(code)
}

// validLabel checks text a client names itself with, which pages show.
func validLabel(field, v string, max int, required bool) error {
	if required && v == "" || len(v) > max || !utf8.ValidString(v) {
		return fmt.Errorf("%s: give 1 to %d characters: %w", field, max, errkind.Invalid)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s: no control characters: %w", field, errkind.Invalid)
		}
	}
	return nil
}

func (s *Server) createLoginRequest(w http.ResponseWriter, r *http.Request, _ *db.User) error {
	if err := s.limits().loginRequests.allow(clientIP(r)); err != nil {
		return err
	}
	var in struct {
		Host       string `json:"host"`
		ClientName string `json:"client_name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := errors.Join(validLabel("host", in.Host, 253, true), validLabel("client_name", in.ClientName, 100, false)); err != nil {
		return err
	}
	now := s.now()
	secret := randomString(32)
	l := &db.LoginRequest{PublicID: randomString(16), PollHash: hashPollSecret(secret), UserCode: newUserCode(),
		Host: in.Host, ClientName: in.ClientName, SourceIP: clientIP(r), Created: now, Expires: now.Add(s.loginRequestTTL())}
	if err := s.DB.CreateLoginRequest(r.Context(), l); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": l.PublicID, "user_code": l.UserCode, "approve_url": s.baseURL(r) + "/login/" + l.PublicID,
		"poll_secret": secret, "expires": l.Expires, "interval": s.loginPollInterval().Seconds(),
	})
	return nil
}

// errNoLoginRequest is one answer for an unknown request and a wrong poll
// secret, so neither can be told from the other.
var errNoLoginRequest = errkind.New("login request not found; run berth login again", errkind.NotFound)

// loginRequestToken answers a poll: pending, or the new token once
// approved; denied and expired requests are refused (403).
func (s *Server) loginRequestToken(w http.ResponseWriter, r *http.Request, _ *db.User) (err error) {
	ip := clientIP(r)
	if err := s.limits().failures.check(ip); err != nil {
		return err
	}
	var in struct {
		PollSecret string `json:"poll_secret"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	l, err := s.DB.LoginRequestByPublicID(r.Context(), r.PathValue("id"))
	if errors.Is(err, errkind.NotFound) || err == nil && subtle.ConstantTimeCompare([]byte(hashPollSecret(in.PollSecret)), []byte(l.PollHash)) != 1 {
		s.limits().failures.take(ip)
		return errNoLoginRequest
	}
	if err != nil {
		return err
	}
	now := s.now()
	switch {
	case l.Status == "denied":
		return fmt.Errorf("the login of berth on %s was denied in the browser: %w", l.Host, errkind.PermissionDenied)
	case l.Status == "collected":
		return fmt.Errorf("the token of this login request was already collected; run berth login again: %w", errkind.Conflict)
	case !now.Before(l.Expires):
		return fmt.Errorf("the login request expired before it was approved; run berth login again: %w", errkind.PermissionDenied)
	case l.Status == "pending":
		writeJSON(w, http.StatusOK, map[string]any{"status": "pending"})
		return nil
	}
	u, err := s.DB.UserByID(r.Context(), l.UserID)
	if err != nil {
		return err
	}
	defer func() { s.audit(r, u, "token.create", "token/berth login on "+truncate(l.Host, 64), err) }()
	if err := s.DB.CollectLoginRequest(r.Context(), l.ID, now); err != nil {
		return err
	}
	t, err := s.issueToken(r.Context(), u.ID, "berth login on "+l.Host)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "approved", "user": userOut(u), "token": t})
	return nil
}

// loginRequestPage shows a signed-in user what asks to act as them.
func (s *Server) loginRequestPage(w http.ResponseWriter, r *http.Request, u *db.User) error {
	l, err := s.pendingLoginRequest(r)
	if err != nil {
		return err
	}
	return s.renderPage(w, http.StatusOK, "login-request", &pageData{Title: "Approve berth login", User: u, CSRF: s.CSRFToken(r), Request: l})
}

// decideLoginRequest records approve or deny (the form's decision) and
// shows the page again.
func (s *Server) decideLoginRequest(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	l, err := s.pendingLoginRequest(r)
	if err != nil {
		return err
	}
	decision := r.PostFormValue("decision")
	var wrongCode error // answered with the page again, not an error page, but audited as one
	defer func() {
		s.audit(r, u, "login."+truncate(decision, 16), "login/"+truncate(l.Host, 64), errors.Join(err, wrongCode))
	}()
	status := map[string]string{"approve": "approved", "deny": "denied"}[decision]
	if status == "" {
		return fmt.Errorf("decision %q: approve or deny: %w", truncate(decision, 16), errkind.Invalid)
	}
	if decision == "approve" && l.Status == "pending" {
		typed := r.PostFormValue("user_code")
		if !sameUserCode(typed, l.UserCode) {
			// A wrong code counts as a failed sign-in: it is what someone
			// approving a request they did not start would get.
			ip := clientIP(r)
			if lerr := s.limits().failures.allow(ip); lerr != nil {
				return lerr
			}
			msg := "That is not the code of this request. Type the code your berth login shows (such as BCDF-GHJK); if you did not run berth login, deny."
			if strings.TrimSpace(typed) == "" {
				msg = "Type the code your berth login shows in the terminal (such as BCDF-GHJK) to approve it."
			}
			wrongCode = fmt.Errorf("user code does not match: %w", errkind.Invalid)
			return s.renderPage(w, http.StatusBadRequest, "login-request",
				&pageData{Title: "Approve berth login", User: u, CSRF: s.CSRFToken(r), Request: l, Code: truncate(typed, 20), Error: msg})
		}
	}
	if err := s.DB.DecideLoginRequest(r.Context(), l.ID, u.ID, status, s.now()); err != nil {
		return err
	}
	http.Redirect(w, r, "/login/"+l.PublicID, http.StatusSeeOther)
	return nil
}

// sameUserCode compares a typed code with the request's, ignoring case,
// spaces and hyphens, in constant time.
func sameUserCode(typed, code string) bool {
	norm := func(s string) []byte {
		var b []byte
		for _, r := range strings.ToUpper(s) {
			if r != '-' && !unicode.IsSpace(r) {
				b = utf8.AppendRune(b, r)
			}
		}
		return b
	}
	return subtle.ConstantTimeCompare(norm(typed), norm(code)) == 1
}

// pendingLoginRequest reads the request of the page's address; one that
// expired undecided is refused.
func (s *Server) pendingLoginRequest(r *http.Request) (*db.LoginRequest, error) {
	l, err := s.DB.LoginRequestByPublicID(r.Context(), r.PathValue("id"))
	if errors.Is(err, errkind.NotFound) {
		return nil, errNoLoginRequest
	}
	if err != nil {
		return nil, err
	}
	if l.Status == "pending" && !s.now().Before(l.Expires) {
		return nil, fmt.Errorf("this login request expired; run berth login again: %w", errkind.PermissionDenied)
	}
	return l, nil
}
