package hub_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/berth-dev/berth/hub"
)

// testIssuer is an OpenID Connect provider for tests: discovery, keys, an
// authorize endpoint that signs in whoever the test says at once, and a
// token endpoint that checks the client secret, the redirect URL and the
// PKCE verifier before it answers a signed ID token.
type testIssuer struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey

	mu sync.Mutex
	// claims of the next sign-in (sub, email, email_verified, name).
	claims map[string]any
	// nonce, when set, replaces the nonce the client sent.
	nonce string
	codes map[string]grant
}

type grant struct {
	nonce, challenge, redirect string
}

const (
	testClientID     = "berth-hub"
	testClientSecret = "client-secret-4a7c1e"
)

func newTestIssuer(t *testing.T) *testIssuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuer{t: t, key: key, codes: map[string]grant{}}
	mux := http.NewServeMux()
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.srv.URL, "authorization_endpoint": iss.srv.URL + "/authorize", "token_endpoint": iss.srv.URL + "/token",
			"jwks_uri": iss.srv.URL + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != testClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") == "" || q.Get("nonce") == "" || !strings.Contains(q.Get("scope"), "openid") {
			t.Errorf("authorize request: %v", q)
			http.Error(w, "bad request", 400)
			return
		}
		code := base64.RawURLEncoding.EncodeToString(randomBytes(16))
		iss.mu.Lock()
		iss.codes[code] = grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		iss.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		iss.mu.Lock()
		g, found := iss.codes[r.PostFormValue("code")]
		delete(iss.codes, r.PostFormValue("code"))
		claims, nonce := iss.claims, iss.nonce
		iss.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		switch {
		case id != testClientID || secret != testClientSecret:
			w.WriteHeader(401)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		case !found || g.redirect != r.PostFormValue("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		if nonce == "" {
			nonce = g.nonce
		}
		payload := map[string]any{"iss": iss.srv.URL, "aud": testClientID, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "nonce": nonce}
		for k, v := range claims {
			payload[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "id_token": iss.sign(payload)})
	})
	return iss
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func (iss *testIssuer) sign(payload map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: iss.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		iss.t.Fatal(err)
	}
	data, _ := json.Marshal(payload)
	obj, err := signer.Sign(data)
	if err != nil {
		iss.t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		iss.t.Fatal(err)
	}
	return out
}

func (iss *testIssuer) next(claims map[string]any, nonce string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.claims, iss.nonce = claims, nonce
}

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
		iss := newTestIssuer(t)
		s.OIDC = &hub.OIDCConfig{Issuer: iss.srv.URL, ClientID: testClientID, ClientSecret: testClientSecret}
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
				iss.next(tt.claims, tt.nonce)
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
		if d := dump(); strings.Contains(d, testClientSecret) {
			t.Error("the client secret is in the database")
		}
	})
}

// The callback without the cookie of a sign-in in progress (another
// browser, or one that took too long) is refused; repeated failures from
// one address are held back with 429.
func TestOIDCCallbackLimits(t *testing.T) {
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	iss := newTestIssuer(t)
	s.OIDC = &hub.OIDCConfig{Issuer: iss.srv.URL, ClientID: testClientID, ClientSecret: testClientSecret}
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
