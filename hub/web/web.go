// Package web is the hub's web UI: server-rendered pages over the hub's own
// JSON API. It adds no logic of its own: every page reads, and every form
// writes, through an API call made in-process with the browser's session
// cookie and CSRF token, so each action is one the API already checks,
// audits and tests. Pages work without JavaScript; one small script adds
// copy buttons.
package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Sessions is what the pages need from the hub's sign-in: the CSRF token
// of the request's browser session ("" without one), which every form
// carries back.
type Sessions interface {
	CSRFToken(r *http.Request) string
}

// Paths are the hub's sign-in pages, which the sign-in code serves.
type Paths struct {
	SignIn  string // where a signed-out visitor is sent
	SignOut string // POST with csrf_token ends the session
}

// UI serves the pages.
type UI struct {
	api      http.Handler
	sessions Sessions
	paths    Paths
	pages    map[string]*template.Template
	mux      *http.ServeMux
}

// New returns the UI over api, the hub's API handler, which the pages call
// in-process.
func New(api http.Handler, sessions Sessions, paths Paths) *UI {
	u := &UI{api: api, sessions: sessions, paths: paths, pages: parsePages(), mux: http.NewServeMux()}
	static, _ := fs.Sub(staticFiles, "static")
	u.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	u.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/projects", http.StatusSeeOther)
	})
	u.mux.HandleFunc("GET /projects", u.projects)
	u.mux.HandleFunc("POST /projects", u.createProject)
	u.mux.HandleFunc("GET /projects/{project}", u.project)
	u.mux.HandleFunc("POST /projects/{project}/members", u.setMember)
	u.mux.HandleFunc("POST /projects/{project}/settings", u.saveProjectSettings)
	u.mux.HandleFunc("GET /projects/{project}/versions", u.versions)
	u.mux.HandleFunc("GET /projects/{project}/versions/{version}", u.version)
	u.mux.HandleFunc("GET /dataplanes", u.dataPlanes)
	u.mux.HandleFunc("POST /dataplanes", u.createDataPlane)
	u.mux.HandleFunc("GET /tokens", u.tokens)
	u.mux.HandleFunc("POST /tokens", u.createToken)
	u.mux.HandleFunc("POST /tokens/{id}/revoke", u.revokeToken)
	u.mux.HandleFunc("GET /audit", u.audit)
	u.mux.HandleFunc("GET /projects/{project}/versions/{version}/download", u.download)
	u.mux.HandleFunc("GET /dataplanes/aws", u.awsForm)
	u.mux.HandleFunc("POST /dataplanes/aws", u.createAWSDataPlane)
	u.mux.HandleFunc("GET /dataplanes/{dataplane}", u.dataPlanePage)
	u.mux.HandleFunc("GET /dataplanes/{dataplane}/bootstrap.yaml", u.bootstrapTemplate)
	u.mux.HandleFunc("POST /dataplanes/{dataplane}/jobs", u.createJob)
	u.mux.HandleFunc("GET /jobs/{id}", u.job)
	u.mux.HandleFunc("POST /jobs/{id}/approve", u.approveJob)
	u.mux.HandleFunc("GET /settings", u.settings)
	u.mux.HandleFunc("POST /settings", u.saveSettings)
	u.mux.HandleFunc("GET /access", u.access)
	u.mux.HandleFunc("POST /access/requests", u.requestAccess)
	u.mux.HandleFunc("POST /access/requests/{id}/{action}", u.decideAccess)
	u.mux.HandleFunc("POST /organisation", u.switchOrganisation)
	u.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.fail(w, r, &APIError{Status: http.StatusNotFound, Code: "not_found", Message: "there is no page " + r.URL.Path})
	})
	return u
}

// csp allows only the hub's own files: no inline script or style, no
// framing, forms only to the hub.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store") // pages can show a token once
	}
	u.mux.ServeHTTP(w, r)
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
	Field   string
}

func (e *APIError) Error() string { return e.Message }

