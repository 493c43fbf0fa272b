package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/awsconfig"
	"github.com/berth-dev/berth/internal/testenv"
)

// fakePortal answers the AWS access portal's ListAccounts and
// ListAccountRoles (REST-JSON, token in x-amz-sso_bearer_token) with one
// account per page, so the paginators run.
type fakePortal struct {
	mu     sync.Mutex
	token  string
	roles  map[string][]string // account name -> permission sets
	ids    map[string]string   // account name -> ID
	names  []string            // account order
	denied bool
}

func (p *fakePortal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.denied || r.Header.Get("x-amz-sso_bearer_token") != p.token {
		w.Header().Set("X-Amzn-ErrorType", "UnauthorizedException")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"message":"Session token not found or invalid"}`))
		return
	}
	i := 0
	if tok := r.URL.Query().Get("next_token"); tok != "" {
		i = int(tok[0] - '0')
	}
	out := map[string]any{}
	switch r.URL.Path {
	case "/assignment/accounts":
		if i < len(p.names) {
			n := p.names[i]
			out["accountList"] = []map[string]string{{"accountId": p.ids[n], "accountName": n, "emailAddress": n + "@example.com"}}
		}
	case "/assignment/roles":
		var name string
		for n, id := range p.ids {
			if id == r.URL.Query().Get("account_id") {
				name = n
			}
		}
		if i < len(p.roles[name]) {
			out["roleList"] = []map[string]string{{"accountId": p.ids[name], "roleName": p.roles[name][i]}}
		}
		if i+1 < len(p.roles[name]) {
			out["nextToken"] = string(rune('0' + i + 1))
		}
	default:
		http.NotFound(w, r)
		return
	}
	if r.URL.Path == "/assignment/accounts" && i+1 < len(p.names) {
		out["nextToken"] = string(rune('0' + i + 1))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

const startURL = "https://corp.awsapps.com/start"

// ssoEnv is a home directory with a config file of the user's own, and a
// fake portal.
func ssoEnv(t *testing.T) (map[string]string, *fakePortal, string) {
	home := t.TempDir()
	cfg := filepath.Join(home, ".aws", "config")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("# mine\n[default]\nregion = us-east-1\n\n[profile legacy]\nregion = ap-south-1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	p := &fakePortal{token: "tok-1",
		names: []string{"payments-dev", "payments-prod"},
		ids:   map[string]string{"payments-dev": "111122223333", "payments-prod": "222233334444"},
		roles: map[string][]string{"payments-dev": {"AdministratorAccess", "ReadOnly"}, "payments-prod": {"ReadOnly"}}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return map[string]string{"HOME": home, "AWS_CONFIG_FILE": "", "AWS_ENDPOINT_URL_SSO": srv.URL, "AWS_ENDPOINT_URL": ""}, p, cfg
}

// signIn writes the token cache file "aws sso login --sso-session corp" writes.
func signIn(t *testing.T, home, token string, expires time.Time) {
	path, err := awsconfig.TokenPath(func(k string) string { return map[string]string{"HOME": home}[k] }, "corp")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(path), 0o700)
	data, _ := json.Marshal(map[string]string{"accessToken": token, "expiresAt": expires.UTC().Format(time.RFC3339),
		"region": "eu-west-1", "startUrl": startURL})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSSOConfig(t *testing.T) {
	env, portal, cfg := ssoEnv(t)
	ctx := context.Background()
	flags := []string{"sso", "config", "--session", "corp"}

	// Not signed in yet: the session block only, and what to do next.
	code, stdout, stderr := runBerth(t, ctx, env, append(flags, "--start-url", startURL, "--sso-region", "eu-west-1")...)
	if code != 0 {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	wantIn(t, "stderr", stderr, "aws sso login --sso-session corp", "no cached token")
	data, _ := os.ReadFile(cfg)
	wantIn(t, "config", string(data), "# mine\n[default]\nregion = us-east-1\n", "[sso-session corp]\n", "sso_registration_scopes = sso:account:access\n")
	if strings.Contains(string(data), "[profile payments") {
		t.Errorf("profiles written without a token:\n%s", data)
	}
	if fi, _ := os.Stat(cfg); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's own 0640", fi.Mode().Perm())
	}

	// Signed in: --dry-run prints the diff and changes nothing; the start
	// URL and region now come from the file.
	signIn(t, env["HOME"], "tok-1", time.Now().Add(time.Hour))
	before, _ := os.ReadFile(cfg)
	code, stdout, stderr = runBerth(t, ctx, env, append(flags, "--dry-run")...)
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, stderr)
	}
	wantIn(t, "diff", stdout, "--- "+cfg, "+[profile payments-dev-administratoraccess]\n", "+sso_account_id = 222233334444\n", "+sso_role_name = ReadOnly\n")
	if after, _ := os.ReadFile(cfg); string(after) != string(before) {
		t.Error("--dry-run changed the file")
	}

	code, stdout, stderr = runBerth(t, ctx, env, flags...)
	if code != 0 {
		t.Fatalf("signed-in run: exit %d\n%s", code, stderr)
	}
	wantIn(t, "stdout", stdout, "added profile payments-dev-administratoraccess\n", "added profile payments-dev-readonly\n", "added profile payments-prod-readonly\n")
	// One backup per run that changed the file; the newest is the file as
	// it was before this run.
	backups, _ := filepath.Glob(cfg + ".bak-*")
	if len(backups) != 2 {
		t.Fatalf("backups %v, want two", backups)
	}
	if b, _ := os.ReadFile(backups[1]); string(b) != string(before) {
		t.Errorf("backup holds\n%s\nwant the file as it was\n%s", b, before)
	}
	awsReads(t, cfg, map[string]string{"payments-dev-administratoraccess": "corp", "payments-dev-readonly": "corp", "payments-prod-readonly": "corp"}, "legacy")

	// The portal no longer offers a permission set: its profile goes, the
	// user's sections stay.
	portal.mu.Lock()
	portal.roles["payments-dev"] = []string{"ReadOnly"}
	portal.mu.Unlock()
	code, stdout, stderr = runBerth(t, ctx, env, append(flags, "--output", "json")...)
	if code != 0 {
		t.Fatalf("third run: exit %d\n%s", code, stderr)
	}
	var res awsconfig.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, stdout)
	}
	if strings.Join(res.Changes.Removed, ",") != "payments-dev-administratoraccess" || len(res.Changes.Unchanged) != 2 || !res.Written {
		t.Errorf("changes %+v, want payments-dev-administratoraccess removed and two unchanged", res.Changes)
	}
	awsReads(t, cfg, map[string]string{"payments-dev-readonly": "corp", "payments-dev-administratoraccess": ""}, "legacy")

	// Nothing new: nothing written, no new backup.
	if code, _, stderr = runBerth(t, ctx, env, flags...); code != 0 || !strings.Contains(stderr, "up to date") {
		t.Errorf("fourth run: exit %d, stderr %s", code, stderr)
	}
}

// awsReads checks with the AWS CLI that each profile has the wanted
// sso_session ("" for a profile that must not exist) and that the user's
// own profile is still there.
func awsReads(t *testing.T, cfg string, want map[string]string, own string) {
	t.Helper()
	aws := testenv.AWSCLI(t)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(aws, args...)
		cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(t.TempDir(), "none"), "AWS_PROFILE=", "AWS_DEFAULT_PROFILE=")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	// list-profiles is AWS CLI v2 (and late v1); where it exists it must
	// list every profile berth wrote.
	if out, err := run("configure", "list-profiles"); err == nil {
		for p, session := range want {
			if listed := strings.Contains("\n"+out+"\n", "\n"+p+"\n"); listed != (session != "") {
				t.Errorf("aws configure list-profiles lists %s: %v\n%s", p, listed, out)
			}
		}
	} else if !strings.Contains(out, "Invalid choice") {
		t.Errorf("aws configure list-profiles: %v\n%s", err, out)
	}
	for p, session := range want {
		out, err := run("configure", "get", "sso_session", "--profile", p)
		switch {
		case session == "" && err == nil:
			t.Errorf("aws configure get sso_session --profile %s = %q, want no such profile", p, out)
		case session != "" && (err != nil || out != session):
			t.Errorf("aws configure get sso_session --profile %s = %q, %v; want %s", p, out, err, session)
		}
	}
	if out, err := run("configure", "get", "region", "--profile", own); err != nil || out == "" {
		t.Errorf("aws configure get region --profile %s = %q, %v: the user's profile is gone", own, out, err)
	}
}

func TestSSOConfigRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("portal refuses the token: exit 4, nothing written", func(t *testing.T) {
		env, portal, cfg := ssoEnv(t)
		portal.denied = true
		signIn(t, env["HOME"], "tok-1", time.Now().Add(time.Hour))
		before, _ := os.ReadFile(cfg)
		code, _, stderr := runBerth(t, ctx, env, "sso", "config", "--session", "corp", "--start-url", startURL, "--sso-region", "eu-west-1")
		if code != ExitDenied {
			t.Errorf("exit %d, want %d\n%s", code, ExitDenied, stderr)
		}
		wantIn(t, "stderr", stderr, "aws sso login --sso-session corp")
		if after, _ := os.ReadFile(cfg); string(after) != string(before) {
			t.Error("the file changed")
		}
	})
	t.Run("a profile of the user's with berth's name: exit 3", func(t *testing.T) {
		env, _, cfg := ssoEnv(t)
		os.WriteFile(cfg, []byte("[profile payments-prod-readonly]\nregion = eu-west-1\n"), 0o600)
		signIn(t, env["HOME"], "tok-1", time.Now().Add(time.Hour))
		code, _, stderr := runBerth(t, ctx, env, "sso", "config", "--session", "corp", "--start-url", startURL, "--sso-region", "eu-west-1")
		if code != ExitConflict {
			t.Errorf("exit %d, want %d\n%s", code, ExitConflict, stderr)
		}
		wantIn(t, "stderr", stderr, "[profile payments-prod-readonly] is already in the file")
		if backups, _ := filepath.Glob(cfg + ".bak-*"); len(backups) != 0 {
			t.Errorf("backups %v after a refusal", backups)
		}
	})
	t.Run("no start URL yet: exit 2", func(t *testing.T) {
		env, _, _ := ssoEnv(t)
		code, _, stderr := runBerth(t, ctx, env, "sso", "config", "--session", "corp")
		if code != ExitUsage {
			t.Errorf("exit %d, want %d\n%s", code, ExitUsage, stderr)
		}
		wantIn(t, "stderr", stderr, "give --start-url")
	})
	t.Run("a token for another portal is not used", func(t *testing.T) {
		env, _, cfg := ssoEnv(t)
		signIn(t, env["HOME"], "tok-1", time.Now().Add(time.Hour))
		code, _, stderr := runBerth(t, ctx, env, "sso", "config", "--session", "corp", "--start-url", "https://other.awsapps.com/start", "--sso-region", "eu-west-1")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		wantIn(t, "stderr", stderr, "is for "+startURL)
		if data, _ := os.ReadFile(cfg); strings.Contains(string(data), "[profile payments") {
			t.Errorf("profiles from another portal's token:\n%s", data)
		}
	})
}
