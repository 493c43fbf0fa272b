package hub_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Failed sign-ins of each kind count against the caller's address: after
// FailedAuthLimit of them it is answered 429 with the error shape and
// Retry-After, also for the right credentials, until the bucket refills.
func TestFailedSignInsAreLimited(t *testing.T) {
	tests := []struct {
		name string
		// fail makes one failed attempt; ok, when set, one that succeeds.
		fail, ok func(c *client) int
	}{
		{"tokens",
			func(c *client) int {
				c.token = "berth_0000000000000000_wrong"
				return c.do("GET", "/api/v1/me", "", new(string))
			},
			nil},
		{"setup codes",
			func(c *client) int {
				c.token = ""
				return c.do("POST", "/api/v1/setup", `{"code":"wrong","email":"ana@example.com"}`, new(string))
			},
			func(c *client) int {
				c.token = ""
				return c.do("POST", "/api/v1/setup", `{"code":"`+setupCode+`","email":"ana@example.com"}`, new(string))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
			now := time.Now()
			s.Now = func() time.Time { return now }
			s.FailedAuthLimit = 5
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			c := &client{t: t, url: srv.URL}
			for i := range 5 {
				if code := tt.fail(c); code == http.StatusTooManyRequests {
					t.Fatalf("attempt %d refused as too many", i+1)
				}
			}
			var msg string
			c.token = "berth_0000000000000000_wrong"
			if code := c.do("GET", "/api/v1/me", "", &msg); code != http.StatusTooManyRequests || !strings.HasPrefix(msg, "too_many: too many attempts") {
				t.Errorf("after 5 failures: %d %s", code, msg)
			}
			if code := tt.fail(c); code != http.StatusTooManyRequests {
				t.Errorf("another failure: %d", code)
			}
			now = now.Add(12 * time.Second) // 5 a minute: one back every 12 s
			if code := tt.fail(c); code == http.StatusTooManyRequests {
				t.Errorf("after 12 seconds: still refused")
			}
			if code := tt.fail(c); code != http.StatusTooManyRequests {
				t.Errorf("at once again: %d", code)
			}
			now = now.Add(time.Minute)
			if tt.ok != nil {
				if code := tt.ok(c); code != http.StatusCreated {
					t.Errorf("the right code after a minute: %d", code)
				}
			}
		})
	}
}

// Behind a trusted proxy, failed sign-ins count against the address the
// proxy names in X-Forwarded-For, and the audit log records it; without
// --trusted-proxy the header is ignored, so a client cannot escape its
// limit by sending one.
func TestTrustedProxyForwardedAddress(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
		s.FailedAuthLimit = 2
		now := time.Now()
		s.Now = func() time.Time { return now }
		if trusted {
			s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		}
		srv := httptest.NewServer(s.Handler())
		do := func(method, path, token, body, xff string) (int, []byte) {
			t.Helper()
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			req.Header.Set("X-Forwarded-For", xff)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, data
		}
		wrong := "berth_0000000000000000_wrong"
		for range 2 {
			if code, _ := do("GET", "/api/v1/me", wrong, "", "198.51.100.1"); code != http.StatusUnauthorized {
				t.Fatalf("trusted=%v: failed attempt: %d", trusted, code)
			}
		}
		if code, _ := do("GET", "/api/v1/me", wrong, "", "198.51.100.1"); code != http.StatusTooManyRequests {
			t.Errorf("trusted=%v: third failure from the same client: %d, want 429", trusted, code)
		}
		want := http.StatusUnauthorized // another client behind the proxy has its own bucket
		if !trusted {
			want = http.StatusTooManyRequests // the header is ignored: one peer, one bucket
		}
		if code, _ := do("GET", "/api/v1/me", wrong, "", "198.51.100.2"); code != want {
			t.Errorf("trusted=%v: another forwarded client: %d, want %d", trusted, code, want)
		}

		now = now.Add(time.Minute) // the buckets refill
		code, body := do("POST", "/api/v1/setup", "", `{"code":"`+setupCode+`","email":"ana@example.com"}`, "")
		var setup struct {
			Token struct{ Token string } `json:"token"`
		}
		if err := json.Unmarshal(body, &setup); code != http.StatusCreated || err != nil {
			t.Fatalf("trusted=%v: setup: %d %s", trusted, code, body)
		}
		if code, body := do("POST", "/api/v1/tokens", setup.Token.Token, `{"name":"ci"}`, "1.2.3.4, 203.0.113.7"); code != http.StatusCreated {
			t.Fatalf("trusted=%v: create a token: %d %s", trusted, code, body)
		}
		code, body = do("GET", "/api/v1/audit?action=token.create", setup.Token.Token, "", "")
		wantIP := "203.0.113.7"
		if !trusted {
			wantIP = "127.0.0.1"
		}
		var audit struct {
			Entries []struct {
				SourceIP string `json:"source_ip"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(body, &audit); code != http.StatusOK || err != nil || len(audit.Entries) != 1 || audit.Entries[0].SourceIP != wantIP {
			t.Errorf("trusted=%v: audit of the token: %d %s, want source_ip %s", trusted, code, body, wantIP)
		}
		srv.Close()
	}
}
