// Package oidctest is an OpenID Connect provider for tests: discovery, keys,
// an authorize endpoint that signs in whoever the test says at once, and a
// token endpoint that checks the client secret, the redirect URL and the
// PKCE verifier before it answers a signed ID token.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Issuer is an OpenID Connect provider for tests: discovery, keys, an
// authorize endpoint that signs in whoever the test says at once, and a
// token endpoint that checks the client secret, the redirect URL and the
// PKCE verifier before it answers a signed ID token.
type Issuer struct {
	// URL is the issuer URL the hub is configured with.
	URL string

	t   testing.TB
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

// The client the issuer knows.
const (
	ClientID     = "berth-hub"
	ClientSecret = "client-secret-4a7c1e"
)

// New starts an issuer that lives as long as the test.
func New(t testing.TB) *Issuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{t: t, key: key, codes: map[string]grant{}}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.URL, "authorization_endpoint": iss.URL + "/authorize", "token_endpoint": iss.URL + "/token",
			"jwks_uri": iss.URL + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
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
		case id != ClientID || secret != ClientSecret:
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
		payload := map[string]any{"iss": iss.URL, "aud": ClientID, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "nonce": nonce}
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

func (iss *Issuer) sign(payload map[string]any) string {
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

// Next sets the claims of the next sign-in (sub, email, email_verified,
// name); nonce, when not empty, replaces the one the client sent.
func (iss *Issuer) Next(claims map[string]any, nonce string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.claims, iss.nonce = claims, nonce
}

// SignInAs makes the next sign-in that of email, verified, with subject
// "sub-EMAIL".
func (iss *Issuer) SignInAs(email string) {
	iss.Next(map[string]any{"sub": "sub-" + email, "email": email, "email_verified": true}, "")
}
