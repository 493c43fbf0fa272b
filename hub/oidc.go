package hub

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// OIDCConfig is the OpenID Connect provider (Okta, Entra ID, Google,
// Keycloak...) people sign in with. Its redirect URL is
// PUBLIC_URL/auth/oidc/callback.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// HTTPClient talks to the provider (a client with a 30 s timeout when
	// nil).
	HTTPClient *http.Client
}

func (c *OIDCConfig) displayName() string {
	if u, err := url.Parse(c.Issuer); err == nil && u.Host != "" {
		return u.Host
	}
	return "your identity provider"
}

func (c *OIDCConfig) context(ctx context.Context) context.Context {
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return oidc.ClientContext(ctx, hc)
}

// oidcCookie holds a sign-in in progress between the redirect to the
// provider and its answer: short-lived, HttpOnly, sent only to /auth/oidc/.
const oidcCookie = "berth_oidc"

const oidcFlowTTL = 10 * time.Minute

type oidcFlow struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Next     string `json:"next"`
}

// oidcClient is the provider, discovered on first use and kept.
type oidcClient struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

func (s *Server) oidcProvider(ctx context.Context) (*oidcClient, error) {
	if s.OIDC == nil {
		return nil, fmt.Errorf("this hub has no OIDC sign-in; start berth server with --oidc-issuer and --oidc-client-id: %w", errkind.NotFound)
	}
	st := s.limits()
	st.oidcMu.Lock()
	defer st.oidcMu.Unlock()
	if st.oidc != nil {
		return st.oidc, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(s.OIDC.context(dctx), s.OIDC.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OIDC provider %s: %w: %w", s.OIDC.Issuer, err, errkind.Unavailable)
	}
	// Keys are fetched later with a background context: keep the client.
	st.oidc = &oidcClient{provider: p, verifier: p.Verifier(&oidc.Config{ClientID: s.OIDC.ClientID, Now: s.now})}
	return st.oidc, nil
}

func (s *Server) oauthConfig(r *http.Request, p *oidcClient) *oauth2.Config {
	return &oauth2.Config{ClientID: s.OIDC.ClientID, ClientSecret: s.OIDC.ClientSecret, Endpoint: p.provider.Endpoint(),
		RedirectURL: s.baseURL(r) + "/auth/oidc/callback", Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// oidcLogin sends the browser to the provider with a fresh state, nonce
// and PKCE challenge, which a cookie keeps for the callback.
func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request, _ *db.User) error {
	p, err := s.oidcProvider(r.Context())
	if err != nil {
		return err
	}
	f := oidcFlow{State: randomString(32), Nonce: randomString(32), Verifier: oauth2.GenerateVerifier(), Next: safeNext(r.URL.Query().Get("next"))}
	v, _ := json.Marshal(f)
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: base64.RawURLEncoding.EncodeToString(v), Path: "/auth/oidc/",
		MaxAge: int(oidcFlowTTL / time.Second), HttpOnly: true, Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, s.oauthConfig(r, p).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
	return nil
}

// errOIDCFlow: the callback does not belong to a sign-in this browser
// started, or it took too long.
var errOIDCFlow = errkind.New("sign-in: this answer does not match a sign-in started in this browser in the last 10 minutes; sign in again", errkind.PermissionDenied)

// oidcClaims are the ID token claims berth reads. email_verified is a
// string in some providers' tokens.
type oidcClaims struct {
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	Name          string          `json:"name"`
}

func (c oidcClaims) verified() bool {
	s := string(c.EmailVerified)
	return s == "true" || s == `"true"`
}

// oidcCallback finishes a sign-in: it checks state, exchanges the code
// with the PKCE verifier, verifies the ID token and its nonce, and signs
// in the user linked to the token's subject. A user an admin added is
// linked on first sign-in when the provider has verified their e-mail;
// nobody else gets in (no automatic sign-up). Failures count against the
// caller's address.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request, _ *db.User) (err error) {
	ip := clientIP(r)
	if err := s.limits().failures.check(ip); err != nil {
		return err
	}
	var u *db.User
	var email string
	defer func() {
		if err != nil {
			s.limits().failures.take(ip)
		}
		if u != nil || email != "" {
			s.audit(r, u, "signin.oidc", "user/"+truncate(email, 64), err)
		}
	}()
	p, err := s.oidcProvider(r.Context())
	if err != nil {
		return err
	}
	f, err := readOIDCFlow(r)
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/auth/oidc/", MaxAge: -1, HttpOnly: true, Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	if err != nil || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		return errOIDCFlow
	}
	if e := q.Get("error"); e != "" {
		return fmt.Errorf("sign-in: %s refused: %s %s: %w", s.OIDC.displayName(), truncate(e, 64), truncate(q.Get("error_description"), 200), errkind.PermissionDenied)
	}
	ctx := s.OIDC.context(r.Context())
	tok, err := s.oauthConfig(r, p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
			return fmt.Errorf("sign-in: %s did not accept the sign-in code; sign in again: %w", s.OIDC.displayName(), errkind.PermissionDenied)
		}
		return fmt.Errorf("sign-in: reach %s: %w: %w", s.OIDC.displayName(), err, errkind.Unavailable)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return fmt.Errorf("sign-in: %s answered without an ID token: %w", s.OIDC.displayName(), errkind.PermissionDenied)
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return fmt.Errorf("sign-in: the ID token of %s is not valid: %v: %w", s.OIDC.displayName(), err, errkind.PermissionDenied)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return fmt.Errorf("sign-in: the ID token is not for this sign-in (nonce); sign in again: %w", errkind.PermissionDenied)
	}
	var c oidcClaims
	if err := idt.Claims(&c); err != nil {
		return fmt.Errorf("sign-in: read the ID token's claims: %v: %w", err, errkind.PermissionDenied)
	}
	email = c.Email
	u, err = s.DB.UserByOIDC(r.Context(), idt.Issuer, idt.Subject)
	if errors.Is(err, errkind.NotFound) {
		u, err = s.linkOIDC(r.Context(), c, idt.Issuer, idt.Subject)
	}
	if err != nil {
		return err
	}
	email = u.Email
	if _, err := s.StartSession(w, r, u.ID); err != nil {
		return err
	}
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
	return nil
}

