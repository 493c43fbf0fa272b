package hub_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/testenv"
)

// TestOrganisationCredentialsOnMinIO: two organisations have a project
// named app on data planes with different prefixes. Credentials, and the
// CLI's stage and versions with --org or BERTH_ORG, go to the selected
// organisation's project; the bytes land under its prefix in MinIO.
func TestOrganisationCredentialsOnMinIO(t *testing.T) {
	regions := testenv.StartRegions(t, 1)
	m := regions[0]
	ids := deployMinIO(t, regions)
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	s.Secrets = newBox(t)
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	srv := hs.URL
	admin := setupAdmin(t, srv).token
	if code, body := as(t, srv, admin, "", "POST", "/api/v1/organisations", `{"name":"beta"}`, nil); code != 201 {
		t.Fatalf("create beta: %d %s", code, body)
	}
	// Both data planes use the deployed identities (allowed under rel/);
	// beta's keeps its projects under rel/b.
	for org, prefix := range map[string]string{"default": "rel", "beta": "rel/b"} {
		dp, _ := json.Marshal(map[string]any{"name": "minio", "kind": "s3compat", "endpoints": []string{m.Region + "=" + m.Endpoint},
			"bucket": "berth-releases", "prefix": prefix,
			"writer": map[string]string{"access_key_id": ids["writer"].AccessKeyID, "secret_access_key": ids["writer"].SecretAccessKey},
			"reader": map[string]string{"access_key_id": ids["reader"].AccessKeyID, "secret_access_key": ids["reader"].SecretAccessKey}})
		if code, body := as(t, srv, admin, org, "POST", "/api/v1/dataplanes", string(dp), nil); code != 201 {
			t.Fatalf("data plane in %s: %d %s", org, code, body)
		}
		if code, body := as(t, srv, admin, org, "POST", "/api/v1/projects", `{"name":"app","dataplane":"minio"}`, nil); code != 201 {
			t.Fatalf("app in %s: %d %s", org, code, body)
		}
	}
	for _, tc := range []struct{ org, prefix string }{{"", "rel/app"}, {"default", "rel/app"}, {"beta", "rel/b/app"}} {
		var v struct {
			Prefix      string `json:"prefix"`
			StorePrefix string `json:"store_prefix"`
		}
		if code, body := as(t, srv, admin, tc.org, "POST", "/api/v1/projects/app/credentials", `{"role":"write"}`, &v); code != 200 || v.Prefix != tc.prefix {
			t.Errorf("credentials for app in %q: %d %s, want prefix %s", tc.org, code, body, tc.prefix)
		}
	}

	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "app.bin")
	os.WriteFile(file, []byte("release bytes"), 0o644)
	env := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "config"), "XDG_STATE_HOME": filepath.Join(dir, "state"),
		"XDG_DATA_HOME": filepath.Join(dir, "data"), "HOME": dir}
	for _, step := range []struct {
		env   string // BERTH_ORG
		args  []string
		code  int
		want  string
		avoid string
	}{
		{"", []string{"login", "--url", srv, "--token", admin}, 0, "as admin@example.com", ""},
		{"", []string{"stage", "app", "1.0.0", file}, 0, "project app", ""},
		{"", []string{"--org", "beta", "stage", "app", "2.0.0", file}, 0, "project app", ""},
		{"", []string{"versions", "app"}, 0, "1.0.0", "2.0.0"},
		{"", []string{"--org", "default", "versions", "app"}, 0, "1.0.0", "2.0.0"},
		{"beta", []string{"versions", "app"}, 0, "2.0.0", "1.0.0"},
		{"beta", []string{"--org", "default", "versions", "app"}, 0, "1.0.0", "2.0.0"}, // the flag wins
		{"", []string{"--org", "nope", "versions", "app"}, cli.ExitNo, `organisation "nope"`, ""},
		{"", []string{"--org", "Not Valid", "versions", "app"}, cli.ExitUsage, "--org", ""},
		{"", []string{"org", "list"}, 0, "*         default  admin", ""},
		{"beta", []string{"org", "list"}, 0, "*         beta     admin", ""},
		{"", []string{"org", "list", "--output", "json"}, 0, `"name": "beta"`, ""},
		{"", []string{"org", "create", "gamma"}, 0, "created organisation gamma", ""},
		{"", []string{"__complete", "--org", ""}, 0, "gamma\tadmin", ""},
	} {
		var stdout, stderr strings.Builder
		g := &cli.Globals{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Env: func(k string) string {
			if k == "BERTH_ORG" {
				return step.env
			}
			return env[k]
		}}
		code := cli.Main(ctx, step.args, g)
		out := stdout.String() + stderr.String()
		if code != step.code || !strings.Contains(out, step.want) || step.avoid != "" && strings.Contains(out, step.avoid) {
			t.Fatalf("BERTH_ORG=%s berth %v: exit %d, want %d with %q without %q:\n%s", step.env, step.args, code, step.code, step.want, step.avoid, out)
		}
	}
	// The CLI's JSON list has both organisations and marks the default one.
	var stdout strings.Builder
	cli.Main(ctx, []string{"org", "list", "--output", "json"}, &cli.Globals{Stdout: &stdout, Stderr: &stdout, Env: func(k string) string { return env[k] }})
	var list struct {
		Organisations []struct {
			Name, Role string
			Selected   bool
		} `json:"organisations"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &list); err != nil || len(list.Organisations) != 3 || !list.Organisations[0].Selected || list.Organisations[1].Selected {
		t.Errorf("org list --output json: %v %s", err, stdout.String())
	}

	// The bytes: 1.0.0 under default's prefix, 2.0.0 under beta's only.
	objects, err := m.S3Client(t).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("berth-releases"), Prefix: aws.String("rel/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objects.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	all := strings.Join(keys, "\n")
	if !strings.Contains(all, "rel/app/1.0.0/") || !strings.Contains(all, "rel/b/app/2.0.0/") || strings.Contains(all, "rel/app/2.0.0/") || strings.Contains(all, "rel/b/app/1.0.0/") {
		t.Errorf("objects in MinIO:\n%s", all)
	}
}
