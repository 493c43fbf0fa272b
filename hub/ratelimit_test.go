package hub_test

import (
	"net/http"
	"net/http/httptest"
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
