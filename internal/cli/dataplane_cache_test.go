package cli

import (
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/internal/awsfake"
)

// TestDataplaneDeployCacheBucket: the template carries the cache bucket with
// the --cache-days expiration, and the written config names each region's
// cache bucket from the stack's CacheBucketName output.
func TestDataplaneDeployCacheBucket(t *testing.T) {
	s := newFake(t)
	s.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	bootstrapVersion(s, currentBootstrap)
	st := dataPlane(s, "eu-west-1")
	st.Outputs["CacheBucketName"] = "berth-cache-111122223333-eu-west-1"
	st.Outputs["CacheWritePolicyArn"] = "arn:aws:iam::111122223333:policy/berth-cache-write-eu-west-1"
	st.Outputs["CacheReadPolicyArn"] = "arn:aws:iam::111122223333:policy/berth-cache-read-eu-west-1"
	cfgPath := filepath.Join(t.TempDir(), "berth.yaml")
	code, stdout, _ := berth(t, "dataplane", "deploy", "--yes", "--cache-days", "5", "--config", cfgPath,
		"--account", "111122223333", "--external-id", "ext-7d1f", "--regions", "eu-west-1")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "stdout", stdout, "for berth cache: arn:aws:iam::111122223333:policy/berth-cache-write-REGION (save), arn:aws:iam::111122223333:policy/berth-cache-read-REGION (restore)")
	wantIn(t, "template", compact(t, st.Template), `"BucketName":{"Fn::Sub":"berth-cache-${AWS::AccountId}-${AWS::Region}"}`,
		`"ExpirationInDays":5`, `"ManagedPolicyName":{"Fn::Sub":"berth-cache-write-${AWS::Region}"}`)
	c, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Regions) != 1 || c.Regions[0].Cache != "s3://berth-cache-111122223333-eu-west-1?region=eu-west-1" {
		t.Errorf("config regions = %+v", c.Regions)
	}

	// --cache-bucket is for --endpoint; on AWS the stack names the bucket.
	code, _, stderr := berth(t, "dataplane", "deploy", "--yes", "--cache-bucket", "mine",
		"--account", "111122223333", "--external-id", "ext-7d1f", "--regions", "eu-west-1")
	if code != ExitUsage {
		t.Errorf("--cache-bucket on AWS: exit %d, want %d", code, ExitUsage)
	}
	wantIn(t, "stderr", stderr, "--cache-bucket")
}
