package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
