package hub_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/hub"
)

type loginRequest struct {
	ID         string  `json:"id"`
	UserCode   string  `json:"user_code"`
	ApproveURL string  `json:"approve_url"`
	PollSecret string  `json:"poll_secret"`
	Interval   float64 `json:"interval"`
}

func startLogin(t *testing.T, c *client) loginRequest {
	t.Helper()
	var l loginRequest
	if code := c.do("POST", "/api/v1/login-requests", `{"host":"build-7","client_name":"berth (linux/amd64)"}`, &l); code != http.StatusCreated {
		t.Fatalf("login request: %d", code)
	}
	return l
}

// poll returns the status code and the answer's status, token or error.
func poll(t *testing.T, c *client, l loginRequest) (int, string) {
	t.Helper()
	var out struct {
		Status string `json:"status"`
		Token  struct {
			Token string `json:"token"`
			Name  string `json:"name"`
		} `json:"token"`
	}
	var raw json.RawMessage
	code := c.do("POST", "/api/v1/login-requests/"+l.ID+"/token", `{"poll_secret":"`+l.PollSecret+`"}`, &raw)
	if code >= 400 {
		var msg string
		c.do("POST", "/api/v1/login-requests/"+l.ID+"/token", `{"poll_secret":"`+l.PollSecret+`"}`, &msg)
		return code, msg
	}
	json.Unmarshal(raw, &out)
	if out.Token.Token != "" {
		if out.Token.Name != "berth login on build-7" {
			t.Errorf("token name %q", out.Token.Name)
		}
		return code, out.Token.Token
	}
	return code, out.Status
}

