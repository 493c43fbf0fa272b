package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestSessionCredentials: the credentials may do what the session policy
// allows and nothing else, although they derive from the root identity.
func TestSessionCredentials(t *testing.T) {
	m := StartMinIO(t, "eu-west-1")
	m.CreateBucket(t, "bkt")
	creds := m.SessionCredentials(t, []byte(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::bkt/a/*"}]}`))
	c := m.S3Client(t, func(o *s3.Options) { o.Credentials = creds })
	ctx := context.Background()
	put := func(key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String(key), Body: strings.NewReader("x")})
		return err
	}
	if err := put("a/x"); err != nil {
		t.Fatalf("allowed put: %v", err)
	}
	if err := put("b/x"); err == nil {
		t.Fatal("put outside the session policy succeeded")
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a/x")}); err == nil {
		t.Fatal("get, which the session policy does not allow, succeeded")
	}
}
