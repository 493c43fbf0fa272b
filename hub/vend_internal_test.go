package hub

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/policy"
)

// TestVendReusesConnections: credential requests share one HTTP client, so
// STS calls do not leave a connection per request open, as bench/hubload
// found.
func TestVendReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		resp := awsfake.AssumeRole()(&awsfake.Request{Form: url.Values{"RoleArn": {"arn:aws:iam::000000000000:role/berth"}, "RoleSessionName": {"s"}}})
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte(strings.TrimSpace(resp.Body)))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			conns.Add(-1)
		}
	}
	srv.Start()
	defer srv.Close()

	s := &Server{}
	session, err := policy.SessionPolicy(policy.SessionParams{Buckets: []string{"releases"}, Prefix: "app"})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := vend(context.Background(), vendInput{Region: "r1", Endpoint: srv.URL, AccessKeyID: "AKIAEXAMPLE", SecretKey: "secret",
			SessionName: "s", Policy: session, Duration: 15 * time.Minute, HTTP: s.awsHTTP()}); err != nil {
			t.Fatal(err)
		}
	}
	// A client per request keeps each connection open until its idle
	// timeout (20 here); a shared one keeps at most its idle pool (10 per
	// host). Excess connections close as they come back, so wait a moment.
	deadline := time.Now().Add(2 * time.Second)
	for conns.Load() > 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := conns.Load(); n > 10 {
		t.Fatalf("after 20 credential requests %d connections stay open; want the calls to share one HTTP client's pool", n)
	}
}
