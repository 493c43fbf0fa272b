package hub_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/internal/oidctest"
)

// oidcSignIn walks a browser through sign-in: the hub's login route, the
// provider, and the callback (which tamper may change). It returns the
// callback's answer and the browser's session cookie, if any.
func oidcSignIn(t *testing.T, hubURL, next string, tamper func(*url.URL)) (int, string, string, *http.Cookie) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) *http.Response {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get(hubURL + "/auth/oidc/login?next=" + url.QueryEscape(next))
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	resp = get(resp.Header.Get("Location")) // the provider
	resp.Body.Close()
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(cb.String(), hubURL+"/auth/oidc/callback") {
		t.Fatalf("authorize: %d %s", resp.StatusCode, cb)
	}
	if tamper != nil {
		tamper(cb)
	}
	resp = get(cb.String())
	defer resp.Body.Close()
	var body strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			break
		}
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == hub.SessionCookie && ck.MaxAge >= 0 {
			session = ck
		}
	}
	return resp.StatusCode, resp.Header.Get("Location"), body.String(), session
}

func TestOIDCSignIn(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, dump func() string) {
		iss := oidctest.New(t)
		s.OIDC = &hub.OIDCConfig{Issuer: iss.URL, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret}
		s.FailedAuthLimit = 100
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		admin := setUp(t, s, srv.URL) // ana@example.com, no sign-in linked yet
		if code, body, _ := admin.do("POST", "/api/v1/users", `{"email":"bob@example.com"}`, "X-CSRF-Token", admin.csrf(s)); code != 201 {
			t.Fatalf("add bob: %d %s", code, body)
		}
		if code, body, _ := newBrowser(t, srv.URL).do("GET", "/signin?next=/x", ""); code != 200 || !strings.Contains(body, `href="/auth/oidc/login?next=%2Fx"`) {
			t.Errorf("sign-in page: %d %s", code, body)
		}

		tests := []struct {
			name   string
			claims map[string]any
			nonce  string
			tamper func(*url.URL)
			next   string
			// want: the user signed in, or the refusal's words
			wantUser, wantRefusal string
		}{
			{name: "first sign-in links the user an admin added by verified e-mail",
				claims: map[string]any{"sub": "ana-1", "email": "Ana@Example.com", "email_verified": true}, next: "/projects?x=1", wantUser: "ana@example.com"},
			{name: "later sign-ins find the user by subject, whatever the e-mail",
				claims: map[string]any{"sub": "ana-1", "email": "ana.new@example.com", "email_verified": false}, next: "//evil.example/", wantUser: "ana@example.com"},
			{name: "another subject with a linked user's e-mail",
				claims: map[string]any{"sub": "eve-1", "email": "ana@example.com", "email_verified": true}, wantRefusal: "no account for ana@example.com"},
			{name: "unverified e-mail",
				claims: map[string]any{"sub": "bob-1", "email": "bob@example.com", "email_verified": false}, wantRefusal: "has not verified the e-mail bob@example.com"},
			{name: "email_verified as a string",
				claims: map[string]any{"sub": "bob-1", "email": "bob@example.com", "email_verified": "true"}, wantUser: "bob@example.com"},
			{name: "unknown user: no sign-up",
				claims: map[string]any{"sub": "cy-1", "email": "cy@example.com", "email_verified": true}, wantRefusal: "ask an organisation admin to add you"},
			{name: "wrong nonce",
				claims: map[string]any{"sub": "ana-1", "email": "ana@example.com", "email_verified": true}, nonce: "replayed", wantRefusal: "nonce"},
			{name: "wrong state",
				claims: map[string]any{"sub": "ana-1", "email": "ana@example.com", "email_verified": true},
				tamper: func(u *url.URL) { q := u.Query(); q.Set("state", "forged"); u.RawQuery = q.Encode() }, wantRefusal: "does not match a sign-in started in this browser"},
			{name: "wrong code",
				claims: map[string]any{"sub": "ana-1", "email": "ana@example.com", "email_verified": true},
				tamper: func(u *url.URL) { q := u.Query(); q.Set("code", "guessed"); u.RawQuery = q.Encode() }, wantRefusal: "did not accept the sign-in code"},
			{name: "the provider refused",
				claims: map[string]any{"sub": "ana-1"},
				tamper: func(u *url.URL) {
					q := u.Query()
					q.Del("code")
					q.Set("error", "access_denied")
					u.RawQuery = q.Encode()
				}, wantRefusal: "access_denied"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				iss.Next(tt.claims, tt.nonce)
				code, location, body, cookie := oidcSignIn(t, srv.URL, tt.next, tt.tamper)
				if tt.wantRefusal != "" {
					if code != http.StatusForbidden || cookie != nil || !strings.Contains(body, tt.wantRefusal) {
						t.Errorf("%d, cookie %v, body %s; want 403 with %q", code, cookie, body, tt.wantRefusal)
					}
					return
				}
				wantNext := tt.next
				if wantNext == "" || strings.HasPrefix(wantNext, "//") {
					wantNext = "/"
				}
				if code != http.StatusSeeOther || cookie == nil || location != wantNext {
					t.Fatalf("%d to %q, cookie %v: %s", code, location, cookie, body)
				}
				b := newBrowser(t, srv.URL)
				b.cookie = cookie
				if code, me, _ := b.do("GET", "/api/v1/me", ""); code != 200 || !strings.Contains(me, `"email": "`+tt.wantUser+`"`) {
					t.Errorf("me: %d %s, want %s", code, me, tt.wantUser)
				}
			})
		}
		if d := dump(); strings.Contains(d, oidctest.ClientSecret) {
			t.Error("the client secret is in the database")
		}
	})
}

// The callback without the cookie of a sign-in in progress (another
// browser, or one that took too long) is refused; repeated failures from
// one address are held back with 429.
func TestOIDCCallbackLimits(t *testing.T) {
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	iss := oidctest.New(t)
	s.OIDC = &hub.OIDCConfig{Issuer: iss.URL, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret}
	now := time.Now()
	s.Now = func() time.Time { return now }
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	b := newBrowser(t, srv.URL)
	for i := range 10 {
		if code, body, _ := b.do("GET", "/auth/oidc/callback?code=x&state=y", ""); code != http.StatusForbidden {
			t.Fatalf("callback %d without a sign-in: %d %s", i, code, body)
		}
	}
	code, body, resp := b.do("GET", "/auth/oidc/callback?code=x&state=y", "")
	if code != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "6" || !strings.Contains(body, "too many attempts") {
		t.Errorf("11th failure: %d %q %s", code, resp.Header.Get("Retry-After"), body)
	}
	now = now.Add(6 * time.Second) // one attempt back
	if code, _, _ := b.do("GET", "/auth/oidc/callback?code=x&state=y", ""); code != http.StatusForbidden {
		t.Errorf("after 6 seconds: %d", code)
	}
	if code, _, _ := b.do("GET", "/auth/oidc/callback?code=x&state=y", ""); code != http.StatusTooManyRequests {
		t.Errorf("at once again: %d", code)
	}
}
