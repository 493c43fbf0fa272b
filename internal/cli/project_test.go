package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
)

// TestProjectCommands runs berth project show and set against a hub: an
// admin changes the description and trusted keys (a .pub file and a key
// given inline), bad input fails before the hub is asked, a writer is
// refused, and an unknown project is "no".
func TestProjectCommands(t *testing.T) {
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
	api := func(token, method, path, body string, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %s", method, path, resp.Status)
		}
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
	}
	var setup struct {
		User  struct{ ID int64 }     `json:"user"`
		Token struct{ Token string } `json:"token"`
	}
	api("", "POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"ana@example.com"}`, &setup)
	org, err := d.UserOrganisation(ctx, setup.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Stored directly: registering through the API checks the identities
	// against real storage.
	if err := d.CreateDataPlane(ctx, &db.DataPlane{OrgID: org.ID, Name: "dp", Kind: "s3compat", Settings: `{"bucket":"b","prefix":"rel"}`}); err != nil {
		t.Fatal(err)
	}
	api(setup.Token.Token, "POST", "/api/v1/projects", `{"name":"app","dataplane":"dp"}`, nil)
	var bob struct {
		Token struct{ Token string } `json:"token"`
	}
	api(setup.Token.Token, "POST", "/api/v1/users", `{"email":"bob@example.com"}`, &bob)
	api(setup.Token.Token, "PUT", "/api/v1/projects/app/members/bob@example.com", `{"role":"writer"}`, nil)

	dir := t.TempDir()
	pub1, _, _ := minisign.GenerateKey(rand.Reader)
	pub2, _, _ := minisign.GenerateKey(rand.Reader)
	pubText, _ := pub1.MarshalText()
	pubFile := filepath.Join(dir, "release.key.pub")
	if err := os.WriteFile(pubFile, pubText, 0o644); err != nil {
		t.Fatal(err)
	}
	envs := map[string]map[string]string{}
	run := func(who string, args ...string) (int, string, string) {
		t.Helper()
		if envs[who] == nil {
			d := t.TempDir()
			envs[who] = map[string]string{"XDG_CONFIG_HOME": d, "HOME": d}
		}
		env := envs[who]
		var stdout, stderr bytes.Buffer
		g := &Globals{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Env: func(k string) string { return env[k] }}
		return Main(ctx, args, g), stdout.String(), stderr.String()
	}
	if code, _, stderr := run("ana", "project", "show", "app"); code != ExitUsage || !strings.Contains(stderr, "berth login") {
		t.Errorf("show before login: exit %d\n%s", code, stderr)
	}
	for who, token := range map[string]string{"ana": setup.Token.Token, "bob": bob.Token.Token} {
		if code, _, stderr := run(who, "login", "--url", srv.URL, "--token", token); code != ExitOK {
			t.Fatalf("login %s: exit %d\n%s", who, code, stderr)
		}
	}
	id1, id2 := artifact.KeyID(pub1.ID()), artifact.KeyID(pub2.ID())
	for _, tc := range []struct {
		name string
		who  string
		args []string
		code int
		out  string // in stdout, or in stderr when the exit is not 0
	}{
		{"show", "bob", []string{"project", "show", "app"}, ExitOK, "key prefix:   rel/app\ndescription:  none\ntrusted keys: none"},
		{"nothing to change", "ana", []string{"project", "set", "app"}, ExitUsage, "nothing to change"},
		{"both key flags", "ana", []string{"project", "set", "app", "--trusted-key", pubFile, "--no-trusted-keys"}, ExitUsage, "choose one"},
		{"missing key file", "ana", []string{"project", "set", "app", "--trusted-key", filepath.Join(dir, "nope.pub")}, ExitUsage, "--trusted-key"},
		{"bad description", "ana", []string{"project", "set", "app", "--description", "bell\a"}, ExitUsage, "description: control character"},
		{"set", "ana", []string{"project", "set", "app", "--description", "Release builds", "--trusted-key", pubFile, "--trusted-key", pub2.String()}, ExitOK,
			"project app: changed description, trusted_keys\n"},
		{"shown", "bob", []string{"project", "show", "app"}, ExitOK, "description:  Release builds\ntrusted keys: " + id1 + " " + pub1.String() + "\n              " + id2 + " " + pub2.String() + "\n"},
		{"unchanged", "ana", []string{"project", "set", "app", "--description", "Release builds"}, ExitOK, "project app: nothing changed"},
		{"writer refused", "bob", []string{"project", "set", "app", "--no-trusted-keys"}, ExitDenied, "only an admin of project app"},
		{"unknown project", "ana", []string{"project", "set", "nope", "--description", "x"}, ExitNo, "not found"},
		{"json", "ana", []string{"project", "set", "app", "--no-trusted-keys", "--output", "json"}, ExitOK, `"changed": [` + "\n" + `    "trusted_keys"`},
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
}
