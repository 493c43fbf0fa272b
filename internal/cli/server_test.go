package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/hub/secrets"
	"github.com/berth-dev/berth/internal/awsfake"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestServerFirstStartAndShutdown(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env := map[string]string{"XDG_DATA_HOME": filepath.Join(dir, "data"), "HOME": dir}
	var stdout, stderr syncBuffer
	g := &Globals{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Env: func(k string) string { return env[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- Main(ctx, []string{"server", "--listen", addr}, g) }()

	var code string
	deadline := time.Now().Add(30 * time.Second)
	for code == "" {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no setup code printed; stderr:\n%s", stderr.String())
		}
		if m := regexp.MustCompile(`"code":"([0-9a-f]{32})"`).FindStringSubmatch(stderr.String()); m != nil {
			code = m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Post("http://"+addr+"/api/v1/setup", "application/json", strings.NewReader(`{"code":"`+code+`","email":"ana@example.com"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("setup: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := os.Stat(filepath.Join(dir, "data", "berth", ".hub", "hub.db")); err != nil {
		t.Errorf("default database: %v", err)
	}
	cancel()
	select {
	case exit := <-done:
		if exit != 0 {
			t.Errorf("exit %d after a graceful stop; stderr:\n%s", exit, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
	if !strings.Contains(stderr.String(), "hub stopped") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

func TestServerAuditVerify(t *testing.T) {
	ctx := context.Background()
	url := "sqlite:" + filepath.Join(t.TempDir(), "hub.db")
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := d.AppendAudit(ctx, &db.AuditEntry{Actor: "ana@example.com", Action: "project.create", Object: fmt.Sprint("project/p", i), Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		g := &Globals{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Env: func(string) string { return "" }}
		if len(args) == 0 {
			args = []string{"server", "audit", "verify", "--database", url}
		}
		code := Main(ctx, args, g)
		return code, stdout.String(), stderr.String()
	}
	if code, out, _ := run("server", "migrate", "--database", url); code != 0 || !strings.Contains(out, "applied 0 migration(s)") {
		t.Errorf("migrate an up-to-date database: exit %d %s", code, out)
	}
	if code, out, errOut := run(); code != 0 || !strings.Contains(out, "audit log intact: 3 entries") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := d.SQL.ExecContext(ctx, `UPDATE audit_log SET actor = 'eve@example.com' WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(); code != ExitConflict || !strings.Contains(errOut, "audit entry 2 was changed") {
		t.Errorf("verify a tampered log: exit %d\n%s", code, errOut)
	}
}

func TestLoginLogout(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&hub.Server{DB: d, SetupCode: "0123456789abcdef0123456789abcdef"}).Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/v1/setup", "application/json", strings.NewReader(`{"code":"0123456789abcdef0123456789abcdef","email":"ana@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	var setup struct {
		Token struct{ Token string } `json:"token"`
	}
	json.NewDecoder(resp.Body).Decode(&setup)
	resp.Body.Close()

	dir := t.TempDir()
	env := map[string]string{"XDG_CONFIG_HOME": dir, "HOME": dir}
	run := func(stdin string, args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		g := &Globals{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Env: func(k string) string { return env[k] }}
		return Main(ctx, args, g), stdout.String(), stderr.String()
	}
	if code, _, stderr := run(setup.Token.Token[:20]+"nope\n", "login", "--url", srv.URL, "--token", "-"); code != ExitDenied || !strings.Contains(stderr, "does not accept") {
		t.Errorf("login with a wrong token: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "berth", "hubs.yaml")); err == nil {
		t.Error("a refused token was saved")
	}
	code, stdout, stderr := run(setup.Token.Token+"\n", "login", "--url", srv.URL+"/", "--token", "-")
	if code != 0 || !strings.Contains(stdout, "logged in to "+srv.URL+" as ana@example.com") {
		t.Fatalf("login: exit %d\n%s%s", code, stdout, stderr)
	}
	fi, err := os.Stat(filepath.Join(dir, "berth", "hubs.yaml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("hubs.yaml: %v %v", fi, err)
	}
	if strings.Contains(stdout+stderr, setup.Token.Token) {
		t.Error("login printed the token")
	}
	if code, _, stderr := run("", "login", "--url", "ftp://x", "--token", "berth_x"); code != ExitUsage {
		t.Errorf("bad url: exit %d %s", code, stderr)
	}
	if code, _, _ := run("", "logout"); code != 0 {
		t.Errorf("logout: exit %d", code)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "berth", "hubs.yaml")); strings.Contains(string(data), "berth_") {
		t.Errorf("token kept after logout:\n%s", data)
	}
	if code, _, _ := run("", "logout"); code != ExitNo {
		t.Errorf("logout twice: exit %d", code)
	}
}

func TestServerRotateKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	url := "sqlite:" + filepath.Join(dir, "hub.db")
	d, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	box, err := (&Globals{}).loadKeys(context.Background(), dir, true, "")
	if err != nil {
		t.Fatal(err)
	}
	oldID := box.KEKs[0].ID()
	sealed, err := box.Seal(ctx, []byte("admin-secret-key"), "dataplane/minio/writer")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := d.CreateFirstUser(ctx, "ana@example.com", "", "default")
	org, _ := d.UserOrganisation(ctx, u.ID)
	if err := d.CreateDataPlane(ctx, &db.DataPlane{OrgID: org.ID, Name: "minio", Kind: "s3compat", Settings: "{}", Secrets: `{"writer":"` + sealed + `"}`}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	g := &Globals{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Env: func(string) string { return "" }}
	if code := Main(ctx, []string{"server", "rotate-key", "--data-dir", dir, "--database", url}, g); code != 0 || !strings.Contains(stdout.String(), "rewrapped 1 secret(s)") {
		t.Fatalf("rotate-key: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	newKey, err := secrets.LoadKeyFile(filepath.Join(dir, "secrets.key"))
	if err != nil || newKey.ID() == oldID {
		t.Fatalf("new key %v, %v", newKey, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets.key."+oldID+".retired")); err != nil {
		t.Errorf("retired key: %v", err)
	}
	all, _ := d.DataPlaneSecrets(ctx)
	var m map[string]string
	for _, v := range all {
		json.Unmarshal([]byte(v), &m)
	}
	got, err := (&secrets.Box{KEKs: []secrets.KEK{newKey}}).Open(ctx, m["writer"], "dataplane/minio/writer")
	if err != nil || string(got) != "admin-secret-key" {
		t.Errorf("open with the new key only: %q, %v", got, err)
	}
}

// TestLoadKeysKMS: with --kms-key, new secrets are sealed by KMS (called
// with the key named), and a key file from before still opens its secrets.
func TestLoadKeysKMS(t *testing.T) {
	ctx := context.Background()
	const keyARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	fake := awsfake.New(t)
	fake.Setenv(t, "us-east-1")
	// A stand-in KMS: the "ciphertext" is the data key reversed; what is
	// tested is that berth calls KMS with the key and context it needs.
	fake.Handle("kms", "Encrypt", func(r *awsfake.Request) awsfake.Response {
		if r.JSON["KeyId"] != keyARN || r.Region != "eu-west-1" {
			return awsfake.JSONError(400, "NotFoundException", "wrong key or region")
		}
		b, _ := base64.StdEncoding.DecodeString(r.JSON["Plaintext"].(string))
		slices.Reverse(b)
		return awsfake.JSON(map[string]any{"CiphertextBlob": b, "KeyId": keyARN})
	})
	fake.Handle("kms", "Decrypt", func(r *awsfake.Request) awsfake.Response {
		b, _ := base64.StdEncoding.DecodeString(r.JSON["CiphertextBlob"].(string))
		slices.Reverse(b)
		return awsfake.JSON(map[string]any{"Plaintext": b, "KeyId": keyARN})
	})
	dir := t.TempDir()
	g := &Globals{}
	fileBox, err := g.loadKeys(ctx, dir, true, "")
	if err != nil {
		t.Fatal(err)
	}
	old, err := fileBox.Seal(ctx, []byte("sealed-before-kms"), "x")
	if err != nil {
		t.Fatal(err)
	}
	box, err := g.loadKeys(ctx, dir, true, keyARN)
	if err != nil {
		t.Fatal(err)
	}
	if len(box.KEKs) != 2 || !strings.HasPrefix(box.KEKs[0].ID(), "kms-") {
		t.Fatalf("keys = %d, first %s; want the KMS key first, then the key file", len(box.KEKs), box.KEKs[0].ID())
	}
	sealed, err := box.Seal(ctx, []byte("new"), "y")
	if err != nil || !strings.Contains(sealed, box.KEKs[0].ID()) || len(fake.Called("kms", "Encrypt")) != 1 {
		t.Fatalf("seal = %q, %v", sealed, err)
	}
	for s, aad := range map[string]string{old: "x", sealed: "y"} {
		if _, err := box.Open(ctx, s, aad); err != nil {
			t.Errorf("open %s: %v", aad, err)
		}
	}
	// A hub on KMS alone creates no key file.
	empty := t.TempDir()
	if _, err := g.loadKeys(ctx, empty, true, keyARN); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(empty, "secrets.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a key file was created beside KMS: %v", err)
	}
}
