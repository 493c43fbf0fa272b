package hubclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/hub/hubclient"
)

func TestAgainstHub(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s := &hub.Server{DB: d, SetupCode: "0123456789abcdef0123456789abcdef"}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/v1/setup", "application/json", strings.NewReader(`{"code":"0123456789abcdef0123456789abcdef","email":"ana@example.com"}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("setup: %v %v", resp, err)
	}
	var token string
	{
		var out struct {
			Token struct{ Token string } `json:"token"`
		}
		decodeBody(t, resp, &out)
		token = out.Token.Token
	}

	c := &hubclient.Client{URL: srv.URL + "/", Token: token}
	u, err := c.Me(ctx)
	if err != nil || u.Email != "ana@example.com" {
		t.Fatalf("me = %+v, %v", u, err)
	}
	bad := &hubclient.Client{URL: srv.URL, Token: token[:len(token)-2] + "xx"}
	if _, err := bad.Me(ctx); !errors.Is(err, hubclient.ErrUnauthenticated) || !errors.Is(err, errkind.PermissionDenied) {
		t.Errorf("bad token: %v", err)
	}
	if _, err := c.Credentials(ctx, "nope", "read"); !errors.Is(err, errkind.NotFound) || !strings.Contains(err.Error(), "project nope") {
		t.Errorf("unknown project: %v", err)
	}
	if _, err := c.Credentials(ctx, "nope", "admin"); !errors.Is(err, errkind.Invalid) {
		t.Errorf("bad role: %v", err)
	}
	down := &hubclient.Client{URL: "http://127.0.0.1:1", Token: token}
	if _, err := down.Me(ctx); !errors.Is(err, errkind.Unavailable) {
		t.Errorf("hub down: %v", err)
	}
	if strings.Contains(func() string { _, err := bad.Me(ctx); return err.Error() }(), token[10:]) {
		t.Error("an error shows the token")
	}

	// Organisations: Org is sent with every request; the hub refuses one
	// the user is not in.
	if hubclient.OrgHeader != hub.OrgHeader {
		t.Fatalf("the client sends %s, the hub reads %s", hubclient.OrgHeader, hub.OrgHeader)
	}
	if o, err := c.CreateOrganisation(ctx, "beta"); err != nil || o.Name != "beta" || o.Role != "admin" {
		t.Fatalf("create beta: %+v, %v", o, err)
	}
	for _, tc := range []struct{ org, want string }{{"", "default"}, {"beta", "beta"}} {
		in := &hubclient.Client{URL: srv.URL, Token: token, Org: tc.org}
		orgs, err := in.Organisations(ctx)
		if err != nil || len(orgs) != 2 {
			t.Fatalf("organisations with Org %q: %+v, %v", tc.org, orgs, err)
		}
		for _, o := range orgs {
			if o.Selected != (o.Name == tc.want) {
				t.Errorf("with Org %q: %+v, want %s selected", tc.org, orgs, tc.want)
			}
		}
	}
	nope := &hubclient.Client{URL: srv.URL, Token: token, Org: "nope"}
	if _, err := nope.Credentials(ctx, "app", "read"); !errors.Is(err, errkind.NotFound) || !strings.Contains(err.Error(), `organisation "nope"`) {
		t.Errorf("an organisation the user is not in: %v", err)
	}
}

// The provider hands out the first grant once, then asks the hub again:
// the credentials cache calls it when the credentials near expiry.
func TestProviderRefreshes(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/api/v1/projects/app/credentials" || r.Header.Get("Authorization") != "Bearer berth_t" {
			http.Error(w, `{"error":{"code":"not_found","message":"no"}}`, 404)
			return
		}
		w.Write([]byte(`{"project":"app","role":"write","prefix":"rel/app","regions":[{"region":"eu-west-1","endpoint":"http://x","bucket":"b","access_key_id":"ASIA2","secret_access_key":"s2","session_token":"t2","expiration":"2030-01-01T00:00:00Z"}]}`))
	}))
	defer srv.Close()
	c := &hubclient.Client{URL: srv.URL, Token: "berth_t"}
	first := &hubclient.Grant{Project: "app", Role: "write", Regions: []hubclient.Region{{Name: "eu-west-1", AccessKeyID: "ASIA1", SecretAccessKey: "s1", Expiration: time.Now().Add(time.Minute)}}}
	p := c.Provider(first, "eu-west-1")
	cr, err := p.Retrieve(context.Background())
	if err != nil || cr.AccessKeyID != "ASIA1" || calls.Load() != 0 {
		t.Fatalf("first retrieve = %+v, %v, %d calls", cr, err, calls.Load())
	}
	cr, err = p.Retrieve(context.Background())
	if err != nil || cr.AccessKeyID != "ASIA2" || cr.SessionToken != "t2" || !cr.CanExpire || calls.Load() != 1 {
		t.Fatalf("refresh = %+v, %v, %d calls", cr, err, calls.Load())
	}
	other := c.Provider(first, "us-east-1")
	other.Retrieve(context.Background())
	if _, err := other.Retrieve(context.Background()); !errors.Is(err, errkind.NotFound) {
		t.Errorf("region gone from the grant: %v", err)
	}
}

func decodeBody(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
