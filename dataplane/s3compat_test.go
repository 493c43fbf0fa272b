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
		admin, err := dataplane.NewAdmin(m.Endpoint, m.AccessKey, m.SecretKey)
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
	in := dataplane.S3CompatInput{Targets: targets(t, servers), Bucket: "releases", Prefix: "rel", Identities: true}
	plan, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, s := range plan.Steps {
		count[s.Action]++
	}
	if count["create-bucket"] != 3 || count["enable-versioning"] != 3 || count["create-user"] != 6 || count["put-policy"] != 6 {
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
