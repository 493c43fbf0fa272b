package hub_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/hub"
)

const setupCode = "0123456789abcdef0123456789abcdef"

// browser is a client that keeps the session cookie and does not follow
// redirects, so tests see each answer.
type browser struct {
	t      *testing.T
	url    string
	cookie *http.Cookie
	client *http.Client
}

func newBrowser(t *testing.T, url string) *browser {
	return &browser{t: t, url: url, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request with the session cookie (when there is one) and
// header pairs; it returns the status, body and the answer.
func (b *browser) do(method, path, body string, headers ...string) (int, string, *http.Response) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.url+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == hub.SessionCookie {
			if c.MaxAge < 0 {
				b.cookie = nil
			} else {
				b.cookie = c
			}
		}
	}
	return resp.StatusCode, string(data), resp
}

// form posts url-encoded fields.
func (b *browser) form(path string, fields url.Values) (int, string, *http.Response) {
	b.t.Helper()
	return b.do("POST", path, fields.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

// csrf returns the CSRF token of the browser's session through the
// accessor the web UI uses.
func (b *browser) csrf(s *hub.Server) string {
	b.t.Helper()
	req := httptest.NewRequest("GET", "/", nil)
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	return s.CSRFToken(req)
}

// setUp creates the first user through the setup page and returns a
// signed-in browser.
func setUp(t *testing.T, s *hub.Server, url string) *browser {
	t.Helper()
	b := newBrowser(t, url)
	code, body, _ := b.form("/setup", map[string][]string{"code": {setupCode}, "email": {"ana@example.com"}, "name": {"Ana"}})
	if code != http.StatusSeeOther || b.cookie == nil {
		t.Fatalf("setup: %d %s", code, body)
	}
	return b
}

func TestSessionCookieAndCSRF(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, dump func() string) {
		now := time.Now()
		s.Now = func() time.Time { return now }
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		b := setUp(t, s, srv.URL)
		c := b.cookie
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
			t.Errorf("cookie attributes: %+v", c)
		}
		if code, body, _ := b.do("GET", "/api/v1/me", ""); code != 200 || !strings.Contains(body, "ana@example.com") {
			t.Fatalf("me with the cookie: %d %s", code, body)
		}
		token := b.csrf(s)
		if len(token) < 40 {
			t.Fatalf("csrf token %q", token)
		}
		for _, tc := range []struct {
			name    string
			headers []string
			want    int
		}{
			{"no token", nil, http.StatusForbidden},
			{"wrong token", []string{"X-CSRF-Token", token[:len(token)-2] + "xx"}, http.StatusForbidden},
			{"header", []string{"X-CSRF-Token", token}, http.StatusCreated},
		} {
			code, body, _ := b.do("POST", "/api/v1/tokens", `{"name":"from the browser"}`, tc.headers...)
			if code != tc.want || (code == 403 && !strings.Contains(body, "CSRF")) {
				t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
			}
		}
		// A bearer token needs no CSRF token: browsers do not send it by themselves.
		// The cookie of another browser's session carries another token.
		other := setUpSecond(t, s, srv.URL)
		if code, _, _ := other.do("POST", "/api/v1/tokens", `{"name":"x"}`, "X-CSRF-Token", token); code != http.StatusForbidden {
			t.Errorf("another session's CSRF token: %d", code)
		}

		// Neither the cookie nor the CSRF token is stored in clear.
		if d := dump(); strings.Contains(d, c.Value) || strings.Contains(d, token) {
			t.Error("the session cookie or its CSRF token is stored in clear")
		}

		// Idle for longer than the idle timeout: signed out.
		now = now.Add(7 * time.Hour)
		if code, _, _ := b.do("GET", "/api/v1/me", ""); code != 200 {
			t.Fatalf("after 7 hours idle: %d", code)
		}
		now = now.Add(7 * time.Hour) // 7 hours after the last use: still in
		if code, _, _ := b.do("GET", "/api/v1/me", ""); code != 200 {
			t.Fatalf("used every 7 hours: %d", code)
		}
		now = now.Add(8*time.Hour + time.Minute)
		if code, _, _ := b.do("GET", "/api/v1/me", ""); code != http.StatusUnauthorized {
			t.Errorf("idle for 8 hours: %d", code)
		}
	})
}

