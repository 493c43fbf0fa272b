package hub

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/policy"
)

// TestVendReusesConnections: credential requests share one HTTP client, so
// STS calls reuse connections instead of opening (and leaving idle) one per
// request, as bench/hubload found.
func TestVendReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		resp := awsfake.AssumeRole()(&awsfake.Request{Form: url.Values{"RoleArn": {"arn:aws:iam::000000000000:role/berth"}, "RoleSessionName": {"s"}}})
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write([]byte(resp.Body))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
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
	// A client per request opens 20; a shared one a few at most (the SDK
	// may drop a connection whose response body it did not drain).
	if n := conns.Load(); n > 5 {
		t.Fatalf("20 sequential credential requests opened %d connections; want them to share a few", n)
	}
}
