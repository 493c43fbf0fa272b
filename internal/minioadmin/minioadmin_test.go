package minioadmin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/internal/minioadmin"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/store"
)

func admin(t *testing.T, m *testenv.MinIO, ak, sk string) *minioadmin.Client {
	t.Helper()
	c, err := minioadmin.New(m.Endpoint, m.Region, aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// listAs lists the bucket with a user's keys: nil when MinIO lets that user.
func listAs(ctx context.Context, m *testenv.MinIO, ak, sk string) error {
	c := s3.NewFromConfig(aws.Config{Region: m.Region, Credentials: credentials.NewStaticCredentialsProvider(ak, sk, "")},
		func(o *s3.Options) { o.BaseEndpoint = aws.String(m.Endpoint); o.UsePathStyle = true })
	_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("data")})
	return err
}

const listPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::data"]}]}`

// TestAgainstMinIO runs every call against a real server. MinIO decrypts
// what SetUser and AttachPolicy seal and enforces the result, so a wrong
// key derivation, stream format or signature fails here.
func TestAgainstMinIO(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMinIO(t, "eu-west-1")
	m.CreateBucket(t, "data")
	c := admin(t, m, m.AccessKey, m.SecretKey)

	if _, err := c.UserInfo(ctx, "ci-user"); !errors.Is(err, minioadmin.ErrNoSuchUser) {
		t.Fatalf("UserInfo of a missing user: err = %v, want ErrNoSuchUser", err)
	}
	if err := c.SetUser(ctx, "ci-user", "first-secret-0123456789"); err != nil {
		t.Fatalf("SetUser: %v", err)
	}
	info, err := c.UserInfo(ctx, "ci-user")
	if err != nil || info.Status != "enabled" || len(info.Policies) != 0 {
		t.Fatalf("UserInfo = %+v, %v; want enabled without policies", info, err)
	}
	if err := listAs(ctx, m, "ci-user", "first-secret-0123456789"); !errors.Is(awserr.Classify(err), store.ErrPermissionDenied) {
		t.Fatalf("list without a policy: err = %v, want access denied", err)
	}

	if err := c.PutPolicy(ctx, "list-data", []byte(listPolicy)); err != nil {
		t.Fatalf("PutPolicy: %v", err)
	}
	if err := c.AttachPolicy(ctx, "ci-user", "list-data"); err != nil {
		t.Fatalf("AttachPolicy: %v", err)
	}
	if err := c.AttachPolicy(ctx, "ci-user", "list-data"); err != nil {
		t.Fatalf("AttachPolicy again: %v, want nil (already attached)", err)
	}
	info, err = c.UserInfo(ctx, "ci-user")
	if err != nil || strings.Join(info.Policies, ",") != "list-data" {
		t.Fatalf("UserInfo = %+v, %v; want policy list-data", info, err)
	}
	if err := listAs(ctx, m, "ci-user", "first-secret-0123456789"); err != nil {
		t.Fatalf("list with the policy: %v", err)
	}

	// A second SetUser changes the secret and keeps the policy.
	if err := c.SetUser(ctx, "ci-user", "second-secret-0123456789"); err != nil {
		t.Fatalf("SetUser (rotate): %v", err)
	}
	if err := listAs(ctx, m, "ci-user", "first-secret-0123456789"); err == nil {
		t.Fatal("the old secret still works after rotation")
	}
	if err := listAs(ctx, m, "ci-user", "second-secret-0123456789"); err != nil {
		t.Fatalf("list with the new secret: %v", err)
	}

	t.Run("wrong admin secret is access refused", func(t *testing.T) {
		bad := admin(t, m, m.AccessKey, "not-the-secret")
		_, err := bad.UserInfo(ctx, "ci-user")
		if !errors.Is(awserr.Classify(err), store.ErrPermissionDenied) || strings.Contains(err.Error(), "not-the-secret") {
			t.Fatalf("err = %v, want access refused without the secret", err)
		}
	})
	t.Run("a user without admin rights is access refused", func(t *testing.T) {
		ci := admin(t, m, "ci-user", "second-secret-0123456789")
		err := ci.SetUser(ctx, "other", "other-secret-0123456789")
		if !errors.Is(awserr.Classify(err), store.ErrPermissionDenied) {
			t.Fatalf("err = %v, want access refused", err)
		}
	})
	t.Run("an attachment of a missing policy fails", func(t *testing.T) {
		if err := c.AttachPolicy(ctx, "ci-user", "no-such-policy"); err == nil {
			t.Fatal("err = nil")
		}
	})
}

func TestNew(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "a", SecretAccessKey: "s"}
	for _, tc := range []struct {
		endpoint string
		creds    aws.Credentials
		ok       bool
	}{
		{"http://127.0.0.1:9000", creds, true},
		{"https://s3.example.com", creds, true},
		{"s3.example.com", creds, false},
		{"ftp://s3.example.com", creds, false},
		{"http://127.0.0.1:9000", aws.Credentials{AccessKeyID: "a"}, false},
	} {
		_, err := minioadmin.New(tc.endpoint, "eu-west-1", tc.creds, nil)
		if (err == nil) != tc.ok {
			t.Errorf("New(%q, %+v) = %v, want ok=%v", tc.endpoint, tc.creds, err, tc.ok)
		}
	}
}
