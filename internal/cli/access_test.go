package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/access/accesstest"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/org"
)

// TestAccessCommands runs berth access against a hub with the access world
// behind it: each person logs in with their own config directory.
func TestAccessCommands(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w := accesstest.NewWorld(t)
	c, err := org.Parse("accounts.yaml", []byte(accesstest.Catalog))
	if err != nil {
		t.Fatal(err)
	}
	center, dir, accounts := access.NewAWS(w.Config(), accesstest.InstanceARN, accesstest.StoreID)
	center.Sleep = func(context.Context, time.Duration) error { return nil }
	s := &hub.Server{DB: d, SetupCode: "0123456789abcdef0123456789abcdef",
		Access: &access.Engine{Catalog: c, Directory: dir, Accounts: accounts, Center: center, Store: d.Access()}}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	post := func(token, path, body string) string {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Token struct{ Token string } `json:"token"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		return out.Token.Token
	}
	tokens := map[string]string{"ana": post("", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"ana@acme.example"}`)}
	for _, name := range []string{"bo", "cy"} {
		tokens[name] = post(tokens["ana"], "/api/v1/users", fmt.Sprintf(`{"email":"%s@acme.example"}`, name))
	}
	envs := map[string]map[string]string{}
	run := func(who string, args ...string) (int, string, string) {
		t.Helper()
		if envs[who] == nil {
			dir := t.TempDir()
			envs[who] = map[string]string{"XDG_CONFIG_HOME": dir, "HOME": dir}
		}
		env := envs[who]
		var stdout, stderr bytes.Buffer
		g := &Globals{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Env: func(k string) string { return env[k] }}
		return Main(ctx, args, g), stdout.String(), stderr.String()
	}
	if code, _, stderr := run("ana", "access", "whoami"); code != ExitUsage || !strings.Contains(stderr, "berth login") {
		t.Errorf("whoami before login: exit %d\n%s", code, stderr)
	}
	for who, token := range tokens {
		if code, _, stderr := run(who, "login", "--url", srv.URL, "--token", token); code != ExitOK {
			t.Fatalf("login %s: exit %d\n%s", who, code, stderr)
		}
	}

	for _, tc := range []struct {
		name string
		who  string
		args []string
		code int
		out  string // in stdout, or in stderr when the exit is not 0
	}{
		{"missing --for", "ana", []string{"access", "request", "pay-prod", "AdministratorAccess", "--reason", "x"}, ExitUsage, "--for"},
		{"missing --reason", "ana", []string{"access", "request", "pay-prod", "AdministratorAccess", "--for", "1h"}, ExitUsage, "--reason"},
		{"too long", "ana", []string{"access", "request", "pay-prod", "AdministratorAccess", "--for", "3h", "--reason", "x"}, ExitUsage, "longer than"},
		{"ineligible", "bo", []string{"access", "request", "pay-prod", "AdministratorAccess", "--for", "1h", "--reason", "x"}, ExitDenied, "group oncall"},
		{"request", "ana", []string{"access", "request", "pay-prod", "AdministratorAccess", "--for", "1h", "--reason", "INC-1"}, ExitOK, "request 1: AdministratorAccess on pay-prod for 1h, waiting for approval by leads"},
		{"pending for bo", "bo", []string{"access", "list", "--pending"}, ExitOK, "1   pending  ana@acme.example"},
		{"nothing for cy", "cy", []string{"access", "list", "--pending"}, ExitOK, "no requests"},
		{"self-approval", "ana", []string{"access", "approve", "1"}, ExitDenied, "self-approval"},
		{"not found", "bo", []string{"access", "approve", "7"}, ExitNo, "not found"},
		{"bad id", "bo", []string{"access", "approve", "x"}, ExitUsage, "REQUEST_ID"},
		{"approve", "bo", []string{"access", "approve", "1", "--reason", "ok"}, ExitOK, "request 1 approved: AdministratorAccess on pay-prod for ana@acme.example\nassigned until"},
		{"approve twice", "bo", []string{"access", "approve", "1"}, ExitConflict, "is approved"},
		{"whoami", "ana", []string{"access", "whoami"}, ExitOK, "AdministratorAccess on pay-prod, 1h left"},
		{"revoke", "ana", []string{"access", "revoke", "1"}, ExitOK, "request 1 revoked"},
		{"mine", "ana", []string{"access", "list", "--mine"}, ExitOK, "revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(tc.who, tc.args...)
			got := stdout
			if tc.code != ExitOK {
				got = stderr
			}
			if code != tc.code || !strings.Contains(got, tc.out) {
				t.Errorf("exit %d, want %d; want %q in\n%s%s", code, tc.code, tc.out, stdout, stderr)
			}
		})
	}
	if w.Has("u-ana", accesstest.AdminARN) || w.Creates != 1 || w.Deletes != 1 {
		t.Errorf("after revoke: assigned %v, %d creates, %d deletes", w.Has("u-ana", accesstest.AdminARN), w.Creates, w.Deletes)
	}
	code, stdout, _ := run("ana", "access", "list", "--output", "json")
	var list []map[string]any
	if code != ExitOK || json.Unmarshal([]byte(stdout), &list) != nil || len(list) != 1 || list[0]["status"] != "revoked" {
		t.Errorf("list --output json: exit %d\n%s", code, stdout)
	}
}

func TestAccessServerFlags(t *testing.T) {
	dir := t.TempDir()
	g := &Globals{Env: func(string) string { return "" }}
	for _, tc := range []struct {
		name string
		o    accessServerOpts
		want string
	}{
		{"webhook alone", accessServerOpts{webhook: "https://hooks.example/x"}, "--access-webhook needs"},
		{"catalog alone", accessServerOpts{catalog: "accounts.yaml"}, "needs all of"},
		{"bad arn", accessServerOpts{catalog: "a.yaml", instanceARN: "ssoins-1", storeID: "d-1234567890"}, "--sso-instance-arn"},
		{"bad store", accessServerOpts{catalog: "a.yaml", instanceARN: "arn:aws:sso:::instance/ssoins-1234567890abcdef", storeID: "store"}, "--identity-store-id"},
		{"no catalog file", accessServerOpts{catalog: filepath.Join(dir, "none.yaml"), instanceARN: "arn:aws:sso:::instance/ssoins-1234567890abcdef", storeID: "d-1234567890"}, "--catalog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.accessEngine(context.Background(), tc.o)
			if err == nil || ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("= %v (exit %d), want usage error with %q", err, ExitCode(err), tc.want)
			}
		})
	}
	if e, err := g.accessEngine(context.Background(), accessServerOpts{}); e != nil || err != nil {
		t.Errorf("no flags: %v %v", e, err)
	}
}
