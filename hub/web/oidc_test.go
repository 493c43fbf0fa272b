package web_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// testIssuer is an OpenID Connect provider for the browser tests: it signs
// in the e-mail the test names at once, with a signed ID token.
type testIssuer struct {
	t     *testing.T
	url   string
	key   *rsa.PrivateKey
	mu    sync.Mutex
	email string
	codes map[string]string // code -> nonce
}

const (
	oidcClientID     = "berth-hub"
	oidcClientSecret = "client-secret-web"
)

func newTestIssuer(t *testing.T) *testIssuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuer{t: t, key: key, codes: map[string]string{}}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.url = srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss.url, "authorization_endpoint": iss.url + "/authorize", "token_endpoint": iss.url + "/token",
			"jwks_uri": iss.url + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		b := make([]byte, 16)
		rand.Read(b)
		code := base64.RawURLEncoding.EncodeToString(b)
		iss.mu.Lock()
		iss.codes[code] = q.Get("nonce")
		iss.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+q.Get("state"), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		iss.mu.Lock()
		nonce, ok := iss.codes[r.PostFormValue("code")]
		delete(iss.codes, r.PostFormValue("code"))
		email := iss.email
		iss.mu.Unlock()
		if !ok {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
			"id_token": iss.sign(map[string]any{"iss": iss.url, "aud": oidcClientID, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
				"nonce": nonce, "sub": "sub-" + email, "email": email, "email_verified": true})})
	})
	return iss
}

// signInAs makes the next sign-in that of email.
func (iss *testIssuer) signInAs(email string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.email = email
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
