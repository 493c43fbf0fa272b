package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/testenv"
)

// run calls berth in-process and returns its exit code and output.
func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	g := &cli.Globals{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Env: func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return os.Getenv(k)
		},
	}
	code := cli.Main(context.Background(), args, g)
	return code, stdout.String(), stderr.String()
}

// TestExitCodesOnMinIO checks the documented exit codes against a real
// S3 server: every code a script may branch on.
func TestExitCodesOnMinIO(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	m.CreateBucket(t, "releases")
	for _, kv := range m.AWSEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	env := map[string]string{
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
		"BERTH_STORES":    "eu-west-1=s3://releases?region=eu-west-1&endpoint=" + m.Endpoint,
		"BERTH_PREFIX":    "rel",
	}
	file := filepath.Join(dir, "app.bin")
	other := filepath.Join(dir, "other.bin")
	os.WriteFile(file, bytes.Repeat([]byte("berth"), 3<<20), 0o644)
	os.WriteFile(other, []byte("other"), 0o644)
	out := filepath.Join(dir, "out.bin")

	steps := []struct {
		name string
		args []string
		code int
		want string // in stdout or stderr
	}{
		{"stage", []string{"stage", "app", "1.0.0", file}, 0, "eu-west-1  staged"},
		{"download", []string{"download", "app", "-o", out}, 0, "downloaded app 1.0.0 from eu-west-1"},
		{"exists", []string{"exists", "app", "1.0.0"}, 0, "exists"},
		{"missing", []string{"exists", "app", "2.0.0"}, 1, "does not exist"},
		{"download missing", []string{"download", "app", "2.0.0", "-o", out}, 1, "in none of the 1 regions"},
		{"bad version", []string{"stage", "app", "1.0", file}, 2, "not a semantic version"},
		{"conflict", []string{"stage", "app", "1.0.0", other}, 3, "other bytes"},
		{"json info", []string{"info", "app", "--output", "json"}, 0, `"sha256"`},
	}
	for _, s := range steps {
		code, stdout, stderr := run(t, env, s.args...)
		if code != s.code || !strings.Contains(stdout+stderr, s.want) {
			t.Fatalf("%s: exit %d, want %d with %q\nstdout: %s\nstderr: %s", s.name, code, s.code, s.want, stdout, stderr)
		}
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, bytes.Repeat([]byte("berth"), 3<<20)) {
		t.Fatal("downloaded bytes differ")
	}

	t.Run("wrong credentials exit 4", func(t *testing.T) {
		t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
		code, stdout, stderr := run(t, env, "download", "app", "-o", out)
		if code != cli.ExitDenied || strings.Contains(stdout+stderr, "not-the-secret") {
			t.Fatalf("exit %d, want %d\n%s%s", code, cli.ExitDenied, stdout, stderr)
		}
	})
	t.Run("server down exit 5", func(t *testing.T) {
		m.Kill()
		code, stdout, stderr := run(t, env, "download", "app", "1.0.0", "-o", out)
		if code != cli.ExitUnavailable || !strings.Contains(stderr, "eu-west-1") {
			t.Fatalf("exit %d, want %d\n%s%s", code, cli.ExitUnavailable, stdout, stderr)
		}
	})
}

