package hub

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/hub/db"
)

// pages are the hub's HTML pages, in the same shape as routes() but kept
// out of the OpenAPI document: a failure renders an HTML page, and a GET
// without a session is sent to the sign-in page. A page that is not public
// gets the same authentication as the API (session cookie or token, CSRF
// on unsafe methods). Keep it a flat list.
func pages() []route {
	return []route{
		{"GET", "/signin", "Sign-in page: OIDC button", true, (*Server).signinPage},
		{"POST", "/auth/logout", "Sign out: end the browser session (CSRF token in the form)", true, (*Server).logout},
		{"GET", "/setup", "First start: the form behind the one-time setup link", true, (*Server).setupPage},
		{"POST", "/setup", "First start: create the first user and sign in", true, (*Server).setupSubmit},
		{"GET", "/auth/oidc/login", "Start OIDC sign-in: redirect to the provider", true, (*Server).oidcLogin},
		{"GET", "/auth/oidc/callback", "OIDC sign-in: the provider's answer", true, (*Server).oidcCallback},
		{"GET", "/login/{id}", "berth login: approve or deny a CLI's request", false, (*Server).loginRequestPage},
		{"POST", "/login/{id}", "berth login: record the approval or denial", false, (*Server).decideLoginRequest},
	}
}

// contentSecurityPolicy allows nothing inline and nothing from elsewhere:
// pages load their scripts, styles and images from the hub only.
const contentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// withSecurityHeaders sets the headers every answer carries, pages and API
// alike, in this one place.
func withSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		// Page addresses carry one-time codes (setup, login requests).
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// pageTemplates are the sign-in pages: minimal, without script, for the
// web UI to restyle.
var pageTemplates = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · berth</title><link rel="stylesheet" href="/static/style.css"></head><body><header class="bar"><a class="brand" href="/">berth hub</a></header><main>
<h1>{{.Title}}</h1>{{end}}
{{define "foot"}}</main></body></html>
{{end}}

{{define "error"}}{{template "head" .}}
<p role="alert">{{.Message}}</p>
{{if .SignIn}}<p><a href="/signin">Sign in</a></p>{{end}}
{{template "foot"}}{{end}}

{{define "signin"}}{{template "head" .}}
{{if .User}}<p>You are signed in as {{.User.Email}}.</p>
<form method="post" action="/auth/logout"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><button type="submit">Sign out</button></form>
{{else if .OIDC}}<p><a href="{{.OIDCLink}}">Sign in with {{.OIDC}}</a></p>
{{else}}<p>This hub has no sign-in provider configured (berth server --oidc-issuer). On first start, open the setup link berth server printed.</p>{{end}}
{{if .Message}}<p role="status">{{.Message}}</p>{{end}}
{{template "foot"}}{{end}}

{{define "setup"}}{{template "head" .}}
<p>Create the first user of this hub. It becomes the admin of its organisation.</p>
<form method="post" action="/setup">
<input type="hidden" name="code" value="{{.Code}}">
<p><label for="email">E-mail</label><br><input id="email" name="email" type="email" required value="{{.Email}}"{{if .Error}} aria-describedby="email-error" aria-invalid="true"{{end}}>
{{if .Error}}<br><span id="email-error" role="alert">{{.Error}}</span>{{end}}</p>
<p><label for="name">Name</label><br><input id="name" name="name" value="{{.Name}}"></p>
<p><button type="submit">Create and sign in</button></p>
</form>
{{template "foot"}}{{end}}

{{define "login-request"}}{{template "head" .}}
{{with .Request}}
{{if eq .Status "pending"}}
<p><strong>berth on {{.Host}}</strong> asks to act as you ({{$.User.Email}}). The request came from {{.SourceIP}} ({{.ClientName}}). Approving creates an API token for that berth.</p>
<p>Approve only a <code>berth login</code> you ran yourself: type the code it shows in your terminal. If you did not run it, deny.</p>
<form method="post" action="/login/{{.PublicID}}">
<input type="hidden" name="csrf_token" value="{{$.CSRF}}">
<p><label for="user_code">Code from your terminal</label><br><input id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" spellcheck="false" placeholder="XXXX-XXXX" value="{{$.Code}}"{{if $.Error}} aria-describedby="user_code-error" aria-invalid="true"{{end}}>
{{if $.Error}}<br><span id="user_code-error" role="alert">{{$.Error}}</span>{{end}}</p>
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
{{else if eq .Status "denied"}}<p role="status">You denied berth on {{.Host}}. You can close this page.</p>
{{else}}<p role="status">berth on {{.Host}} is approved; return to your terminal.</p>{{end}}
{{end}}
{{template "foot"}}{{end}}
`))

// pageData is what the page templates read.
type pageData struct {
	Title   string
	User    *db.User
	CSRF    string
	Message string
	SignIn  bool
	// signin
	OIDC, OIDCLink string
	// setup
	Code, Email, Name, Error string
	// login-request
	Request *db.LoginRequest
}

// renderPage writes a page; rendering to a buffer first keeps a template
// failure from leaving half a page behind a 200.
func (s *Server) renderPage(w http.ResponseWriter, code int, name string, data *pageData) error {
	var b bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&b, name, data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
	return nil
}

// writePageError answers a page's failure as a page: a GET without a
// session goes to sign-in and comes back after it.
func (s *Server) writePageError(w http.ResponseWriter, r *http.Request, err error) {
	code, _, known := status(err)
	if code == http.StatusUnauthorized && r.Method == http.MethodGet {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	msg := err.Error()
	if !known {
		s.log().Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r), "err", err)
		msg = "Something went wrong on the hub; its log has request " + requestID(r) + "."
	}
	setErrorHeaders(w, code, err)
	if rerr := s.renderPage(w, code, "error", &pageData{Title: http.StatusText(code), Message: msg, SignIn: code == http.StatusUnauthorized}); rerr != nil {
		http.Error(w, msg, code)
	}
}

// safeNext keeps a post-sign-in destination on this hub: a path, never
// another site (//evil.example, /\evil.example, https://...).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || len(next) > 2000 {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// baseURL is the hub's address as people reach it: PublicURL, else the
// request's scheme and Host.
func (s *Server) baseURL(r *http.Request) string {
	if s.PublicURL != "" {
		return strings.TrimSuffix(s.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request, _ *db.User) error {
	d := &pageData{Title: "Sign in"}
	if u, sess, err := s.SessionUser(r); err == nil {
		d.User, d.CSRF = u, sess.CSRFToken
	}
	if s.OIDC != nil {
		d.OIDC = s.OIDC.displayName()
		d.OIDCLink = "/auth/oidc/login?next=" + url.QueryEscape(safeNext(r.URL.Query().Get("next")))
	}
	if r.URL.Query().Has("signed_out") {
		d.Message = "You are signed out."
	}
	return s.renderPage(w, http.StatusOK, "signin", d)
}

// logout ends the browser session. It is public so that a session that
// has already ended still lands on the sign-in page, but a live session is
// ended only with its CSRF token: another site cannot sign people out.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ *db.User) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if _, sess, err := s.SessionUser(r); err == nil {
		if err := checkCSRF(r, sess); err != nil {
			return err
		}
	}
	if err := s.EndSession(w, r); err != nil {
		return err
	}
	http.Redirect(w, r, "/signin?signed_out=1", http.StatusSeeOther)
	return nil
}