func TestLoginRequestApproval(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, dump func() string) {
		now := time.Now()
		s.Now = func() time.Time { return now }
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		ana := setUp(t, s, srv.URL)
		cli := &client{t: t, url: srv.URL}

		l := startLogin(t, cli)
		if l.ApproveURL != srv.URL+"/login/"+l.ID || len(l.UserCode) != 9 || l.Interval != 2 || len(l.PollSecret) < 40 {
			t.Errorf("login request %+v", l)
		}
		if code, status := poll(t, cli, l); code != 200 || status != "pending" {
			t.Fatalf("first poll: %d %s", code, status)
		}
		wrong := l
		wrong.PollSecret = "guessed"
		if code, msg := poll(t, cli, wrong); code != http.StatusNotFound {
			t.Errorf("poll with a wrong secret: %d %s", code, msg)
		}

		page := "/login/" + l.ID
		// Not signed in: to sign-in, and back here after it.
		if code, _, resp := newBrowser(t, srv.URL).do("GET", page, ""); code != http.StatusSeeOther || resp.Header.Get("Location") != "/signin?next="+url.QueryEscape(page) {
			t.Errorf("approval page without a session: %d %s", code, resp.Header.Get("Location"))
		}
		code, body, resp := ana.do("GET", page, "")
		// The page does not show the code: whoever approves types it from
		// the terminal, so a link sent by someone else cannot be approved
		// by a click.
		if code != 200 || !strings.Contains(body, "berth on build-7</strong> asks to act as you") || strings.Contains(body, l.UserCode) ||
			!strings.Contains(body, `name="csrf_token" value="`+ana.csrf(s)+`"`) {
			t.Fatalf("approval page: %d %s", code, body)
		}
		checkPageHeaders(t, "approval page", resp, body)
		if code, _, _ := ana.form(page, url.Values{"decision": {"approve"}}); code != http.StatusForbidden {
			t.Errorf("approve without the CSRF token: %d", code)
		}
		if code, _ := poll(t, cli, l); code != 200 {
			t.Errorf("still pending after a refused approval: %d", code)
		}
		for _, typed := range []string{"", "BCDF-GHJK", l.UserCode + "X"} {
			if code, body, _ := ana.form(page, url.Values{"decision": {"approve"}, "user_code": {typed}, "csrf_token": {ana.csrf(s)}}); code != http.StatusBadRequest ||
				!strings.Contains(body, `id="user_code-error" role="alert"`) || !strings.Contains(body, `aria-invalid="true"`) || strings.Contains(body, l.UserCode+"<") {
				t.Errorf("approve with code %q: %d %s", typed, code, body)
			}
		}
		if code, status := poll(t, cli, l); code != 200 || status != "pending" {
			t.Errorf("after wrong codes: %d %s, want pending", code, status)
		}
		typed := strings.ToLower(strings.ReplaceAll(l.UserCode, "-", " ")) // case and separators do not matter
		if code, _, _ := ana.form(page, url.Values{"decision": {"approve"}, "user_code": {typed}, "csrf_token": {ana.csrf(s)}}); code != http.StatusSeeOther {
			t.Fatalf("approve: %d", code)
		}
		if code, body, _ := ana.do("GET", page, ""); code != 200 || !strings.Contains(body, "is approved") || strings.Contains(body, "<button") {
			t.Errorf("page after approval: %d %s", code, body)
		}
		if code, _, _ := ana.form(page, url.Values{"decision": {"deny"}, "csrf_token": {ana.csrf(s)}}); code != http.StatusConflict {
			t.Errorf("deny after approve: %d", code)
		}
		code, token := poll(t, cli, l)
		if code != 200 || !strings.HasPrefix(token, hub.TokenPrefix) {
			t.Fatalf("poll after approval: %d %s", code, token)
		}
		var me map[string]any
		if code := (&client{t: t, url: srv.URL, token: token}).do("GET", "/api/v1/me", "", &me); code != 200 || me["email"] != "ana@example.com" {
			t.Errorf("the new token: %d %v", code, me)
		}
		if code, msg := poll(t, cli, l); code != http.StatusConflict {
			t.Errorf("collect twice: %d %s", code, msg)
		}
		if d := dump(); strings.Contains(d, l.PollSecret) || strings.Contains(d, token) {
			t.Error("the poll secret or the token is stored in clear")
		}

		// Denied.
		l = startLogin(t, cli)
		if code, _, _ := ana.form("/login/"+l.ID, url.Values{"decision": {"deny"}, "csrf_token": {ana.csrf(s)}}); code != http.StatusSeeOther {
			t.Fatalf("deny: %d", code)
		}
		if code, msg := poll(t, cli, l); code != http.StatusForbidden || !strings.Contains(msg, "denied") {
			t.Errorf("poll after denial: %d %s", code, msg)
		}

		// Expired before anyone decided.
		l = startLogin(t, cli)
		now = now.Add(10*time.Minute + time.Second)
		if code, msg := poll(t, cli, l); code != http.StatusForbidden || !strings.Contains(msg, "expired") {
			t.Errorf("poll after expiry: %d %s", code, msg)
		}
		if code, body, _ := ana.do("GET", "/login/"+l.ID, ""); code != http.StatusForbidden || !strings.Contains(body, "expired") {
			t.Errorf("page after expiry: %d %s", code, body)
		}
		if code, _, _ := ana.form("/login/"+l.ID, url.Values{"decision": {"approve"}, "csrf_token": {ana.csrf(s)}}); code != http.StatusForbidden {
			t.Errorf("approve after expiry: %d", code)
		}
		if code, _, _ := ana.do("GET", "/login/nope", ""); code != http.StatusNotFound {
			t.Errorf("unknown request page: %d", code)
		}
	})
}

func TestLoginRequestInput(t *testing.T) {
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	now := time.Now()
	s.Now = func() time.Time { return now }
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c := &client{t: t, url: srv.URL}
	for _, body := range []string{`{"host":""}`, `{"host":"a\u001b[31mred"}`, `{"host":"` + strings.Repeat("h", 254) + `"}`, `{"host":"x","admin":true}`} {
		var msg string
		if code := c.do("POST", "/api/v1/login-requests", body, &msg); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, code, msg)
		}
	}
	// Four bad requests and two good ones use the six a minute.
	startLogin(t, c)
	startLogin(t, c)
	var msg string
	if code := c.do("POST", "/api/v1/login-requests", `{"host":"x"}`, &msg); code != http.StatusTooManyRequests {
		t.Errorf("7th request in a minute: %d %s", code, msg)
	}
	now = now.Add(10 * time.Second)
	startLogin(t, c)
}
