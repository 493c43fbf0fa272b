package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/internal/minisigntest"
)

func TestPlainHTTPHost(t *testing.T) {
	tests := []struct {
		endpoint, host string
		warn           bool
	}{
		{"http://10.0.0.5:9000", "10.0.0.5:9000", true},
		{"HTTP://minio.internal", "minio.internal", true},
		{"http://user:secret@minio.example.com", "minio.example.com", true},
		{"http://[2001:db8::1]:9000", "[2001:db8::1]:9000", true},
		{"https://minio.example.com", "", false},
		{"http://127.0.0.1:9000", "", false},
		{"http://127.8.9.10", "", false},
		{"http://[::1]:9000", "", false},
		{"http://[::ffff:127.0.0.1]:9000", "", false},
		{"http://localhost:9000", "", false},
		{"http://LOCALHOST", "", false},
		{"", "", false},
		{"::", "", false},
	}
	for _, tc := range tests {
		host, warn := plainHTTPHost(tc.endpoint)
		if host != tc.host || warn != tc.warn {
			t.Errorf("plainHTTPHost(%q) = %q, %v; want %q, %v", tc.endpoint, host, warn, tc.host, tc.warn)
		}
	}
}

func TestWarnPlainHTTP(t *testing.T) {
	tests := []struct {
		name    string
		regions []config.Region
		env     map[string]string
		quiet   bool
		want    string
	}{
		{"endpoint in the store URL", []config.Region{{Name: "eu", Store: "s3://releases?region=eu-west-1&endpoint=http://10.1.1.1:9000"}}, nil, false,
			"berth: warning: eu (http://10.1.1.1:9000) reached over plain http"},
		{"endpoint from the environment", []config.Region{{Name: "eu", Store: "s3://releases?region=eu-west-1"}}, map[string]string{"AWS_ENDPOINT_URL": "http://minio.lan"}, false,
			"eu (http://minio.lan)"},
		{"service variable first", []config.Region{{Name: "eu", Store: "s3://releases?region=eu-west-1"}},
			map[string]string{"AWS_ENDPOINT_URL_S3": "https://s3.lan", "AWS_ENDPOINT_URL": "http://minio.lan"}, false, ""},
		{"credentials in the URL stay out", []config.Region{{Name: "eu", Store: "s3://releases?region=eu-west-1&endpoint=http://ak:sk@10.1.1.1"}}, nil, false,
			"eu (http://10.1.1.1)"},
		{"loopback", []config.Region{{Name: "eu", Store: "s3://releases?region=eu-west-1&endpoint=http://127.0.0.1:9000"}}, nil, false, ""},
		{"file store", []config.Region{{Name: "local", Store: "file:///srv/berth"}}, map[string]string{"AWS_ENDPOINT_URL": "http://minio.lan"}, false, ""},
		{"quiet", []config.Region{{Name: "eu", Store: "s3://releases?region=eu-west-1&endpoint=http://10.1.1.1:9000"}}, nil, true, ""},
	}
	for _, tc := range tests {
		var stderr bytes.Buffer
		g := &Globals{Stderr: &stderr, Quiet: tc.quiet, Env: func(k string) string { return tc.env[k] }}
		g.warnPlainHTTP(tc.regions)
		got := stderr.String()
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) || strings.Count(got, "\n") > 1 || strings.Contains(got, "sk@") {
			t.Errorf("%s: stderr %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestTrustedKeys(t *testing.T) {
	dir := t.TempDir()
	pubA, _, _ := minisign.GenerateKey(rand.Reader)
	pubB, _, _ := minisign.GenerateKey(rand.Reader)
	fileA := filepath.Join(dir, "a.pub")
	text, _ := pubA.MarshalText()
	os.WriteFile(fileA, text, 0o644)
	t.Chdir(dir)

	tests := []struct {
		name              string
		flags, configured []string
		want              []minisign.PublicKey
		err               error
	}{
		{"none", nil, nil, nil, nil},
		{"config key and absolute file", nil, []string{pubB.String(), fileA}, []minisign.PublicKey{pubB, pubA}, nil},
		{"flags replace the config", []string{"a.pub"}, []string{pubB.String()}, []minisign.PublicKey{pubA}, nil},
		{"flag key string", []string{pubB.String()}, nil, []minisign.PublicKey{pubB}, nil},
		{"relative path in the config", nil, []string{"a.pub"}, nil, config.ErrInvalid},
		{"missing file in the config", nil, []string{filepath.Join(dir, "nope.pub")}, nil, config.ErrInvalid},
		{"missing file flag", []string{"nope.pub"}, nil, nil, errUsage},
		{"not a key", []string{fileA + "x"}, nil, nil, errUsage},
	}
	for _, tc := range tests {
		got, err := trustedKeys(tc.flags, tc.configured)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%s: %d keys, err %v", tc.name, len(got), err)
			continue
		}
		for i := range got {
			if !got[i].Equal(tc.want[i]) {
				t.Errorf("%s: key %d differs", tc.name, i)
			}
		}
	}
}

// A password-protected key signs from CI with BERTH_SIGN_KEY_PASSWORD; a
// wrong or missing password stops the stage before anything is uploaded.
func TestStageWithEncryptedKey(t *testing.T) {
	dir := t.TempDir()
	pub, secret, _ := minisign.GenerateKey(rand.Reader)
	keyFile := filepath.Join(dir, "release.key")
	os.WriteFile(keyFile, minisigntest.CheapEncryptedKey(t, "s3cret pass", secret), 0o600)
	pubText, _ := pub.MarshalText()
	os.WriteFile(keyFile+".pub", pubText, 0o644)
	app := filepath.Join(dir, "app.txt")
	os.WriteFile(app, []byte("release"), 0o644)
	storeDir := filepath.Join(dir, "store")

	run := func(env map[string]string, args ...string) (int, string) {
		var out bytes.Buffer
		env["BERTH_STORES"] = "local=file://" + storeDir
		env["XDG_STATE_HOME"] = filepath.Join(dir, "state")
		g := &Globals{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, Env: func(k string) string { return env[k] }}
		return Main(context.Background(), args, g), out.String()
	}
	for _, tc := range []struct {
		name     string
		password string
		want     string
	}{
		{"no password, no terminal", "", "set BERTH_SIGN_KEY_PASSWORD"},
		{"wrong password", "guess", "decrypt secret key: wrong password"},
	} {
		code, out := run(map[string]string{"BERTH_SIGN_KEY_PASSWORD": tc.password}, "stage", "app", "1.0.0", app, "--sign-key", keyFile)
		if code != ExitUsage || !strings.Contains(out, tc.want) {
			t.Fatalf("%s: exit %d, output %q", tc.name, code, out)
		}
		if _, err := os.Stat(filepath.Join(storeDir, "app")); !os.IsNotExist(err) {
			t.Fatalf("%s: the stage wrote to the store: %v", tc.name, err)
		}
	}
	code, out := run(map[string]string{"BERTH_SIGN_KEY_PASSWORD": "s3cret pass"}, "stage", "app", "1.0.0", app, "--sign-key", keyFile)
	if code != ExitOK || !strings.Contains(out, "signed by key "+artifact.KeyID(pub.ID())) || strings.Contains(out, "s3cret") {
		t.Fatalf("stage: exit %d, output %q", code, out)
	}
	code, out = run(map[string]string{}, "download", "app", "1.0.0", "-o", filepath.Join(dir, "got"), "--trusted-key", keyFile+".pub")
	if code != ExitOK || !strings.Contains(out, "signed by trusted key "+artifact.KeyID(pub.ID())) {
		t.Fatalf("download: exit %d, output %q", code, out)
	}
}