// setUpSecond signs a second browser in as the same user through the
// exported StartSession.
func setUpSecond(t *testing.T, s *hub.Server, url string) *browser {
	t.Helper()
	u, err := s.DB.UserByEmail(t.Context(), "ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	sess, err := s.StartSession(rec, httptest.NewRequest("POST", "/", nil), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, url)
	for _, c := range rec.Result().Cookies() {
		b.cookie = c
	}
	if b.cookie == nil || sess.CSRFToken != b.csrf(s) {
		t.Fatalf("StartSession: cookie %v, token %q", b.cookie, sess.CSRFToken)
	}
	return b
}

func TestSessionLifetimeAndLogout(t *testing.T) {
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	now := time.Now()
	s.Now = func() time.Time { return now }
	s.SessionTTL, s.SessionIdle = 2*time.Hour, time.Hour
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	b := setUp(t, s, srv.URL)
	for i := 0; i < 3; i++ { // used every 50 minutes, it still ends at 2 hours
		now = now.Add(50 * time.Minute)
		code, _, _ := b.do("GET", "/api/v1/me", "")
		if want := map[bool]int{true: 200, false: 401}[i < 2]; code != want {
			t.Errorf("after %v: %d, want %d", time.Duration(i+1)*50*time.Minute, code, want)
		}
	}

	b = setUpSecond(t, s, srv.URL)
	old := b.cookie
	if code, _, _ := b.form("/auth/logout", nil); code != http.StatusForbidden || b.cookie == nil {
		t.Errorf("sign-out without the CSRF token: %d", code)
	}
	if code, _, resp := b.form("/auth/logout", url.Values{"csrf_token": {b.csrf(s)}}); code != http.StatusSeeOther || b.cookie != nil || !strings.HasPrefix(resp.Header.Get("Location"), "/signin") {
		t.Errorf("sign-out: %d, cookie %v", code, b.cookie)
	}
	b.cookie = old // the old cookie replayed
	if code, _, _ := b.do("GET", "/api/v1/me", ""); code != http.StatusUnauthorized {
		t.Errorf("a signed-out session's cookie: %d", code)
	}
	// Signing out without a session just lands on the sign-in page.
	if code, _, _ := newBrowser(t, srv.URL).form("/auth/logout", nil); code != http.StatusSeeOther {
		t.Errorf("sign-out without a session: %d", code)
	}
}

func TestSecureCookie(t *testing.T) {
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	s.PublicURL = "https://berth.example.com"
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	b := setUp(t, s, srv.URL)
	if !b.cookie.Secure {
		t.Errorf("behind an https public URL the cookie is not Secure: %+v", b.cookie)
	}
}

func TestSetupPage(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, _ func() string) {
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		b := newBrowser(t, srv.URL)
		if code, body, _ := b.do("GET", "/setup?code=wrong", ""); code != http.StatusForbidden || !strings.Contains(body, "setup code") {
			t.Errorf("wrong code: %d %s", code, body)
		}
		code, body, resp := b.do("GET", "/setup?code="+setupCode, "")
		if code != 200 || !strings.Contains(body, `name="email"`) || !strings.Contains(body, `value="`+setupCode+`"`) {
			t.Fatalf("setup page: %d %s", code, body)
		}
		checkPageHeaders(t, "setup page", resp, body)
		// A bad address: the form again, with the error beside the field, nothing created.
		code, body, _ = b.form("/setup", url.Values{"code": {setupCode}, "email": {"<script>x"}})
		if code != http.StatusBadRequest || !strings.Contains(body, `id="email-error"`) || strings.Contains(body, "<script>") || b.cookie != nil {
			t.Errorf("bad e-mail: %d %s", code, body)
		}
		if n, _ := s.DB.CountUsers(t.Context()); n != 0 {
			t.Errorf("%d users after a refused setup", n)
		}
		code, _, resp = b.form("/setup", url.Values{"code": {setupCode}, "email": {"ana@example.com"}, "name": {"Ana"}})
		if code != http.StatusSeeOther || resp.Header.Get("Location") != "/" || b.cookie == nil {
			t.Fatalf("setup: %d", code)
		}
		if code, body, _ := b.do("GET", "/api/v1/me", ""); code != 200 || !strings.Contains(body, `"Ana"`) {
			t.Errorf("me after setup: %d %s", code, body)
		}
		if code, _, _ := b.do("GET", "/setup?code="+setupCode, ""); code != http.StatusConflict {
			t.Errorf("setup page after setup: %d", code)
		}
		if code, _, _ := newBrowser(t, srv.URL).form("/setup", url.Values{"code": {setupCode}, "email": {"eve@example.com"}}); code != http.StatusConflict {
			t.Errorf("a second setup: %d", code)
		}
		code, body, resp = b.do("GET", "/signin", "")
		if code != 200 || !strings.Contains(body, "ana@example.com") || !strings.Contains(body, `name="csrf_token" value="`+b.csrf(s)+`"`) {
			t.Errorf("sign-in page when signed in: %d %s", code, body)
		}
		checkPageHeaders(t, "sign-in page", resp, body)
	})
}

// checkPageHeaders checks what every HTML page must carry.
func checkPageHeaders(t *testing.T, what string, resp *http.Response, body string) {
	t.Helper()
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("%s: Content-Security-Policy %q", what, csp)
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"} {
		if h.Get(k) != v {
			t.Errorf("%s: %s %q, want %q", what, k, h.Get(k), v)
		}
	}
	if strings.Contains(strings.ToLower(body), "<script") || regexp.MustCompile(`(?i)\son[a-z]+=`).MatchString(body) {
		t.Errorf("%s has inline script", what)
	}
}