// TestOnboardMinIO goes from empty servers to a staged artifact: deploy the
// data plane on three MinIO regions, stage with the writer identity it
// created, download with the reader, and deploy again to no effect. Every
// request goes through a proxy that answers a missing key with 403, as S3
// does to these identities (they may list only under the prefix): a new
// version stages, and a missing one is "no", not "access refused".
func TestOnboardMinIO(t *testing.T) {
	servers := testenv.StartRegions(t, 3)
	var proxies []*testenv.DenyingProxy
	for _, m := range servers {
		proxies = append(proxies, testenv.StartDenyingProxy(t, m.Endpoint))
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "berth.yaml")
	admin := servers[0]
	setAWS := func(ak, sk string) {
		t.Setenv("AWS_ACCESS_KEY_ID", ak)
		t.Setenv("AWS_SECRET_ACCESS_KEY", sk)
	}
	for _, kv := range admin.AWSEnv() {
		k, v, _ := strings.Cut(kv, "=")
		if k != "AWS_ENDPOINT_URL" {
			t.Setenv(k, v)
		}
	}
	env := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "config"), "XDG_DATA_HOME": filepath.Join(dir, "data")}
	deploy := []string{"dataplane", "deploy", "--config", cfgPath, "--bucket", "releases", "--prefix", "rel", "--yes"}
	for i, m := range servers {
		deploy = append(deploy, "--endpoint", m.Region+"="+proxies[i].Endpoint)
	}
	setAWS(admin.AccessKey, admin.SecretKey)

	code, stdout, stderr := run(t, env, append(deploy[:len(deploy):len(deploy)], "--output", "json")...)
	if code != 0 {
		t.Fatalf("deploy: exit %d\n%s%s", code, stdout, stderr)
	}
	var out struct {
		Result struct {
			Credentials []struct {
				Role            string `json:"role"`
				AccessKeyID     string `json:"access_key_id"`
				SecretAccessKey string `json:"secret_access_key"`
			} `json:"credentials"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("deploy output is not one JSON document: %v\n%s", err, stdout)
	}
	creds := map[string][2]string{}
	for _, c := range out.Result.Credentials {
		creds[c.Role] = [2]string{c.AccessKeyID, c.SecretAccessKey}
	}
	if len(creds) != 2 {
		t.Fatalf("credentials: %+v", out.Result.Credentials)
	}

	file := filepath.Join(dir, "app.bin")
	os.WriteFile(file, bytes.Repeat([]byte("onboard"), 1<<20), 0o644)
	setAWS(creds["writer"][0], creds["writer"][1])
	if code, stdout, stderr := run(t, env, "stage", "app", "1.0.0", file, "--config", cfgPath); code != 0 || strings.Count(stdout, "staged") != 4 {
		t.Fatalf("stage as writer: exit %d\n%s%s", code, stdout, stderr)
	}
	setAWS(creds["reader"][0], creds["reader"][1])
	got := filepath.Join(dir, "got.bin")
	if code, stdout, stderr := run(t, env, "download", "app", "-o", got, "--config", cfgPath, "--region", servers[2].Region); code != 0 {
		t.Fatalf("download as reader: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, _ := run(t, env, "stage", "app", "1.0.1", file, "--config", cfgPath); code != cli.ExitDenied {
		t.Fatalf("stage as reader: exit %d, want %d", code, cli.ExitDenied)
	}
	for _, s := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"exists", "app", "2.0.0"}, cli.ExitNo, "does not exist"},
		{[]string{"info", "app", "2.0.0"}, cli.ExitNo, "in none of the 3 regions"},
		{[]string{"download", "app", "2.0.0", "-o", got}, cli.ExitNo, "in none of the 3 regions"},
		{[]string{"exists", "app", "1.0.0"}, 0, "exists"},
		// Outside the policy's prefix the listing is refused too.
		{[]string{"exists", "app", "1.0.0", "--prefix", "other"}, cli.ExitDenied, ""},
	} {
		code, stdout, stderr := run(t, env, append(s.args, "--config", cfgPath)...)
		if code != s.code || !strings.Contains(stdout+stderr, s.want) {
			t.Fatalf("%v as reader: exit %d, want %d with %q\n%s%s", s.args, code, s.code, s.want, stdout, stderr)
		}
	}
	var refused int64
	for _, p := range proxies {
		refused += p.Refused()
	}
	if refused == 0 {
		t.Fatal("the proxies refused nothing: the test did not see S3's 403 for a missing key")
	}
	setAWS(creds["reader"][0], "not-the-secret")
	if code, stdout, stderr := run(t, env, "exists", "app", "2.0.0", "--config", cfgPath); code != cli.ExitDenied {
		t.Fatalf("exists with a wrong secret: exit %d, want %d\n%s%s", code, cli.ExitDenied, stdout, stderr)
	}

	setAWS(admin.AccessKey, admin.SecretKey)
	code, stdout, stderr = run(t, env, deploy...)
	if code != 0 || !strings.Contains(stdout, "no changes") || strings.Contains(stdout, "SECRET") {
		t.Fatalf("second deploy: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestSSMBucketNameAndPointers reads the bucket name from an SSM parameter
// and keeps the latest pointer in SSM, as an AWS set-up does: SSM at the
// wire (a fake speaking its JSON protocol), S3 on real MinIO.
func TestSSMBucketNameAndPointers(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	m.CreateBucket(t, "releases")
	fake := awsfake.New(t)
	fake.Setenv(t, "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey) // the fake checks no signatures; MinIO does
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)

	var mu sync.Mutex
	params := map[string]string{"/berth/bucket": "releases"}
	fake.Handle("ssm", "GetParameter", func(r *awsfake.Request) awsfake.Response {
		mu.Lock()
		defer mu.Unlock()
		name, _ := r.JSON["Name"].(string)
		v, ok := params[name]
		if !ok {
			return awsfake.JSONError(400, "ParameterNotFound", "")
		}
		return awsfake.JSON(map[string]any{"Parameter": map[string]any{"Name": name, "Value": v, "Type": "String", "Version": 1}})
	})
	fake.Handle("ssm", "PutParameter", func(r *awsfake.Request) awsfake.Response {
		mu.Lock()
		defer mu.Unlock()
		params[r.JSON["Name"].(string)] = r.JSON["Value"].(string)
		return awsfake.JSON(map[string]any{"Version": 2})
	})

	dir := t.TempDir()
	env := map[string]string{
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"), "XDG_DATA_HOME": filepath.Join(dir, "data"),
		"BERTH_STORES":   "eu-west-1=s3://?region=eu-west-1&bucket_parameter=/berth/bucket&endpoint=" + m.Endpoint,
		"BERTH_POINTERS": "ssm:/berth",
	}
	file := filepath.Join(dir, "app.bin")
	os.WriteFile(file, []byte("from ssm"), 0o644)
	if code, stdout, stderr := run(t, env, "stage", "app", "1.2.0", file); code != 0 {
		t.Fatalf("stage: exit %d\n%s%s", code, stdout, stderr)
	}
	mu.Lock()
	latest := params["/berth/app/latest"]
	mu.Unlock()
	if latest != "1.2.0" {
		t.Fatalf("SSM latest pointer = %q, want 1.2.0", latest)
	}
	out := filepath.Join(dir, "out.bin")
	if code, stdout, stderr := run(t, env, "download", "app", "-o", out); code != 0 || !strings.Contains(stdout, "app 1.2.0") {
		t.Fatalf("download latest: exit %d\n%s%s", code, stdout, stderr)
	}
	if got, _ := os.ReadFile(out); string(got) != "from ssm" {
		t.Fatalf("downloaded %q", got)
	}
	// A missing bucket parameter is a clear error naming the parameter.
	env["BERTH_STORES"] = "eu-west-1=s3://?region=eu-west-1&bucket_parameter=/berth/nope&endpoint=" + m.Endpoint
	if code, _, stderr := run(t, env, "versions", "app"); code != cli.ExitNo || !strings.Contains(stderr, "/berth/nope") {
		t.Fatalf("missing parameter: exit %d\n%s", code, stderr)
	}
}
