package dataplane_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/policy"
)

func TestAWSTargetValidate(t *testing.T) {
	ok := dataplane.AWSTarget{Account: "111122223333", ExternalID: "ext-7d1f", Regions: []string{"eu-west-1", " us-east-1"}, Qualifier: "berth"}
	tests := []struct {
		name   string
		change func(*dataplane.AWSTarget)
		want   string // "" for valid
	}{
		{"valid, regions trimmed", func(*dataplane.AWSTarget) {}, ""},
		{"nothing", func(t *dataplane.AWSTarget) { *t = dataplane.AWSTarget{Qualifier: "berth"} }, "give --account, --external-id, --regions"},
		{"short account", func(t *dataplane.AWSTarget) { t.Account = "1111" }, "account"},
		{"not a region", func(t *dataplane.AWSTarget) { t.Regions = []string{"europe"} }, `"europe" is not an AWS region`},
		{"twice", func(t *dataplane.AWSTarget) { t.Regions = []string{"eu-west-1", "eu-west-1"} }, "eu-west-1 is listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := ok
			target.Regions = append([]string(nil), ok.Regions...)
			tt.change(&target)
			err := target.Validate()
			if tt.want == "" {
				if err != nil || target.Regions[1] != "us-east-1" {
					t.Fatalf("Validate() = %v, regions %q", err, target.Regions)
				}
				return
			}
			if !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an invalid error containing %q", err, tt.want)
			}
		})
	}
}

