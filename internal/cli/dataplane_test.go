package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/internal/testenv"
)

// readEnvFile returns the access key and secret saved in an identity file,
// after checking that only its owner may read it.
func readEnvFile(t *testing.T, path string) (string, string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	var ak, sk string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "AWS_ACCESS_KEY_ID="); ok {
			ak = v
		}
		if v, ok := strings.CutPrefix(line, "AWS_SECRET_ACCESS_KEY="); ok {
			sk = v
		}
	}
	if ak == "" || sk == "" {
		t.Fatalf("%s holds no credentials:\n%s", path, data)
	}
	return ak, sk
}

func putAs(m *testenv.MinIO, ak, sk string) error {
	c := s3.NewFromConfig(aws.Config{Region: m.Region, Credentials: credentials.NewStaticCredentialsProvider(ak, sk, "")},
		func(o *s3.Options) { o.BaseEndpoint = aws.String(m.Endpoint); o.UsePathStyle = true })
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("releases"),
		Key: aws.String("rel/app/0.0.1/data/probe"), Body: strings.NewReader("x")})
	return err
}

// TestDataplaneDeployKeepsSecretsOnFailure: the deploy below fails after
// both identities exist (its config file cannot be written). Their secrets
// must already be saved, the rerun must not pretend nothing is missing, and
// --rotate-credentials must replace secrets that were lost.
func TestDataplaneDeployKeepsSecretsOnFailure(t *testing.T) {
	servers := testenv.StartRegions(t, 2)
	for _, kv := range servers[0].AWSEnv() {
		if k, v, _ := strings.Cut(kv, "="); k != "AWS_ENDPOINT_URL" {
			t.Setenv(k, v)
		}
	}
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	notADir := filepath.Join(dir, "file")
	os.WriteFile(notADir, nil, 0o644)
	deploy := []string{"dataplane", "deploy", "--bucket", "releases", "--prefix", "rel", "--yes"}
	for _, m := range servers {
		deploy = append(deploy, "--endpoint", m.Region+"="+m.Endpoint)
	}
	credsDir := filepath.Join(dir, "config", "berth", "credentials")

	code, _, stderr := berth(t, append(deploy, "--config", filepath.Join(notADir, "berth.yaml"))...)
	if code == 0 {
		t.Fatal("deploy with an unwritable config succeeded")
	}
	wantIn(t, "stderr", stderr, "saved the new secret of the writer identity berth-writer to "+filepath.Join(credsDir, "berth-writer.env")+" (0600)")
	writerAK, writerSK := readEnvFile(t, filepath.Join(credsDir, "berth-writer.env"))
	readEnvFile(t, filepath.Join(credsDir, "berth-reader.env"))
	if strings.Contains(stderr, writerSK) {
		t.Fatal("the secret is on stderr")
	}
	for _, m := range servers {
		if err := putAs(m, writerAK, writerSK); err != nil {
			t.Fatalf("saved writer secret in %s: %v", m.Region, err)
		}
	}

	cfg := filepath.Join(dir, "berth.yaml")
	code, stdout, stderr := berth(t, append(deploy, "--config", cfg)...)
	if code != 0 || strings.Contains(stderr, "saved the new secret") {
		t.Fatalf("rerun: exit %d, want 0 without new secrets", code)
	}
	wantIn(t, "rerun stdout", stdout, "no changes", "wrote "+cfg)
	if _, sk := readEnvFile(t, filepath.Join(credsDir, "berth-writer.env")); sk != writerSK {
		t.Fatal("the rerun replaced the saved secret without rotating it")
	}

	code, stdout, _ = berth(t, append(deploy, "--config", cfg, "--rotate-credentials")...)
	if code != 0 {
		t.Fatalf("rotate: exit %d", code)
	}
	wantIn(t, "rotate stdout", stdout, "rotate-credentials  berth-writer", "new identities (the secrets are shown this once")
	_, newSK := readEnvFile(t, filepath.Join(credsDir, "berth-writer.env"))
	if newSK == writerSK || !strings.Contains(stdout, newSK) {
		t.Fatal("rotation did not save and show a new writer secret")
	}
	for _, m := range servers {
		if err := putAs(m, writerAK, writerSK); err == nil {
			t.Errorf("old writer secret still works in %s", m.Region)
		}
		if err := putAs(m, writerAK, newSK); err != nil {
			t.Errorf("new writer secret in %s: %v", m.Region, err)
		}
	}
}

func TestDataplaneDeployCredentialFlagsNeedIdentities(t *testing.T) {
	for _, args := range [][]string{
		{"--endpoint", "eu-west-1=http://127.0.0.1:1", "--no-identities", "--rotate-credentials"},
		{"--account", "123456789012", "--external-id", "x", "--regions", "eu-west-1", "--credentials-dir", "/tmp"},
	} {
		code, _, stderr := berth(t, append([]string{"dataplane", "deploy", "--yes"}, args...)...)
		if code != ExitUsage || !strings.Contains(stderr, "--rotate-credentials") {
			t.Errorf("%v: exit %d, want %d with a hint", args, code, ExitUsage)
		}
	}
}
