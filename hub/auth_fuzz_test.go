package hub

import (
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// safeNext never lets a sign-in end on another site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/projects?x=1", "//evil.example", "/\\evil.example", "https://evil.example/", "/%2F%2Fevil", "/\t/evil", "javascript:alert(1)", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q: neither the input nor /", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") {
			t.Fatalf("safeNext(%q) = %q leaves the hub", next, got)
		}
		// What a browser resolves it to stays on the hub.
		base, _ := url.Parse("https://berth.example.com/auth/oidc/callback")
		if r := base.ResolveReference(u); r.Host != "berth.example.com" {
			t.Fatalf("safeNext(%q) = %q resolves to %s", next, got, r)
		}
	})
}

// readOIDCFlow takes any cookie without panicking, and refuses flows
// missing a part.
func FuzzReadOIDCFlow(f *testing.F) {
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"state":"s","nonce":"n","verifier":"v","next":"//x"}`)))
	f.Add("not base64!")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"state":"s"}`)))
	f.Fuzz(func(t *testing.T, value string) {
		r := httptest.NewRequest("GET", "/auth/oidc/callback", nil)
		r.Header.Set("Cookie", oidcCookie+"="+value)
		fl, err := readOIDCFlow(r)
		if err != nil {
			return
		}
		if fl.State == "" || fl.Nonce == "" || fl.Verifier == "" || safeNext(fl.Next) != fl.Next {
			t.Fatalf("accepted %+v", fl)
		}
	})
}