func TestRegionalKey(t *testing.T) {
	tests := []struct {
		key, region, want, err string
	}{
		{"", "eu-west-1", "", ""},
		{"arn:aws:kms:eu-west-1:111122223333:key/1234", "eu-west-1", "arn:aws:kms:eu-west-1:111122223333:key/1234", ""},
		{"arn:aws:kms:eu-west-1:111122223333:key/mrk-1234", "us-east-1", "arn:aws:kms:us-east-1:111122223333:key/mrk-1234", ""},
		{"arn:aws:kms:eu-west-1:111122223333:key/1234", "us-east-1", "", "cannot encrypt a bucket in us-east-1"},
		{"arn:aws:s3:::bucket", "eu-west-1", "", "want arn:aws:kms:REGION"},
	}
	for _, tt := range tests {
		got, err := dataplane.RegionalKey(tt.key, tt.region)
		if tt.err != "" {
			if !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("RegionalKey(%q, %s) = %v, want error %q", tt.key, tt.region, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("RegionalKey(%q, %s) = %q, %v; want %q", tt.key, tt.region, got, err, tt.want)
		}
	}
}

// fakeAWS points the SDK at a fake and returns the caller's configuration.
func fakeAWS(t *testing.T) (*awsfake.Server, context.Context, awsx.CallerIdentity) {
	t.Helper()
	s := awsfake.New(t)
	s.Setenv(t, "eu-west-1")
	s.Handle("sts", "GetCallerIdentity", awsfake.CallerIdentity("123456789012", "arn:aws:iam::123456789012:user/admin"))
	return s, context.Background(), awsx.CallerIdentity{Account: "123456789012", ARN: "arn:aws:iam::123456789012:user/admin"}
}

func TestStatusThroughOpsRole(t *testing.T) {
	s, ctx, id := fakeAWS(t)
	s.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	s.AddStack("eu-west-1", &awsfake.Stack{Name: "berth-dataplane", Status: "CREATE_COMPLETE",
		Outputs: map[string]string{"BucketName": "berth-111122223333-eu-west-1"}})
	s.HandleIn("us-east-1", "cloudformation", "DescribeStacks", awsfake.Error(400, "ValidationError", "Stack with id berth-dataplane does not exist"))
	cfg, err := awsx.Load(ctx, awsx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	target := dataplane.AWSTarget{Account: "111122223333", ExternalID: "ext-7d1f", Regions: []string{"eu-west-1", "us-east-1"}, Qualifier: policy.DefaultQualifier}
	a, err := dataplane.AssumeAWS(ctx, cfg, id.ARN, target, dataplane.Ops)
	if err != nil {
		t.Fatal(err)
	}
	as := s.Called("sts", "AssumeRole")
	if len(as) != 1 || as[0].Form.Get("RoleArn") != "arn:aws:iam::111122223333:role/berth-ops" || as[0].Form.Get("ExternalId") != "ext-7d1f" {
		t.Fatalf("AssumeRole calls: %v", as)
	}
	if as[0].Form.Get("Tags.member.1.Key") != "berth:qualifier" || as[0].Form.Get("Tags.member.1.Value") != "berth" {
		t.Errorf("session tags: %v", as[0].Form)
	}
	list, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || !list[0].Deployed || list[0].Stack.Outputs["BucketName"] != "berth-111122223333-eu-west-1" || list[1].Deployed || list[1].Region != "us-east-1" {
		t.Errorf("status = %+v", list)
	}
}

func TestCheckBucketInAnotherRegion(t *testing.T) {
	s, ctx, id := fakeAWS(t)
	s.Handle("s3", "HEAD /releases", func(*awsfake.Request) awsfake.Response {
		return awsfake.Response{Status: 301, Header: http.Header{"X-Amz-Bucket-Region": {"us-east-1"}}}
	})
	s.Handle("iam", "SimulatePrincipalPolicy", func(*awsfake.Request) awsfake.Response {
		return awsfake.Query("iam", "SimulatePrincipalPolicy", "<IsTruncated>false</IsTruncated><EvaluationResults/>")
	})
	cfg, err := awsx.Load(ctx, awsx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	results, err := dataplane.Check(ctx, cfg, id, "environment", dataplane.CheckInput{Bucket: "releases", Region: "eu-west-1", Kind: policy.KindArtifactRead})
	if err != nil {
		t.Fatal(err)
	}
	var region *dataplane.CheckResult
	for i := range results {
		if results[i].Field == "--region" {
			region = &results[i]
		}
	}
	if region == nil || region.OK || !errors.Is(region.Kind, dataplane.ErrCheckFailed) || !strings.Contains(region.Message, "pass --region us-east-1") {
		t.Fatalf("results = %+v", results)
	}
	// The simulation asks about the bucket's real region.
	if sims := s.Called("iam", "SimulatePrincipalPolicy"); len(sims) == 0 {
		t.Error("no simulation")
	}
}

func TestCheckInvalidInput(t *testing.T) {
	_, err := dataplane.Check(context.Background(), awsNoCall(t), awsx.CallerIdentity{}, "", dataplane.CheckInput{Bucket: "Not_A_Bucket", Kind: policy.KindArtifactRead})
	if !errors.Is(err, errkind.Invalid) {
		t.Fatalf("Check with a bad bucket name = %v, want invalid", err)
	}
}

// awsNoCall is a configuration whose every call fails to connect.
func awsNoCall(t *testing.T) aws.Config {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	cfg, err := awsx.Load(context.Background(), awsx.Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// berth's artifact policies allow listing only under the prefix, so S3
// refuses them HeadBucket; the check then lists under the prefix.
func TestCheckBucketWithPrefixOnlyListing(t *testing.T) {
	s, ctx, id := fakeAWS(t)
	s.Handle("s3", "HEAD /releases", func(*awsfake.Request) awsfake.Response {
		return awsfake.Response{Status: 403, Header: http.Header{"X-Amz-Bucket-Region": {"eu-west-1"}}}
	})
	s.Handle("s3", "GET /releases", func(r *awsfake.Request) awsfake.Response {
		if r.HTTP.URL.Query().Get("prefix") != "rel/" {
			return awsfake.Response{Status: 403, Body: "<Error><Code>AccessDenied</Code><Message>denied</Message></Error>"}
		}
		return awsfake.Response{Body: `<ListBucketResult><Name>releases</Name><Prefix>rel/</Prefix><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`}
	})
	s.Handle("iam", "SimulatePrincipalPolicy", func(*awsfake.Request) awsfake.Response {
		return awsfake.Query("iam", "SimulatePrincipalPolicy", "<IsTruncated>false</IsTruncated><EvaluationResults/>")
	})
	cfg, err := awsx.Load(ctx, awsx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		prefix string
		ok     bool
	}{{"rel", true}, {"other", false}} {
		results, err := dataplane.Check(ctx, cfg, id, "environment", dataplane.CheckInput{Bucket: "releases", Region: "eu-west-1", Prefix: tt.prefix, Kind: policy.KindArtifactRead})
		if err != nil {
			t.Fatal(err)
		}
		b := results[1]
		if b.Field != "--bucket" || b.OK != tt.ok || (!tt.ok && !errors.Is(b.Kind, errkind.PermissionDenied)) {
			t.Errorf("prefix %s: bucket check %+v", tt.prefix, b)
		}
	}
}