// linkOIDC links a first sign-in to the user an admin added with the
// provider-verified e-mail.
func (s *Server) linkOIDC(ctx context.Context, c oidcClaims, issuer, subject string) (*db.User, error) {
	if c.Email == "" {
		return nil, fmt.Errorf("sign-in: %s gave no e-mail address, so berth cannot find your account; ask your admin to allow the email scope: %w", s.OIDC.displayName(), errkind.PermissionDenied)
	}
	if !c.verified() {
		return nil, fmt.Errorf("sign-in: %s has not verified the e-mail %s; verify it there, then sign in again: %w", s.OIDC.displayName(), truncate(c.Email, 64), errkind.PermissionDenied)
	}
	u, err := s.DB.LinkOIDC(ctx, c.Email, issuer, subject)
	if errors.Is(err, errkind.NotFound) || errors.Is(err, errkind.Conflict) {
		return nil, fmt.Errorf("sign-in: this hub has no account for %s; ask an organisation admin to add you, then sign in again: %w", truncate(c.Email, 64), errkind.PermissionDenied)
	}
	return u, err
}

func readOIDCFlow(r *http.Request) (*oidcFlow, error) {
	c, err := r.Cookie(oidcCookie)
	if err != nil {
		return nil, err
	}
	data, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil, err
	}
	f := &oidcFlow{}
	if err := json.Unmarshal(data, f); err != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return nil, errOIDCFlow
	}
	f.Next = safeNext(f.Next)
	return f, nil
}
