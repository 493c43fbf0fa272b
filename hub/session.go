package hub

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// SessionCookie is the name of the browser session cookie.
const SessionCookie = "berth_session"

// Session is a signed-in browser. Web UI code gets it from SessionUser and
// puts CSRFToken in every form it renders (a hidden csrf_token field) or
// sends it as the X-CSRF-Token header.
type Session struct {
	ID      int64
	UserID  int64
	Created time.Time
	Expires time.Time
	// CSRFToken must accompany every unsafe request (POST, PUT, PATCH,
	// DELETE) the session makes; Handler refuses those without it (403).
	CSRFToken string
	// OrgID is the organisation the session selected (0: none; see
	// selectOrganisation).
	OrgID int64
}

// errCSRF: a cookie-authenticated unsafe request without the session's
// CSRF token; another site may have sent it.
var errCSRF = errkind.New("forbidden: the request lacks this session's CSRF token (form field csrf_token or header X-CSRF-Token); reload the page and try again", errkind.PermissionDenied)

// sessionSecretBytes is the cookie value's randomness (256 bits).
const sessionSecretBytes = 32

func (s *Server) sessionTTL() time.Duration {
	if s.SessionTTL > 0 {
		return s.SessionTTL
	}
	return 7 * 24 * time.Hour
}

func (s *Server) sessionIdle() time.Duration {
	if s.SessionIdle > 0 {
		return s.SessionIdle
	}
	return 8 * time.Hour
}

// hashSession is how a cookie value is stored and looked up.
func hashSession(value string) string {
	sum := sha256.Sum256([]byte("berth session\x00" + value))
	return hex.EncodeToString(sum[:])
}

// csrfToken derives the session's CSRF token from its cookie value: it is
// never stored, and knowing it tells nothing about the cookie.
func csrfToken(value string) string {
	m := hmac.New(sha256.New, []byte(value))
	m.Write([]byte("berth csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// secureCookies reports whether cookies get the Secure attribute: when the
// hub is served over TLS or its public address is https (TLS ends at a
// proxy in front of it).
func (s *Server) secureCookies(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(strings.ToLower(s.PublicURL), "https://")
}

// StartSession signs userID in: it stores a new session and sets its
// cookie (HttpOnly, SameSite=Lax, Secure on TLS). A session the request
// already carried is ended, so a session id planted before sign-in is
// useless after it.
func (s *Server) StartSession(w http.ResponseWriter, r *http.Request, userID int64) (*Session, error) {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		if err := s.DB.DeleteSession(r.Context(), hashSession(c.Value)); err != nil {
			return nil, err
		}
	}
	b := make([]byte, sessionSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	value := base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	rec := &db.Session{UserID: userID, Hash: hashSession(value), Created: now, Expires: now.Add(s.sessionTTL()),
		IdleTimeout: s.sessionIdle(), IdleExpires: now.Add(s.sessionIdle())}
	if err := s.DB.CreateSession(r.Context(), rec); err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: value, Path: "/", Expires: rec.Expires,
		MaxAge: int(s.sessionTTL() / time.Second), HttpOnly: true, Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode})
	return &Session{ID: rec.ID, UserID: userID, Created: rec.Created, Expires: rec.Expires, CSRFToken: csrfToken(value)}, nil
}

// EndSession signs the request's browser out: the session is deleted and
// its cookie cleared. Without a session it only clears the cookie.
func (s *Server) EndSession(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode})
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	return s.DB.DeleteSession(r.Context(), hashSession(c.Value))
}

// SessionUser returns the user and session of the request's session
// cookie. Any missing, unknown, expired or idle session is one error,
// errUnauthenticated (HTTP 401). It does not check CSRF: Handler does that
// for the routes it serves.
func (s *Server) SessionUser(r *http.Request) (*db.User, *Session, error) {
	if sess, ok := r.Context().Value(sessionKey).(*sessionAuth); ok {
		return sess.user, sess.session, nil
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, nil, errUnauthenticated
	}
	ctx := r.Context()
	rec, err := s.DB.SessionByHash(ctx, hashSession(c.Value))
	if errors.Is(err, errkind.NotFound) {
		return nil, nil, errUnauthenticated
	}
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	if !now.Before(rec.Expires) || !now.Before(rec.IdleExpires) {
		return nil, nil, errUnauthenticated
	}
	// One write a minute per session is enough to keep it from idling out.
	if next := now.Add(rec.IdleTimeout); next.Sub(rec.IdleExpires) > time.Minute {
		if err := s.DB.TouchSession(ctx, rec.ID, next); err != nil {
			s.log().Warn("record session use", "session_id", rec.ID, "err", err)
		}
	}
	u, err := s.DB.UserByID(ctx, rec.UserID)
	if errors.Is(err, errkind.NotFound) {
		return nil, nil, errUnauthenticated
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read session user: %w", err)
	}
	return u, &Session{ID: rec.ID, UserID: rec.UserID, Created: rec.Created, Expires: rec.Expires, CSRFToken: csrfToken(c.Value), OrgID: rec.OrgID}, nil
}

// CSRFToken returns the CSRF token of the request's session, or "" when
// the request has none. Pages put it in a hidden csrf_token field.
func (s *Server) CSRFToken(r *http.Request) string {
	_, sess, err := s.SessionUser(r)
	if err != nil {
		return ""
	}
	return sess.CSRFToken
}

type sessionAuth struct {
	user    *db.User
	session *Session
}

const sessionKey ctxKey = 1

// unsafeMethod: the methods that change something and so need CSRF proof
// when a cookie authenticates them.
func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// checkCSRF compares the request's CSRF token, from the X-CSRF-Token
// header or the csrf_token form field, with the session's.
func checkCSRF(r *http.Request, sess *Session) error {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue("csrf_token")
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRFToken)) != 1 {
		return errCSRF
	}
	return nil
}

// authorize finds who makes a request to a route that needs credentials:
// a bearer token (API clients, the CLI), else the session cookie (the
// browser), which for unsafe methods must come with the session's CSRF
// token. The returned request carries the session for SessionUser and
// CSRFToken, and the organisation the request works in (userOrg).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (*db.User, *http.Request, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, r, errUnauthenticated
		}
		ip := clientIP(r)
		if err := s.limits().failures.check(ip); err != nil {
			return nil, r, err
		}
		u, err := s.authenticate(r.Context(), strings.TrimSpace(token))
		if errors.Is(err, errUnauthenticated) {
			s.limits().failures.take(ip)
		}
		if err != nil {
			return nil, r, err
		}
		r, err = s.selectOrganisation(r, u, 0)
		return u, r, err
	}
	u, sess, err := s.SessionUser(r)
	if err != nil {
		return nil, r, err
	}
	if unsafeMethod(r.Method) {
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		}
		if err := checkCSRF(r, sess); err != nil {
			return nil, r, err
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), sessionKey, &sessionAuth{user: u, session: sess}))
	r, err = s.selectOrganisation(r, u, sess.OrgID)
	return u, r, err
}
