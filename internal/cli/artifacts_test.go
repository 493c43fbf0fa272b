package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
)

// runBerth runs berth in-process with env on top of the process's.
func runBerth(t *testing.T, ctx context.Context, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	g := &Globals{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Env: func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return os.Getenv(k)
		},
	}
	code := Main(ctx, args, g)
	return code, stdout.String(), stderr.String()
}

func localEnv(t *testing.T) (map[string]string, string) {
	dir := t.TempDir()
	return map[string]string{
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
		"BERTH_STORES":    "local=file://" + filepath.Join(dir, "store"),
		"BERTH_STAGED_BY": "test",
	}, dir
}

// Region failures read as one line per region, without the SDK's request
// ids and retry counts unless -v; a region that refuses the credentials
// says "access refused", in text and in JSON.
func TestRegionMessagesOnMinIO(t *testing.T) {
	ms := testenv.StartRegions(t, 2)
	other := testenv.StartMinIO(t, "ap-southeast-2") // its own secret: it refuses ours
	var stores []string
	for _, m := range append(ms, other) {
		m.CreateBucket(t, "releases")
		stores = append(stores, m.Region+"=s3://releases?region="+m.Region+"&endpoint="+m.Endpoint)
	}
	for _, kv := range ms[0].AWSEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	env := map[string]string{
		"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"XDG_DATA_HOME":   filepath.Join(dir, "data"),
		"BERTH_STORES":    strings.Join(stores[:2], ","),
		"BERTH_STAGED_BY": "test",
	}
	ctx := context.Background()
	file := filepath.Join(dir, "app.bin")
	os.WriteFile(file, []byte("release"), 0o644)
	if code, out, errOut := runBerth(t, ctx, env, "stage", "app", "1.0.0", file); code != 0 {
		t.Fatalf("stage: exit %d\n%s%s", code, out, errOut)
	}

	t.Run("missing version", func(t *testing.T) {
		code, _, stderr := runBerth(t, ctx, env, "download", "app", "2.0.0", "-o", filepath.Join(dir, "out"))
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != ExitNo || len(lines) != 3 || strings.Contains(stderr, "RequestID") || strings.Contains(stderr, "level=") {
			t.Fatalf("exit %d, want %d with a header and one line per region, no request ids, no log lines:\n%s", code, ExitNo, stderr)
		}
		if !strings.Contains(lines[1], "region eu-west-1: ") || !strings.Contains(lines[1], "NoSuchKey") {
			t.Errorf("region line %q does not say which region and what it answered", lines[1])
		}
		_, _, verbose := runBerth(t, ctx, env, "download", "app", "2.0.0", "-o", filepath.Join(dir, "out"), "-v")
		if !strings.Contains(verbose, "RequestID") {
			t.Errorf("-v hides the request ids:\n%s", verbose)
		}
	})

	env["BERTH_STORES"] = strings.Join(stores, ",")
	t.Run("refused region", func(t *testing.T) {
		code, stdout, stderr := runBerth(t, ctx, env, "stage", "app", "1.0.0", file)
		if code != ExitDenied || !strings.Contains(stdout, "ap-southeast-2  access refused") || strings.Contains(stdout+stderr, "RequestID") {
			t.Fatalf("exit %d, want %d with the region's status \"access refused\" and no request ids:\n%s%s", code, ExitDenied, stdout, stderr)
		}
		code, stdout, _ = runBerth(t, ctx, env, "stage", "app", "1.0.0", file, "--output", "json")
		var res struct {
			Regions []struct{ Region, Status, ErrorKind string }
		}
		json.Unmarshal([]byte(stdout), &res)
		for _, r := range res.Regions {
			if r.Region == "ap-southeast-2" && r.Status != "access-refused" {
				t.Fatalf("JSON status of the refused region: %+v", r)
			}
		}
		if !strings.Contains(stdout, `"error_kind": "access-refused"`) {
			t.Fatalf("JSON has no error_kind:\n%s", stdout)
		}

		code, stdout, stderr = runBerth(t, ctx, env, "info", "app", "1.0.0")
		if code != 0 || !strings.Contains(stdout, "access refused: ") || strings.Contains(stdout, "RequestID") {
			t.Fatalf("info: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = runBerth(t, ctx, env, "download", "app", "1.0.0", "-o", filepath.Join(dir, "got"), "--region", "ap-southeast-2")
		if code != 0 || !strings.Contains(stderr, "region ap-southeast-2 refused access: ") || strings.Contains(stderr, "RequestID") {
			t.Fatalf("download: exit %d\n%s%s", code, stdout, stderr)
		}
	})

	t.Run("info and versions ask one region", func(t *testing.T) {
		code, stdout, stderr := runBerth(t, ctx, env, "info", "app", "--region", "eu-west-1", "--output", "json")
		if code != 0 || strings.Contains(stdout, "ap-southeast-2") || !strings.Contains(stdout, `"present": true`) {
			t.Fatalf("info --region: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = runBerth(t, ctx, env, "versions", "app", "--region", "us-east-1")
		if code != 0 || !strings.Contains(stdout, "1.0.0") || stderr != "" {
			t.Fatalf("versions --region: exit %d\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = runBerth(t, ctx, env, "versions", "app")
		if code != 0 || !strings.Contains(stderr, "warning") {
			t.Fatalf("versions without --region should warn about the refused region: exit %d\n%s%s", code, stdout, stderr)
		}
		code, _, stderr = runBerth(t, ctx, env, "info", "app", "--region", "mars-1")
		if code != ExitUsage || !strings.Contains(stderr, `region "mars-1" is not configured`) {
			t.Fatalf("info --region mars-1: exit %d\n%s", code, stderr)
		}
	})
}

// Ctrl-C reads "interrupted" and exits 130, not "context canceled".
func TestInterrupted(t *testing.T) {
	env, dir := localEnv(t)
	file := filepath.Join(dir, "app.bin")
	os.WriteFile(file, bytes.Repeat([]byte("x"), 1<<20), 0o644)
	if code, out, errOut := runBerth(t, context.Background(), env, "stage", "app", "1.0.0", file); code != 0 {
		t.Fatalf("stage: exit %d\n%s%s", code, out, errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, args := range [][]string{
		{"download", "app", "1.0.0", "-o", filepath.Join(dir, "out")},
		{"stage", "app", "2.0.0", file},
		{"verify", "app", "1.0.0"},
	} {
		code, _, stderr := runBerth(t, ctx, env, args...)
		if code != ExitInterrupted || !strings.Contains(stderr, "berth: interrupted") || strings.Contains(stderr, "context canceled") {
			t.Errorf("%s: exit %d, want %d saying \"interrupted\":\n%s", args[0], code, ExitInterrupted, stderr)
		}
	}
}
