package dataplane_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/internal/minioadmin"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store"
	"github.com/berth-dev/berth/store/s3store"
)

func client(m *testenv.MinIO, ak, sk string) *s3.Client {
	return s3.NewFromConfig(aws.Config{Region: m.Region, Credentials: credentials.NewStaticCredentialsProvider(ak, sk, "")},
		func(o *s3.Options) { o.BaseEndpoint = aws.String(m.Endpoint); o.UsePathStyle = true })
}

func targets(t *testing.T, servers []*testenv.MinIO) []dataplane.Target {
	var out []dataplane.Target
	for _, m := range servers {
		admin, err := dataplane.NewAdmin(m.Endpoint, m.Region, aws.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, dataplane.Target{Endpoint: dataplane.Endpoint{Name: m.Region, URL: m.Endpoint},
			S3: client(m, m.AccessKey, m.SecretKey), Admin: admin})
	}
	return out
}

func artifactClient(servers []*testenv.MinIO, c dataplane.Credentials) *artifact.Client {
	ac := &artifact.Client{Identity: c.Role}
	for _, m := range servers {
		s := s3store.New(client(m, c.AccessKeyID, c.SecretAccessKey), "releases", "rel", s3store.Options{})
		ac.Regions = append(ac.Regions, artifact.Region{Name: m.Region, Store: s, Pointer: pointer.InStore{Store: s}})
	}
	return ac
}

