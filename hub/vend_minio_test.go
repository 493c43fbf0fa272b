package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/hub/secrets"
	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3store"
)

// deployMinIO sets up berth's S3-compatible data plane on the servers, as
// "berth dataplane deploy --endpoint" does, and returns its identities.
func deployMinIO(t *testing.T, regions []*testenv.MinIO) map[string]dataplane.Credentials {
	t.Helper()
	ctx := context.Background()
	keep := func(context.Context, dataplane.Credentials) error { return nil } // the result has them
	in := dataplane.S3CompatInput{Bucket: "berth-releases", Prefix: "rel", Identities: true, KeepCredentials: keep}
	for _, m := range regions {
		admin, err := dataplane.NewAdmin(m.Endpoint, m.Region, aws.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		in.Targets = append(in.Targets, dataplane.Target{Endpoint: dataplane.Endpoint{Name: m.Region, URL: m.Endpoint}, S3: m.S3Client(t), Admin: admin})
	}
	plan, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dataplane.ApplyS3Compat(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]dataplane.Credentials{}
	for _, c := range res.Credentials {
		ids[c.Role] = c
	}
	if ids["writer"].SecretAccessKey == "" || ids["reader"].SecretAccessKey == "" {
		t.Fatalf("identities: %+v", res.Credentials)
	}
	return ids
}

type vended struct {
	Prefix  string `json:"prefix"`
	Regions []struct {
		Region, Endpoint, Bucket string
		AccessKeyID              string `json:"access_key_id"`
		SecretAccessKey          string `json:"secret_access_key"`
		SessionToken             string `json:"session_token"`
	} `json:"regions"`
}

// client returns an artifact client on the vended credentials, with the
// data plane's prefix (the project's prefix lies under it).
func (v *vended) client(t *testing.T) *artifact.Client {
	c := &artifact.Client{Identity: "ci@test"}
	for _, r := range v.Regions {
		s3c := s3.New(s3.Options{Region: r.Region, BaseEndpoint: aws.String(r.Endpoint), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(r.AccessKeyID, r.SecretAccessKey, r.SessionToken)})
		st := s3store.New(s3c, r.Bucket, "rel", s3store.Options{})
		c.Regions = append(c.Regions, artifact.Region{Name: r.Region, Store: st, Pointer: pointer.InStore{Store: st}})
	}
	return c
}

func TestVendedCredentialsOnMinIO(t *testing.T) {
	regions := testenv.StartRegions(t, 2)
	ids := deployMinIO(t, regions)
	dbFile := filepath.Join(t.TempDir(), "hub.db")
	s := newServer(t, "sqlite:"+dbFile)
	kek, err := secrets.LoadOrCreateKeyFile(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	s.Secrets = &secrets.Box{KEKs: []secrets.KEK{kek}}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	anon := &client{t: t, url: srv.URL}
	var setup struct {
		Token struct{ Token string } `json:"token"`
	}
	if code := anon.do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"admin@example.com"}`, &setup); code != 201 {
		t.Fatalf("setup: %d", code)
	}
	admin := &client{t: t, url: srv.URL, token: setup.Token.Token}

	var eps []string
	for _, m := range regions {
		eps = append(eps, m.Region+"="+m.Endpoint)
	}
	body := func(writerSecret string) string {
		b, _ := json.Marshal(map[string]any{"name": "minio", "kind": "s3compat", "endpoints": eps, "bucket": "berth-releases", "prefix": "rel",
			"writer": map[string]string{"access_key_id": ids["writer"].AccessKeyID, "secret_access_key": writerSecret},
			"reader": map[string]string{"access_key_id": ids["reader"].AccessKeyID, "secret_access_key": ids["reader"].SecretAccessKey}})
		return string(b)
	}
	var msg string
	if code := admin.do("POST", "/api/v1/dataplanes", body("wrong-secret-0000000000"), &msg); code != http.StatusForbidden || !strings.Contains(msg, "check the writer identity") {
		t.Fatalf("a data plane with a wrong secret: %d %s, want 403 naming the check", code, msg)
	}
	if code := admin.do("POST", "/api/v1/dataplanes", body(ids["writer"].SecretAccessKey), &msg); code != http.StatusCreated {
		t.Fatalf("register data plane: %d %s", code, msg)
	}
	for _, p := range []string{"app-a", "app-b"} {
		if code := admin.do("POST", "/api/v1/projects", `{"name":"`+p+`","dataplane":"minio"}`, &msg); code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", p, code, msg)
		}
	}
	users := map[string]*client{}
	for _, u := range []struct{ email, role string }{{"ci@example.com", "writer"}, {"deploy@example.com", "reader"}} {
		var created struct {
			Token struct {
				ID    int64  `json:"id"`
				Token string `json:"token"`
			} `json:"token"`
		}
		if code := admin.do("POST", "/api/v1/users", `{"email":"`+u.email+`"}`, &created); code != http.StatusCreated {
			t.Fatalf("create user %s: %d", u.email, code)
		}
		if code := admin.do("PUT", "/api/v1/projects/app-a/members/"+u.email, `{"role":"`+u.role+`"}`, &msg); code != 200 {
			t.Fatalf("member %s: %d %s", u.email, code, msg)
		}
		users[u.role] = &client{t: t, url: srv.URL, token: created.Token.Token}
	}

	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "app.bin")
	os.WriteFile(file, []byte("release bytes"), 0o644)

	// The writer stages project A with vended credentials only.
	var w vended
	if code := users["writer"].do("POST", "/api/v1/projects/app-a/credentials", `{"role":"write"}`, &w); code != 200 {
		t.Fatalf("vend write: %d", code)
	}
	if w.Prefix != "rel/app-a" || len(w.Regions) != 2 || w.Regions[0].SessionToken == "" {
		t.Fatalf("vended %+v", w)
	}
	if _, err := w.client(t).Stage(ctx, "app-a", "1.0.0", file, artifact.StageOptions{}); err != nil {
		t.Fatalf("stage app-a with vended credentials: %v", err)
	}
	// MinIO itself refuses the same credentials on project B's prefix.
	_, err = w.client(t).Stage(ctx, "app-b", "1.0.0", file, artifact.StageOptions{})
	if !errors.Is(err, store.ErrPermissionDenied) {
		t.Fatalf("stage app-b with app-a's credentials: %v, want permission denied", err)
	}
	// The writer is no member of B: B does not exist for it.
	if code := users["writer"].do("POST", "/api/v1/projects/app-b/credentials", `{"role":"write"}`, &msg); code != http.StatusNotFound {
		t.Errorf("vend for another project: %d %s, want 404", code, msg)
	}

	// The reader may read, not write.
	if code := users["reader"].do("POST", "/api/v1/projects/app-a/credentials", `{"role":"write"}`, &msg); code != http.StatusForbidden {
		t.Errorf("reader asks to write: %d %s", code, msg)
	}
	var rd vended
	if code := users["reader"].do("POST", "/api/v1/projects/app-a/credentials", `{"role":"read"}`, &rd); code != 200 {
		t.Fatalf("vend read: %d", code)
	}
	out := filepath.Join(t.TempDir(), "out.bin")
	if _, err := rd.client(t).Download(ctx, "app-a", "1.0.0", artifact.DownloadOptions{Path: out}); err != nil {
		t.Fatalf("download with vended read credentials: %v", err)
	}
	if got, _ := os.ReadFile(out); string(got) != "release bytes" {
		t.Errorf("downloaded %q", got)
	}
	_, err = rd.client(t).Stage(ctx, "app-a", "2.0.0", file, artifact.StageOptions{})
	if !errors.Is(err, store.ErrPermissionDenied) {
		t.Errorf("stage with read credentials: %v, want permission denied", err)
	}

	// The CLI after berth login: stage and download through the hub with no
	// other credentials, refused where the hub or MinIO says no.
	cliDir := t.TempDir()
	cliEnv := map[string]string{"XDG_CONFIG_HOME": filepath.Join(cliDir, "config"), "XDG_STATE_HOME": filepath.Join(cliDir, "state"),
		"XDG_DATA_HOME": filepath.Join(cliDir, "data"), "HOME": cliDir}
	berth := func(stdin string, args ...string) (int, string) {
		var stdout, stderr strings.Builder
		g := &cli.Globals{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Env: func(k string) string { return cliEnv[k] }}
		code := cli.Main(ctx, args, g)
		return code, stdout.String() + stderr.String()
	}
	for _, step := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{users["writer"].token + "\n", []string{"login", "--url", srv.URL, "--token", "-"}, 0, "as ci@example.com"},
		{"", []string{"stage", "app-a", "1.1.0", file}, 0, "using hub"},
		{"", []string{"versions", "app-a"}, 0, "1.1.0"},
		{"", []string{"stage", "app-b", "1.1.0", file}, cli.ExitNo, "project app-b"},
		{users["reader"].token + "\n", []string{"login", "--url", srv.URL, "--token", "-"}, 0, "as deploy@example.com"},
		{"", []string{"download", "app-a", "1.1.0", "-o", filepath.Join(cliDir, "got.bin")}, 0, ""},
		{"", []string{"stage", "app-a", "1.2.0", file}, cli.ExitDenied, "may not write"},
	} {
		code, out := berth(step.stdin, step.args...)
		if code != step.code || !strings.Contains(out, step.want) {
			t.Fatalf("berth %v: exit %d, want %d with %q:\n%s", step.args, code, step.code, step.want, out)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(cliDir, "got.bin")); string(got) != "release bytes" {
		t.Errorf("downloaded through the hub: %q", got)
	}

	// Artifacts through the API, read by the hub with a reader session of
	// the project.
	var vs struct {
		Versions []struct{ Version string } `json:"versions"`
	}
	if code := users["reader"].do("GET", "/api/v1/projects/app-a/versions", "", &vs); code != 200 || len(vs.Versions) != 2 || vs.Versions[1].Version != "1.1.0" {
		t.Errorf("versions: %d %+v", code, vs)
	}
	var info struct {
		Version string `json:"version"`
		SHA256  string `json:"sha256"`
		Regions []struct {
			Name    string `json:"name"`
			Present bool   `json:"present"`
		} `json:"regions"`
	}
	if code := users["reader"].do("GET", "/api/v1/projects/app-a/versions/latest", "", &info); code != 200 || info.Version != "1.1.0" || len(info.SHA256) != 64 || len(info.Regions) != 2 || !info.Regions[1].Present {
		t.Errorf("version info: %d %+v", code, info)
	}
	if code := users["reader"].do("GET", "/api/v1/projects/app-a/versions/9.9.9", "", &msg); code != http.StatusNotFound {
		t.Errorf("missing version: %d %s", code, msg)
	}
	if code := users["writer"].do("GET", "/api/v1/projects/app-b/versions", "", &msg); code != http.StatusNotFound {
		t.Errorf("versions of a project the user is not in: %d %s", code, msg)
	}

	// Every vend is in the audit log, and the chain holds.
	entries, err := s.DB.AuditLog(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	vends, refused := 0, 0
	for _, e := range entries {
		if strings.HasPrefix(e.Action, "credentials.") {
			vends++
			if e.Outcome != "ok" {
				refused++
			}
		}
	}
	if vends != 9 || refused != 4 {
		t.Errorf("%d credential requests audited (%d refused), want 9 (4 refused)", vends, refused)
	}
	if n, err := s.DB.VerifyAudit(ctx); err != nil || n != len(entries) {
		t.Errorf("audit verify: %d, %v", n, err)
	}
	// The data plane's secrets are not in the database in clear.
	var raw []byte
	for _, f := range []string{dbFile, dbFile + "-wal"} {
		b, _ := os.ReadFile(f)
		raw = append(raw, b...)
	}
	if len(raw) == 0 {
		t.Fatal("read no database file")
	}
	if strings.Contains(string(raw), ids["writer"].SecretAccessKey) || strings.Contains(string(raw), ids["reader"].SecretAccessKey) {
		t.Error("an identity's secret key is stored in clear")
	}
}