// call makes one API request in-process as the browser: with its cookies
// and source address, and for a form post with the CSRF token the form
// carried (the API checks it). It decodes a JSON answer into out.
func (u *UI) call(r *http.Request, method, path string, in, out any) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, body)
	if err != nil {
		return fmt.Errorf("make request: %w", err)
	}
	req.RemoteAddr = r.RemoteAddr
	req.TLS = r.TLS
	req.Host = r.Host
	for _, k := range []string{"Cookie", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto"} {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", r.PostFormValue("csrf_token"))
	}
	rec := &recorder{header: http.Header{}}
	u.api.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	if rec.code >= 400 {
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		if err := json.Unmarshal(rec.body.Bytes(), &e); err != nil || e.Error.Message == "" {
			return &APIError{Status: rec.code, Code: "unavailable", Message: fmt.Sprintf("the API answered %d", rec.code)}
		}
		return &APIError{Status: rec.code, Code: e.Error.Code, Message: e.Error.Message, Field: e.Error.Field}
	}
	if out != nil && rec.code != http.StatusNoContent {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return fmt.Errorf("read API answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// recorder keeps an in-process API answer.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}

// viewer is the signed-in user and organisation the layout shows.
type viewer struct {
	Email, Name string
	Org         string // the organisation the session works in
	OrgAdmin    bool
	// EnforceOwn: projects only on the organisation's own data planes.
	EnforceOwn bool
	// Orgs are all the user's organisations, for the switcher.
	Orgs []orgItem
}

type orgItem struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	Selected   bool   `json:"selected"`
	EnforceOwn bool   `json:"enforce_own_dataplanes"`
}

// signedIn reads who the browser is. An APIError with status 401 means
// nobody.
func (u *UI) signedIn(r *http.Request) (*viewer, error) {
	var me struct{ Email, Name string }
	if err := u.call(r, "GET", "/api/v1/me", nil, &me); err != nil {
		return nil, err
	}
	var orgs struct {
		Organisations []orgItem `json:"organisations"`
	}
	if err := u.call(r, "GET", "/api/v1/organisations", nil, &orgs); err != nil {
		return nil, err
	}
	v := &viewer{Email: me.Email, Name: me.Name, Orgs: orgs.Organisations}
	for _, o := range orgs.Organisations {
		if o.Selected {
			v.Org, v.OrgAdmin, v.EnforceOwn = o.Name, o.Role == "admin", o.EnforceOwn
		}
	}
	return v, nil
}

// fieldView is one labelled input with its hint and error.
type fieldView struct {
	Name, Label, Type, Hint string
	Value, Error            string
	Describedby             string
	Autocomplete            string
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string // the navigation entry to mark current
	Viewer  *viewer
	CSRF    string
	Paths   Paths
	Form    *form
	Notice  string
	Problem *APIError // the page's own failure
	Data    any
}

// form holds a posted form's values and the API's errors, by field.
type form struct {
	Values map[string]string
	Errors map[string]string
	Error  string // an error about no one field
}

func (f *form) Value(name string) string {
	if f == nil {
		return ""
	}
	return f.Values[name]
}

func (f *form) FieldError(name string) string {
	if f == nil {
		return ""
	}
	return f.Errors[name]
}

// HasErrors reports whether the form has any error to announce.
func (f *form) HasErrors() bool { return f != nil && (f.Error != "" || len(f.Errors) > 0) }

// newForm keeps the posted values of fields (never secrets: those are
// typed again) and puts err beside the field it is about: the one the API
// names, else the field whose name the message starts with (the API's
// convention, as in "endpoints: ..."), else above the form.
func newForm(r *http.Request, fields []string, secret map[string]bool, err error) *form {
	f := &form{Values: map[string]string{}, Errors: map[string]string{}}
	for _, name := range fields {
		if !secret[name] {
			f.Values[name] = r.FormValue(name)
		}
	}
	if err == nil {
		return f
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		f.Error = "the hub could not do this: " + err.Error()
		return f
	}
	field := ae.Field
	if field == "" {
		lead := ae.Message
		if i := strings.IndexAny(lead, ": "); i > 0 {
			lead = lead[:i]
		}
		field = lead
	}
	for _, name := range fields {
		if name == field {
			f.Errors[name] = ae.Message
			return f
		}
	}
	f.Error = ae.Message
	return f
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t := u.pages[name]
	if p.CSRF == "" {
		p.CSRF = u.sessions.CSRFToken(r)
	}
	p.Paths = u.paths
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fail shows err as a page: sign-in for 401, else its message and status.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = &APIError{Status: http.StatusInternalServerError, Code: "unavailable", Message: err.Error()}
	}
	if ae.Status == http.StatusUnauthorized {
		if r.Method == http.MethodGet {
			http.Redirect(w, r, u.paths.SignIn+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		u.render(w, r, http.StatusUnauthorized, "signin", &page{Title: "Sign in"})
		return
	}
	p := &page{Title: http.StatusText(ae.Status), Problem: ae}
	p.Viewer, _ = u.signedIn(r)
	u.render(w, r, ae.Status, "problem", p)
}

// start begins a signed-in page: it reads the viewer, or shows sign-in.
func (u *UI) start(w http.ResponseWriter, r *http.Request) (*viewer, bool) {
	v, err := u.signedIn(r)
	if err != nil {
		u.fail(w, r, err)
		return nil, false
	}
	return v, true
}

// parseForm reads a posted form of at most 64 KiB.
func parseForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm() // a bad body leaves fields empty: the API names what is missing
}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"when": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return "never"
				}
				return v.UTC().Format("2006-01-02 15:04 UTC")
			case *time.Time:
				if v == nil || v.IsZero() {
					return "never"
				}
				return v.UTC().Format("2006-01-02 15:04 UTC")
			}
			return ""
		},
		"field": func(f *form, name, label, typ, hint string) fieldView {
			v := fieldView{Name: name, Label: label, Type: typ, Hint: hint, Value: f.Value(name), Error: f.FieldError(name)}
			var ids []string
			if hint != "" {
				ids = append(ids, "f-"+name+"-hint")
			}
			if v.Error != "" {
				ids = append(ids, "f-"+name+"-error")
			}
			v.Describedby = strings.Join(ids, " ")
			if typ == "password" {
				v.Autocomplete = "off"
			}
			return v
		},
		"list": func(s ...string) []string { return s },
		"dur": func(d time.Duration) string {
			d = d.Round(time.Minute)
			h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
			switch {
			case h == 0:
				return fmt.Sprintf("%d min", m)
			case m == 0:
				return fmt.Sprintf("%d h", h)
			}
			return fmt.Sprintf("%d h %d min", h, m)
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"path": func(parts ...string) string {
			for i, p := range parts {
				if i > 0 {
					parts[i] = url.PathEscape(p)
				}
			}
			return strings.Join(parts, "/")
		},
		"bytes": func(n int64) string {
			const unit = 1024
			if n < unit {
				return fmt.Sprintf("%d B", n)
			}
			div, exp := int64(unit), 0
			for m := n / unit; m >= unit; m /= unit {
				div *= unit
				exp++
			}
			return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
		},
	}
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFiles, n))
	}
	return out
}
