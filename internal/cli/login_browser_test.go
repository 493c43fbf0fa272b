package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
)

// browserHub is a hub with a signed-in browser session for approving.
type browserHub struct {
	s      *hub.Server
	url    string
	cookie *http.Cookie
	mu     sync.Mutex
	now    time.Time
}

func newBrowserHub(t *testing.T) *browserHub {
	ctx := context.Background()
	d, err := db.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h := &browserHub{now: time.Now()}
	h.s = &hub.Server{DB: d, SetupCode: "0123456789abcdef0123456789abcdef", LoginPollInterval: 10 * time.Millisecond,
		Now: func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now }}
	srv := httptest.NewServer(h.s.Handler())
	t.Cleanup(srv.Close)
	h.url = srv.URL
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(srv.URL+"/setup", url.Values{"code": {"0123456789abcdef0123456789abcdef"}, "email": {"ana@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == hub.SessionCookie {
			h.cookie = c
		}
	}
	if h.cookie == nil {
		t.Fatalf("setup: %d, no session", resp.StatusCode)
	}
	return h
}

func (h *browserHub) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(d)
}

// decide approves or denies on the approval page, as the browser does.
func (h *browserHub) decide(t *testing.T, approveURL, decision, userCode string) {
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(h.cookie)
	form := url.Values{"decision": {decision}, "user_code": {userCode}, "csrf_token": {h.s.CSRFToken(req)}}
	post, _ := http.NewRequest("POST", approveURL, strings.NewReader(form.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.AddCookie(h.cookie)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("%s: %d", decision, resp.StatusCode)
	}
}

func TestLoginInTheBrowser(t *testing.T) {
	tests := []struct {
		name string
		// act runs once the CLI printed the approval link.
		act      func(t *testing.T, h *browserHub, approveURL, userCode string)
		wantExit int
		wantErr  string
	}{
		{"approved", func(t *testing.T, h *browserHub, u, code string) { h.decide(t, u, "approve", code) }, 0, ""},
		{"denied", func(t *testing.T, h *browserHub, u, _ string) { h.decide(t, u, "deny", "") }, ExitDenied, "denied in the browser"},
		{"expired", func(t *testing.T, h *browserHub, _, _ string) { h.advance(11 * time.Minute) }, ExitDenied, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newBrowserHub(t)
			dir := t.TempDir()
			// BROWSER=true "opens" the link without a browser.
			env := map[string]string{"XDG_CONFIG_HOME": dir, "HOME": dir, "BROWSER": "true"}
			var stdout, stderr syncBuffer
			g := &Globals{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Env: func(k string) string { return env[k] }}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done := make(chan int)
			go func() { done <- Main(ctx, []string{"login", "--url", h.url}, g) }()

			link := regexp.MustCompile(`type the code ([A-Z]{4}-[A-Z]{4}):\n  (\S+)\n`)
			var m []string
			for m == nil {
				select {
				case code := <-done:
					t.Fatalf("login ended before approval: exit %d\n%s", code, stderr.String())
				case <-time.After(10 * time.Millisecond):
				}
				m = link.FindStringSubmatch(stderr.String())
			}
			if !strings.HasPrefix(m[2], h.url+"/login/") {
				t.Fatalf("approval link %q", m[2])
			}
			tt.act(t, h, m[2], m[1])
			code := <-done
			if code != tt.wantExit || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantExit, stdout.String(), stderr.String())
			}
			if testing.Verbose() {
				t.Log(stderr.String())
			}
			data, err := os.ReadFile(filepath.Join(dir, "berth", "hubs.yaml"))
			if tt.wantExit != 0 {
				if err == nil {
					t.Errorf("hubs.yaml written after a refused login:\n%s", data)
				}
				return
			}
			if !strings.Contains(stdout.String(), "logged in to "+h.url+" as ana@example.com") || !strings.Contains(string(data), "token: berth_") {
				t.Errorf("stdout: %s\nhubs.yaml: %s", stdout.String(), data)
			}
			if strings.Contains(stdout.String()+stderr.String(), "berth_") {
				t.Error("login printed the token")
			}
		})
	}
}