// TestS3CompatDeployAndEnforcement deploys the data plane on three MinIO
// servers, then checks that the rendered least-privilege policies hold:
// MinIO itself enforces them.
func TestS3CompatDeployAndEnforcement(t *testing.T) {
	ctx := context.Background()
	servers := testenv.StartRegions(t, 3)
	var kept keeper
	in := dataplane.S3CompatInput{Targets: targets(t, servers), Bucket: "releases", Prefix: "rel", Identities: true, KeepCredentials: kept.keep}
	plan, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	count := actions(plan)
	if count["create-bucket"] != 3 || count["enable-versioning"] != 3 || count["create-user"] != 6 || count["put-policy"] != 6 || count["attach-policy"] != 6 {
		t.Fatalf("plan = %v", count)
	}
	res, err := dataplane.ApplyS3Compat(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]dataplane.Credentials{}
	for _, c := range res.Credentials {
		creds[c.Role] = c
	}
	if creds["writer"].SecretAccessKey == "" || creds["reader"].SecretAccessKey == "" {
		t.Fatalf("credentials = %+v", res.Credentials)
	}
	if len(kept.creds) != 2 || kept.creds[0] != res.Credentials[0] || kept.creds[1] != res.Credentials[1] {
		t.Fatalf("kept %+v, result %+v", kept.creds, res.Credentials)
	}

	// A second deploy changes nothing.
	again, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if again.Changes() {
		t.Fatalf("second plan has changes: %+v", again.Steps)
	}

	// The writer stages to all three regions.
	file := filepath.Join(t.TempDir(), "app.bin")
	data := bytes.Repeat([]byte("x"), 6<<20)
	os.WriteFile(file, data, 0o644)
	writer := artifactClient(servers, creds["writer"])
	if _, err := writer.Stage(ctx, "app", "1.0.0", file, artifact.StageOptions{}); err != nil {
		t.Fatalf("writer stage: %v", err)
	}
	// The reader downloads.
	reader := artifactClient(servers, creds["reader"])
	out := filepath.Join(t.TempDir(), "out")
	if _, err := reader.Download(ctx, "app", "latest", artifact.DownloadOptions{Path: out}); err != nil {
		t.Fatalf("reader download: %v", err)
	}
	if _, err := reader.Versions(ctx, "app"); err != nil {
		t.Fatalf("reader versions: %v", err)
	}
	// The reader cannot stage.
	if _, err := reader.Stage(ctx, "app", "1.0.1", file, artifact.StageOptions{}); !errors.Is(err, store.ErrPermissionDenied) {
		t.Fatalf("reader stage: err = %v, want permission denied", err)
	}

	m := servers[0]
	info, err := reader.Info(ctx, "app", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	manifest := "rel/app/1.0.0/manifest.json"
	dataKey := "rel/" + info.Object
	for _, tc := range []struct {
		role, op, key string
		allowed       bool
	}{
		{"reader", "get", dataKey, true},
		{"reader", "put", "rel/app/9.9.9/manifest.json", false},
		{"reader", "delete", dataKey, false},
		{"reader", "get", "other/secret.txt", false},
		{"writer", "get", manifest, true},
		{"writer", "put", "rel/app/2.0.0/data/x", true},
		{"writer", "delete", dataKey, false},
		{"writer", "delete", manifest, false},
		{"writer", "put", "other/x", false},
		{"writer", "get", "other/secret.txt", false},
	} {
		c := client(m, creds[tc.role].AccessKeyID, creds[tc.role].SecretAccessKey)
		var err error
		switch tc.op {
		case "get":
			_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("releases"), Key: aws.String(tc.key)})
		case "put":
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("releases"), Key: aws.String(tc.key), Body: strings.NewReader("x")})
		case "delete":
			_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("releases"), Key: aws.String(tc.key)})
		}
		denied := errors.Is(awserr.Classify(err), store.ErrPermissionDenied)
		if tc.allowed && err != nil || !tc.allowed && !denied {
			t.Errorf("%s %s %s: err = %v, want allowed=%v", tc.role, tc.op, tc.key, err, tc.allowed)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"eu-west-1=http://127.0.0.1:9000", true},
		{"eu-west-1=https://s3.example.com/", true},
		{"eu-west-1", false},
		{"=http://x", false},
		{"EU=http://x", false},
		{"eu=ftp://x", false},
		{"eu=http://x/path", false},
	} {
		_, err := dataplane.ParseEndpoint(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseEndpoint(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// keeper collects what ApplyS3Compat hands to KeepCredentials.
type keeper struct{ creds []dataplane.Credentials }

func (k *keeper) keep(_ context.Context, c dataplane.Credentials) error {
	k.creds = append(k.creds, c)
	return nil
}

func (k *keeper) role(role string) dataplane.Credentials {
	for _, c := range k.creds {
		if c.Role == role {
			return c
		}
	}
	return dataplane.Credentials{}
}

func actions(p *dataplane.S3CompatPlan) map[string]int {
	count := map[string]int{}
	for _, s := range p.Steps {
		count[s.Action]++
	}
	return count
}

// failingAdmin fails SetUser for one user: a failure in the middle of a
// deploy, after the writer identity exists.
type failingAdmin struct {
	dataplane.Admin
	user string
}

func (f failingAdmin) SetUser(ctx context.Context, name, secret string) error {
	if name == f.user {
		return errors.New("injected failure")
	}
	return f.Admin.SetUser(ctx, name, secret)
}

// canWrite reports whether c may write under the artifact prefix on m.
func canWrite(ctx context.Context, m *testenv.MinIO, c dataplane.Credentials) error {
	_, err := client(m, c.AccessKeyID, c.SecretAccessKey).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("releases"), Key: aws.String("rel/app/0.0.1/data/probe"), Body: strings.NewReader("x")})
	return err
}

// TestS3CompatFailureAfterFirstIdentity: a deploy that fails after the
// writer identity was created must already have handed over its secret,
// and a rerun must finish the job; --rotate-credentials replaces a secret
// that was lost.
func TestS3CompatFailureAfterFirstIdentity(t *testing.T) {
	ctx := context.Background()
	servers := testenv.StartRegions(t, 2)
	real := targets(t, servers)
	broken := targets(t, servers)
	for i := range broken {
		broken[i].Admin = failingAdmin{Admin: broken[i].Admin, user: "berth-reader"}
	}

	var first keeper
	in := dataplane.S3CompatInput{Targets: broken, Bucket: "releases", Prefix: "rel", Identities: true, KeepCredentials: first.keep}
	plan, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dataplane.ApplyS3Compat(ctx, plan)
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("apply: err = %v, want the injected failure", err)
	}
	writer := first.role("writer")
	if writer.SecretAccessKey == "" || len(res.Credentials) == 0 || res.Credentials[0] != writer {
		t.Fatalf("the writer's secret was not handed over before the failure: kept %+v, result %+v", first.creds, res.Credentials)
	}
	for _, m := range servers {
		if err := canWrite(ctx, m, writer); err != nil {
			t.Fatalf("writer in %s: %v", m.Region, err)
		}
	}

	// The rerun creates the reader and leaves the writer alone.
	var second keeper
	in = dataplane.S3CompatInput{Targets: real, Bucket: "releases", Prefix: "rel", Identities: true, KeepCredentials: second.keep}
	plan, err = dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if c := actions(plan); !plan.Changes() || c["create-user"] != 2 || c["attach-policy"] != 2 || c["rotate-credentials"] != 0 {
		t.Fatalf("rerun plan = %v, want the reader created in both regions", c)
	}
	if _, err := dataplane.ApplyS3Compat(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if len(second.creds) != 1 || second.creds[0].Role != "reader" {
		t.Fatalf("rerun kept %+v, want the reader only", second.creds)
	}
	if err := canWrite(ctx, servers[0], writer); err != nil {
		t.Fatalf("the rerun changed the writer: %v", err)
	}

	// A lost secret: rotate every identity in every region.
	var third keeper
	in.RotateCredentials, in.KeepCredentials = true, third.keep
	plan, err = dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if c := actions(plan); c["rotate-credentials"] != 4 || c["create-user"] != 0 || c["attach-policy"] != 0 {
		t.Fatalf("rotate plan = %v", c)
	}
	if _, err := dataplane.ApplyS3Compat(ctx, plan); err != nil {
		t.Fatal(err)
	}
	rotated := third.role("writer")
	if rotated.SecretAccessKey == "" || rotated.SecretAccessKey == writer.SecretAccessKey {
		t.Fatalf("rotate kept %+v", third.creds)
	}
	for _, m := range servers {
		if err := canWrite(ctx, m, writer); !errors.Is(awserr.Classify(err), store.ErrPermissionDenied) {
			t.Errorf("old writer secret in %s: err = %v, want refused", m.Region, err)
		}
		if err := canWrite(ctx, m, rotated); err != nil {
			t.Errorf("new writer secret in %s: %v", m.Region, err)
		}
	}
}

// TestS3CompatHalfCreatedIdentity: a user that exists in one region only
// (a deploy stopped between regions) cannot be completed without its
// secret; the plan says to rotate, and rotation completes it.
func TestS3CompatHalfCreatedIdentity(t *testing.T) {
	ctx := context.Background()
	servers := testenv.StartRegions(t, 2)
	ts := targets(t, servers)
	if err := ts[0].Admin.SetUser(ctx, "berth-writer", "a-secret-nobody-kept-0123"); err != nil {
		t.Fatal(err)
	}
	var kept keeper
	in := dataplane.S3CompatInput{Targets: ts, Bucket: "releases", Prefix: "rel", Identities: true, KeepCredentials: kept.keep}
	_, err := dataplane.PlanS3Compat(ctx, in)
	if !errors.Is(err, dataplane.ErrInvalid) || !strings.Contains(err.Error(), "--rotate-credentials") {
		t.Fatalf("plan: err = %v, want a hint to rotate", err)
	}
	in.RotateCredentials = true
	plan, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, s := range plan.Steps {
		if s.Target == "berth-writer" {
			steps = append(steps, s.Region+" "+s.Action)
		}
	}
	want := "eu-west-1 rotate-credentials,us-east-1 create-user,eu-west-1 attach-policy,us-east-1 attach-policy"
	if strings.Join(steps, ",") != want {
		t.Fatalf("writer steps = %v, want %s", steps, want)
	}
	if _, err := dataplane.ApplyS3Compat(ctx, plan); err != nil {
		t.Fatal(err)
	}
	for _, m := range servers {
		if err := canWrite(ctx, m, kept.role("writer")); err != nil {
			t.Errorf("writer in %s: %v", m.Region, err)
		}
	}
}

// TestS3CompatInvalidInput: refused before any server is asked (the
// targets have no clients, so a call would panic).
func TestS3CompatInvalidInput(t *testing.T) {
	keep := func(context.Context, dataplane.Credentials) error { return nil }
	for name, in := range map[string]dataplane.S3CompatInput{
		"identities without KeepCredentials": {Targets: []dataplane.Target{{}}, Bucket: "releases", Identities: true},
		"qualifier with a path":              {Targets: []dataplane.Target{{}}, Bucket: "releases", Identities: true, KeepCredentials: keep, Qualifier: "../x"},
		"qualifier with upper case":          {Targets: []dataplane.Target{{}}, Bucket: "releases", Identities: true, KeepCredentials: keep, Qualifier: "Acme"},
		"qualifier starting with a dash":     {Targets: []dataplane.Target{{}}, Bucket: "releases", Identities: true, KeepCredentials: keep, Qualifier: "-x"},
	} {
		if _, err := dataplane.PlanS3Compat(context.Background(), in); !errors.Is(err, dataplane.ErrInvalid) {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
}

// notReady is an admin API that answers as MinIO does before its IAM
// subsystem has loaded.
type notReady struct{ dataplane.Admin }

func (notReady) UserInfo(context.Context, string) (minioadmin.UserInfo, error) {
	return minioadmin.UserInfo{}, &minioadmin.Error{StatusCode: 503, Code: "XMinioServerNotInitialized", Message: "Server not initialized yet"}
}

// TestS3CompatAdminNotReady: an admin API that is there but not ready is
// an error to retry later, not a service without one (which would deploy
// that region without identities).
func TestS3CompatAdminNotReady(t *testing.T) {
	m := testenv.StartMinIO(t, "eu-west-1")
	ts := targets(t, []*testenv.MinIO{m})
	ts[0].Admin = notReady{}
	var kept keeper
	plan, err := dataplane.PlanS3Compat(context.Background(), dataplane.S3CompatInput{Targets: ts, Bucket: "releases", Identities: true, KeepCredentials: kept.keep})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("plan = %+v, err = %v; want unavailable", plan, err)
	}
}
