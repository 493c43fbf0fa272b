package hubclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/hubclient"
)

// WaitLogin keeps polling while the request is pending or the hub holds
// the address back, and stops at approval or refusal.
func TestWaitLogin(t *testing.T) {
	tests := []struct {
		name    string
		answers []string // status code and body, in turn
		want    error
	}{
		{"approved after pending and held back", []string{
			"200", `{"status":"pending"}`,
			"429", `{"error":{"code":"too_many","message":"too many attempts"}}`,
			"200", `{"status":"approved","user":{"email":"ana@example.com"},"token":{"token":"berth_abc"}}`}, nil},
		{"denied", []string{"200", `{"status":"pending"}`, "403", `{"error":{"code":"forbidden","message":"the login was denied in the browser: permission denied"}}`}, hubclient.ErrLoginRefused},
		{"not found", []string{"404", `{"error":{"code":"not_found","message":"login request not found"}}`}, errkind.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/login-requests/abc/token" || r.Header.Get("Authorization") != "" {
					t.Errorf("%s %s with %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
				}
				i := int(n.Add(1)-1) * 2
				code := map[string]int{"200": 200, "403": 403, "404": 404, "429": 429}[tt.answers[i]]
				w.WriteHeader(code)
				w.Write([]byte(tt.answers[i+1]))
			}))
			defer srv.Close()
			c := &hubclient.Client{URL: srv.URL}
			login, err := c.WaitLogin(context.Background(), &hubclient.LoginRequest{ID: "abc", PollSecret: "s", Interval: 0.001})
			if tt.want == nil {
				if err != nil || login.Token != "berth_abc" || login.User.Email != "ana@example.com" {
					t.Fatalf("login %+v, %v", login, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || errors.Is(err, hubclient.ErrLoginRefused) != (tt.want == hubclient.ErrLoginRefused) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
			if int(n.Load())*2 != len(tt.answers) {
				t.Errorf("%d polls for %d answers", n.Load(), len(tt.answers)/2)
			}
		})
	}
}
