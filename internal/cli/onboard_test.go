package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/policy"
)

// These scenarios run berth's onboarding commands against awsfake: the
// real SDK clients serialise every call, the fake answers with the
// documented shapes, and the tests read what berth printed and sent.
// They set process environment variables and cannot run in parallel.

const (
	account   = "123456789012"
	callerARN = "arn:aws:iam::123456789012:user/admin"
	vendor    = "arn:aws:iam::444455556666:role/vendor"
)

// newFake starts the fake AWS, points the SDK at it from eu-west-1 and
// answers GetCallerIdentity for callerARN.
func newFake(t *testing.T) *awsfake.Server {
	t.Helper()
	s := awsfake.New(t)
	s.Setenv(t, "eu-west-1")
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	s.Handle("sts", "GetCallerIdentity", awsfake.CallerIdentity(account, callerARN))
	return s
}

// berth runs the CLI in-process with the process environment.
func berth(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	g := &Globals{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Env: os.Getenv, StackPoll: time.Millisecond}
	code := Main(context.Background(), args, g)
	t.Logf("berth %s: exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return code, stdout.String(), stderr.String()
}

func wantIn(t *testing.T, name, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(text, s) {
			t.Errorf("%s does not contain %q", name, s)
		}
	}
}

var bootstrapOutputs = map[string]string{
	"ProvisionerRoleArn": "arn:aws:iam::123456789012:role/berth-provisioner",
	"OpsRoleArn":         "arn:aws:iam::123456789012:role/berth-ops",
	"BootstrapVersion":   currentBootstrap,
}

// currentBootstrap is the bootstrap version this berth deploys.
var currentBootstrap = strconv.Itoa(cfn.BootstrapVersion)

var bootstrapArgs = []string{"bootstrap", "deploy", "--trust-principal", vendor, "--external-id", "ext-7d1f"}

func TestBootstrapFirstDeploy(t *testing.T) {
	s := newFake(t)
	st := &awsfake.Stack{Name: "berth-bootstrap", Outputs: bootstrapOutputs, Changes: []string{
		awsfake.ResourceChange("Add", "OpsRole", "", "AWS::IAM::Role", ""),
		awsfake.ResourceChange("Add", "ProvisionerRole", "", "AWS::IAM::Role", ""),
		awsfake.ResourceChange("Add", "VersionParameter", "", "AWS::SSM::Parameter", ""),
	}}
	s.AddStack("eu-west-1", st)

	code, stdout, stderr := berth(t, append(bootstrapArgs, "--yes")...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "stdout", stdout,
		"stack berth-bootstrap in eu-west-1: create, 3 changes",
		"Add     ProvisionerRole   AWS::IAM::Role",
		"hand these to the provisioner",
		"provisioner role   arn:aws:iam::123456789012:role/berth-provisioner",
		"ops role           arn:aws:iam::123456789012:role/berth-ops",
		"external ID        ext-7d1f",
		"bootstrap version  "+currentBootstrap,
		"berth dataplane deploy --account 123456789012 --external-id ext-7d1f --regions eu-west-1")
	wantIn(t, "stderr", stderr, "berth-bootstrap", "CREATE_COMPLETE")
	if got := st.Parameters; got.Get("Parameters.member.1.ParameterKey") != "ExternalId" || got.Get("Parameters.member.1.ParameterValue") != "ext-7d1f" ||
		got.Get("Parameters.member.2.ParameterValue") != vendor {
		t.Errorf("change set parameters = %v", got)
	}
	wantIn(t, "template", compact(t, st.Template), `"RoleName":"berth-provisioner"`)
	if strings.Contains(stderr, "AdministratorAccess") {
		t.Errorf("warning without --administrator")
	}
	if n := len(s.Called("cloudformation", "ExecuteChangeSet")); n != 1 {
		t.Errorf("ExecuteChangeSet called %d times", n)
	}
}

func TestBootstrapNoChanges(t *testing.T) {
	s := newFake(t)
	s.AddStack("eu-west-1", &awsfake.Stack{Name: "berth-bootstrap", Status: "UPDATE_COMPLETE", Outputs: bootstrapOutputs, ChangeSetReason: awsfake.NoChanges})
	// No --yes and no terminal: without changes there is nothing to ask.
	code, stdout, _ := berth(t, bootstrapArgs...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "stdout", stdout, "stack berth-bootstrap in eu-west-1: no changes", "no changes: the bootstrap is up to date", "bootstrap version  "+currentBootstrap)
	if len(s.Called("cloudformation", "ExecuteChangeSet")) != 0 {
		t.Error("executed a change set without changes")
	}
}

func TestBootstrapUpdate(t *testing.T) {
	s := newFake(t)
	st := &awsfake.Stack{Name: "berth-bootstrap", Status: "CREATE_COMPLETE", Outputs: bootstrapOutputs, Changes: []string{
		awsfake.ResourceChange("Modify", "ProvisionerRole", "berth-provisioner", "AWS::IAM::Role", "False",
			awsfake.ChangeDetail("PermissionsBoundary", "Never", "DirectModification", "", "arn:aws:iam::123456789012:policy/boundary")),
	}}
	s.AddStack("eu-west-1", st)

	// Without a terminal and without --yes nothing is applied, and the
	// change set is cleaned up.
	code, stdout, stderr := berth(t, append(bootstrapArgs, "--permissions-boundary", "arn:aws:iam::123456789012:policy/boundary")...)
	if code != ExitUsage || !strings.Contains(stderr, "pass --yes") {
		t.Fatalf("without --yes: exit %d", code)
	}
	wantIn(t, "stdout", stdout, "update, 1 change", "ProvisionerRole (Modify, replacement False):", "Properties.PermissionsBoundary")
	if len(s.Called("cloudformation", "DeleteChangeSet")) != 1 || len(s.Called("cloudformation", "ExecuteChangeSet")) != 0 {
		t.Errorf("declined plan: calls %v", actions(s))
	}

	code, stdout, _ = berth(t, append(bootstrapArgs, "--permissions-boundary", "arn:aws:iam::123456789012:policy/boundary", "--yes", "--output", "json")...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var out struct {
		Plan struct {
			Type    string `json:"type"`
			Changes []struct {
				Action    string `json:"action"`
				LogicalID string `json:"logical_id"`
			} `json:"changes"`
		} `json:"plan"`
		Result struct {
			Status string `json:"status"`
		} `json:"result"`
		Provisioner map[string]string `json:"provisioner"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("stdout is not one JSON document: %v", err)
	}
	if out.Plan.Type != "UPDATE" || len(out.Plan.Changes) != 1 || out.Plan.Changes[0].LogicalID != "ProvisionerRole" ||
		out.Result.Status != "UPDATE_COMPLETE" || out.Provisioner["provisioner_role_arn"] != bootstrapOutputs["ProvisionerRoleArn"] ||
		out.Provisioner["external_id"] != "ext-7d1f" || out.Provisioner["bootstrap_version"] != currentBootstrap || out.Provisioner["account"] != account {
		t.Errorf("json = %+v", out)
	}
	wantIn(t, "template", compact(t, st.Template), `"PermissionsBoundary":"arn:aws:iam::123456789012:policy/boundary"`)
}

func TestBootstrapFailedDeploy(t *testing.T) {
	s := newFake(t)
	reason := "Policy arn:aws:iam::123456789012:policy/boundary does not exist or is not attachable."
	s.AddStack("eu-west-1", &awsfake.Stack{Name: "berth-bootstrap", Status: "CREATE_COMPLETE", Outputs: bootstrapOutputs,
		Changes: []string{awsfake.ResourceChange("Modify", "ProvisionerRole", "berth-provisioner", "AWS::IAM::Role", "False")},
		Steps: []awsfake.Step{
			{Status: "UPDATE_IN_PROGRESS", Events: []awsfake.Event{{Status: "UPDATE_IN_PROGRESS", Reason: "User Initiated"}}},
			{Status: "UPDATE_ROLLBACK_IN_PROGRESS", Events: []awsfake.Event{
				{Logical: "ProvisionerRole", Type: "AWS::IAM::Role", Status: "UPDATE_FAILED", Reason: reason},
				{Status: "UPDATE_ROLLBACK_IN_PROGRESS", Reason: "The following resource(s) failed to update: [ProvisionerRole]."},
			}},
			{Status: "UPDATE_ROLLBACK_COMPLETE", Events: []awsfake.Event{{Status: "UPDATE_ROLLBACK_COMPLETE"}}},
		}})
	code, _, stderr := berth(t, append(bootstrapArgs, "--yes", "--permissions-boundary", "arn:aws:iam::123456789012:policy/boundary")...)
	if code != ExitUnavailable {
		t.Fatalf("exit %d, want %d", code, ExitUnavailable)
	}
	wantIn(t, "stderr", stderr,
		"berth: deploy stack berth-bootstrap in eu-west-1: ProvisionerRole (AWS::IAM::Role) UPDATE_FAILED: "+reason+"; stack is UPDATE_ROLLBACK_COMPLETE")
}

func TestBootstrapDowngrade(t *testing.T) {
	s := newFake(t)
	newer := map[string]string{"BootstrapVersion": "9", "ProvisionerRoleArn": bootstrapOutputs["ProvisionerRoleArn"]}
	st := &awsfake.Stack{Name: "berth-bootstrap", Status: "UPDATE_COMPLETE", Outputs: newer,
		Changes: []string{awsfake.ResourceChange("Modify", "VersionParameter", "/berth-bootstrap/berth/version", "AWS::SSM::Parameter", "False")}}
	s.AddStack("eu-west-1", st)

	code, _, stderr := berth(t, append(bootstrapArgs, "--yes")...)
	if code != ExitConflict {
		t.Fatalf("exit %d, want %d", code, ExitConflict)
	}
	wantIn(t, "stderr", stderr, "has bootstrap version 9 and this berth deploys version "+currentBootstrap+"; refusing to downgrade", "hint: pass --force")
	if len(s.Called("cloudformation", "CreateChangeSet")) != 0 {
		t.Error("planned a downgrade without --force")
	}

	code, _, stderr = berth(t, append(bootstrapArgs, "--yes", "--force", "--administrator")...)
	if code != 0 {
		t.Fatalf("--force: exit %d", code)
	}
	wantIn(t, "stderr", stderr, "warning: replacing bootstrap version 9 with the older version "+currentBootstrap+" (--force)",
		"warning: the provisioner role gets AdministratorAccess")
	wantIn(t, "template", compact(t, st.Template), `"ManagedPolicyArns":[{"Fn::Sub":"arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess"}]`)
}

func TestBootstrapStatus(t *testing.T) {
	s := newFake(t)
	s.AddStack("eu-west-1", &awsfake.Stack{Name: "berth-bootstrap"})
	code, _, stderr := berth(t, "bootstrap", "status")
	if code != ExitNo {
		t.Errorf("no stack: exit %d, want %d", code, ExitNo)
	}
	wantIn(t, "stderr", stderr, "no bootstrap in account 123456789012")

	s.AddStack("eu-west-1", &awsfake.Stack{Name: "berth-bootstrap", Status: "UPDATE_COMPLETE", Outputs: bootstrapOutputs})
	code, stdout, _ := berth(t, "bootstrap", "status")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "stdout", stdout, "stack berth-bootstrap in eu-west-1 (account 123456789012): UPDATE_COMPLETE", "bootstrap version: "+currentBootstrap+" (current)",
		"ProvisionerRoleArn  arn:aws:iam::123456789012:role/berth-provisioner")
}

// TestBootstrapStatusOlder: the bootstrap of the previous version is told
// to upgrade.
func TestBootstrapStatusOlder(t *testing.T) {
	s := newFake(t)
	previous := strconv.Itoa(cfn.BootstrapVersion - 1)
	s.AddStack("eu-west-1", &awsfake.Stack{Name: "berth-bootstrap", Status: "UPDATE_COMPLETE", Outputs: map[string]string{"BootstrapVersion": previous}})
	code, stdout, _ := berth(t, "bootstrap", "status")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "stdout", stdout, "bootstrap version: "+previous+", older than this berth's "+currentBootstrap+": run berth bootstrap deploy to upgrade")
}

func TestExpiredCredentials(t *testing.T) {
	s := newFake(t)
	s.WriteConfig(t, "[profile dev]\naws_access_key_id = ASIAEXPIRED000000001\naws_secret_access_key = expiredSECRET\naws_session_token = expiredTOKEN\nregion = eu-west-1\n")
	s.Handle("sts", "GetCallerIdentity", awsfake.Error(403, "ExpiredToken", "The security token included in the request is expired"))

	code, _, stderr := berth(t, append(bootstrapArgs, "--yes", "--profile", "dev")...)
	if code != ExitDenied {
		t.Fatalf("bootstrap: exit %d, want %d", code, ExitDenied)
	}
	wantIn(t, "stderr", stderr, `the credentials from profile "dev" have expired`, "run aws sso login --profile dev")

	code, stdout, _ := berth(t, "check", "--profile", "dev", "--bucket", "releases", "--region", "eu-west-1")
	if code != ExitDenied {
		t.Fatalf("check: exit %d, want %d", code, ExitDenied)
	}
	wantIn(t, "check stdout", stdout, "FAIL  credentials", "run aws sso login --profile dev")
	if n := len(s.Calls()); n != 2 {
		t.Errorf("%d calls after expired credentials, want only the two GetCallerIdentity", n)
	}
}

// dataPlane adds a data plane stack in region that a deploy creates.
func dataPlane(s *awsfake.Server, region string) *awsfake.Stack {
	st := &awsfake.Stack{Name: "berth-dataplane", Outputs: map[string]string{
		"BucketName":             "berth-111122223333-" + region,
		"KeyArn":                 "arn:aws:kms:" + region + ":111122223333:key/1234abcd",
		"ArtifactWritePolicyArn": "arn:aws:iam::111122223333:policy/berth-artifact-write-" + region,
		"ArtifactReadPolicyArn":  "arn:aws:iam::111122223333:policy/berth-artifact-read-" + region,
		"BucketParameterName":    "/berth/bucket",
	}, Changes: []string{
		awsfake.ResourceChange("Add", "ArtifactBucket", "", "AWS::S3::Bucket", ""),
		awsfake.ResourceChange("Add", "ArtifactKey", "", "AWS::KMS::Key", ""),
		awsfake.ResourceChange("Add", "BucketParameter", "", "AWS::SSM::Parameter", ""),
	}}
	s.AddStack(region, st)
	return st
}

var target = []string{"--account", "111122223333", "--external-id", "ext-7d1f", "--regions", "eu-west-1,us-east-1"}

// bootstrapVersion answers the bootstrap version parameter in eu-west-1.
func bootstrapVersion(s *awsfake.Server, version string) {
	s.HandleIn("eu-west-1", "ssm", "GetParameter", func(r *awsfake.Request) awsfake.Response {
		if r.JSON["Name"] != "/berth-bootstrap/berth/version" {
			return awsfake.JSONError(400, "ParameterNotFound", "")
		}
		return awsfake.JSON(map[string]any{"Parameter": map[string]any{"Name": r.JSON["Name"], "Value": version, "Type": "String", "Version": 1}})
	})
}

func TestDataplaneDeployOlderBootstrap(t *testing.T) {
	s := newFake(t)
	s.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	previous := strconv.Itoa(cfn.BootstrapVersion - 1) // its roles lack what this data plane needs (the boundary, since 4)
	bootstrapVersion(s, previous)
	code, _, stderr := berth(t, append([]string{"dataplane", "deploy", "--yes"}, target...)...)
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	wantIn(t, "stderr", stderr, "the bootstrap in account 111122223333 is version "+previous+" and this berth needs "+currentBootstrap, "berth bootstrap deploy")
	if len(s.Called("cloudformation", "CreateChangeSet")) != 0 {
		t.Error("a change set was created for an older bootstrap")
	}
}

func TestDataplaneDeployTwoRegions(t *testing.T) {
	s := newFake(t)
	s.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	bootstrapVersion(s, currentBootstrap)
	eu, us := dataPlane(s, "eu-west-1"), dataPlane(s, "us-east-1")
	cfgPath := filepath.Join(t.TempDir(), "berth.yaml")

	code, stdout, stderr := berth(t, append([]string{"dataplane", "deploy", "--prefix", "rel", "--yes", "--config", cfgPath}, target...)...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "stdout", stdout, "stack berth-dataplane in eu-west-1: create, 3 changes", "stack berth-dataplane in us-east-1: create, 3 changes",
		"wrote "+cfgPath+": berth stage now writes to 2 region(s)", "eu-west-1  berth-111122223333-eu-west-1")
	wantIn(t, "stderr", stderr, "acting as arn:aws:iam::111122223333:role/berth-provisioner",
		"eu-west-1: 10:00:02  berth-dataplane", "us-east-1: 10:00:02  berth-dataplane")

	as := s.Called("sts", "AssumeRole")
	if len(as) != 1 || as[0].Form.Get("RoleArn") != "arn:aws:iam::111122223333:role/berth-provisioner" || as[0].Form.Get("ExternalId") != "ext-7d1f" ||
		!strings.HasPrefix(as[0].Form.Get("RoleSessionName"), "berth-") ||
		as[0].Form.Get("Tags.member.1.Key") != "berth:qualifier" || as[0].Form.Get("Tags.member.1.Value") != "berth" {
		t.Errorf("AssumeRole calls: %v", as)
	}
	for _, c := range s.Calls() {
		if c.Service == "cloudformation" && c.AccessKeyID != awsfake.AssumedKeyID {
			t.Errorf("%s in %s signed with %s, not the assumed role's key", c.Action, c.Region, c.AccessKeyID)
		}
	}
	for _, st := range []*awsfake.Stack{eu, us} {
		wantIn(t, "template", compact(t, st.Template), `"BucketName":{"Fn::Sub":"berth-${AWS::AccountId}-${AWS::Region}"}`, "rel/*")
	}

	// The config berth stage reads.
	c, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	want := []config.Region{
		{Name: "eu-west-1", Store: "s3://berth-111122223333-eu-west-1?region=eu-west-1"},
		{Name: "us-east-1", Store: "s3://berth-111122223333-us-east-1?region=us-east-1"},
	}
	if fmt.Sprint(c.Regions) != fmt.Sprint(want) || c.Prefix != "rel" || c.Pointers != "ssm:/berth" {
		t.Errorf("config = %+v", c)
	}
	// What berth stage does before its first upload: resolve the config
	// and open a store and an SSM pointer per region.
	g := &Globals{Env: os.Getenv, ConfigPath: cfgPath, Stderr: &bytes.Buffer{}}
	g.setup()
	if _, err := g.client(context.Background(), &cobra.Command{}, &storeFlags{}); err != nil {
		t.Errorf("berth stage cannot open the written config: %v", err)
	}

	// Deployed again: no changes, no question, the same config.
	eu.Status, us.Status = "CREATE_COMPLETE", "CREATE_COMPLETE"
	eu.ChangeSetReason, us.ChangeSetReason = awsfake.NoChanges, awsfake.NoChanges
	code, stdout, _ = berth(t, append([]string{"dataplane", "deploy", "--prefix", "rel", "--config", cfgPath}, target...)...)
	if code != 0 {
		t.Fatalf("second deploy: exit %d", code)
	}
	wantIn(t, "second stdout", stdout, "stack berth-dataplane in eu-west-1: no changes", "no changes: the data plane is as configured")
}

func TestDataplaneKeyRegion(t *testing.T) {
	newFake(t)
	code, _, stderr := berth(t, append([]string{"dataplane", "deploy", "--kms-key", "arn:aws:kms:eu-west-1:111122223333:key/1234"}, target...)...)
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	wantIn(t, "stderr", stderr, "--kms-key is in eu-west-1 and cannot encrypt a bucket in us-east-1")
}

func TestDataplaneDrift(t *testing.T) {
	s := newFake(t)
	s.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	s.AddStack("eu-west-1", &awsfake.Stack{Name: "berth-dataplane", Status: "CREATE_COMPLETE", DriftStatus: "DRIFTED", Drifts: []string{
		awsfake.ResourceDrift("ArtifactBucket", "berth-111122223333-eu-west-1", "AWS::S3::Bucket", "MODIFIED",
			[4]string{"/VersioningConfiguration/Status", "Enabled", "Suspended", "NOT_EQUAL"},
			[4]string{"/PublicAccessBlockConfiguration/BlockPublicPolicy", "true", "false", "NOT_EQUAL"}),
		awsfake.ResourceDrift("BucketParameter", "/berth/bucket", "AWS::SSM::Parameter", "IN_SYNC"),
		awsfake.ResourceDrift("ArtifactReadPolicy", "arn:aws:iam::111122223333:policy/berth-artifact-read-eu-west-1", "AWS::IAM::ManagedPolicy", "DELETED"),
	}})
	s.AddStack("us-east-1", &awsfake.Stack{Name: "berth-dataplane", Status: "CREATE_COMPLETE", Drifts: []string{
		awsfake.ResourceDrift("ArtifactBucket", "berth-111122223333-us-east-1", "AWS::S3::Bucket", "IN_SYNC"),
	}})
	code, stdout, stderr := berth(t, append([]string{"dataplane", "drift"}, target...)...)
	if code != ExitNo {
		t.Fatalf("exit %d, want %d", code, ExitNo)
	}
	wantIn(t, "stdout", stdout, "stack berth-dataplane in eu-west-1: DRIFTED, 2 of 3 resources drifted",
		"/VersioningConfiguration/Status", "Suspended", "ArtifactReadPolicy (AWS::IAM::ManagedPolicy) DELETED",
		"stack berth-dataplane in us-east-1: IN_SYNC, 0 of 1 resource drifted")
	wantIn(t, "stderr", stderr, "drift found in 1 of 2 region(s)")
	if as := s.Called("sts", "AssumeRole"); len(as) != 1 || as[0].Form.Get("RoleArn") != "arn:aws:iam::111122223333:role/berth-ops" {
		t.Errorf("drift must use the read-only ops role: %v", as)
	}
}

func TestDataplaneStatusAndDestroy(t *testing.T) {
	s := newFake(t)
	s.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	s.AddStack("eu-west-1", &awsfake.Stack{Name: "berth-dataplane", Status: "CREATE_COMPLETE",
		Outputs: map[string]string{"BucketName": "berth-111122223333-eu-west-1", "KeyArn": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd"},
		Steps: []awsfake.Step{
			{Status: "DELETE_IN_PROGRESS", Events: []awsfake.Event{
				{Status: "DELETE_IN_PROGRESS", Reason: "User Initiated"},
				{Logical: "ArtifactWritePolicy", Type: "AWS::IAM::ManagedPolicy", Status: "DELETE_COMPLETE"},
				{Logical: "ArtifactBucket", Type: "AWS::S3::Bucket", Physical: "berth-111122223333-eu-west-1", Status: "DELETE_SKIPPED"},
				{Logical: "ArtifactKey", Type: "AWS::KMS::Key", Physical: "1234abcd", Status: "DELETE_SKIPPED"},
			}},
			{Status: "DELETE_COMPLETE", Events: []awsfake.Event{{Status: "DELETE_COMPLETE"}}},
		}})
	s.HandleIn("us-east-1", "cloudformation", "DescribeStacks", awsfake.Error(400, "ValidationError", "Stack with id berth-dataplane does not exist"))

	code, stdout, _ := berth(t, append([]string{"dataplane", "status"}, target...)...)
	if code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	wantIn(t, "status", stdout, "eu-west-1  berth-dataplane  CREATE_COMPLETE  berth-111122223333-eu-west-1", "us-east-1  berth-dataplane  not deployed")

	code, stdout, _ = berth(t, append([]string{"dataplane", "destroy", "--yes"}, target...)...)
	if code != 0 {
		t.Fatalf("destroy: exit %d", code)
	}
	wantIn(t, "destroy", stdout, "the buckets and keys are kept with their data",
		"eu-west-1: deleted stack berth-dataplane",
		"eu-west-1: kept ArtifactBucket berth-111122223333-eu-west-1 (AWS::S3::Bucket)",
		"eu-west-1: kept ArtifactKey 1234abcd (AWS::KMS::Key)",
		"us-east-1: no stack berth-dataplane, nothing to delete")
	if as := s.Called("sts", "AssumeRole"); len(as) != 2 || as[1].Form.Get("RoleArn") != "arn:aws:iam::111122223333:role/berth-provisioner" {
		t.Errorf("destroy must use the provisioner role: %v", as)
	}
}

// simulate answers iam:SimulatePrincipalPolicy with one result per action
// and resource, allowing what allowed says.
func simulate(allowed func(action, resource string) bool) awsfake.Handler {
	return func(r *awsfake.Request) awsfake.Response {
		var b strings.Builder
		b.WriteString("<IsTruncated>false</IsTruncated><EvaluationResults>")
		for i := 1; r.Form.Get(fmt.Sprintf("ActionNames.member.%d", i)) != ""; i++ {
			a := r.Form.Get(fmt.Sprintf("ActionNames.member.%d", i))
			for j := 1; r.Form.Get(fmt.Sprintf("ResourceArns.member.%d", j)) != ""; j++ {
				res := r.Form.Get(fmt.Sprintf("ResourceArns.member.%d", j))
				d := "implicitDeny"
				if allowed(a, res) {
					d = "allowed"
				}
				fmt.Fprintf(&b, "<member><EvalActionName>%s</EvalActionName><EvalResourceName>%s</EvalResourceName><EvalDecision>%s</EvalDecision><MatchedStatements/><MissingContextValues/></member>",
					awsfake.X(a), awsfake.X(res), d)
			}
		}
		b.WriteString("</EvaluationResults>")
		return awsfake.Query("iam", "SimulatePrincipalPolicy", b.String())
	}
}

func headBucket(status int, region string) awsfake.Handler {
	return func(*awsfake.Request) awsfake.Response {
		return awsfake.Response{Status: status, Header: http.Header{"X-Amz-Bucket-Region": {region}}}
	}
}

func TestCheckMissingPermissions(t *testing.T) {
	s := newFake(t)
	s.Handle("sts", "GetCallerIdentity", awsfake.CallerIdentity(account, "arn:aws:sts::123456789012:assumed-role/ci/build-42"))
	s.Handle("iam", "GetRole", func(*awsfake.Request) awsfake.Response {
		return awsfake.Query("iam", "GetRole", `<Role><Path>/ci/</Path><RoleName>ci</RoleName><RoleId>AROAFAKE</RoleId><Arn>arn:aws:iam::123456789012:role/ci/ci</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate><AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument></Role>`)
	})
	s.Handle("s3", "HEAD /releases", headBucket(200, "eu-west-1"))
	s.Handle("kms", "DescribeKey", func(r *awsfake.Request) awsfake.Response {
		return awsfake.JSON(map[string]any{"KeyMetadata": map[string]any{"KeyId": "1234", "Arn": r.JSON["KeyId"], "Enabled": true,
			"KeyState": "Enabled", "KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT"}})
	})
	s.Handle("kms", "GenerateDataKey", func(*awsfake.Request) awsfake.Response {
		return awsfake.JSONError(400, "AccessDeniedException", "not authorized to perform kms:GenerateDataKey")
	})
	s.Handle("iam", "SimulatePrincipalPolicy", simulate(func(action, resource string) bool {
		return !(action == "s3:PutObject" && strings.HasSuffix(resource, "manifest.json")) && action != "s3:AbortMultipartUpload"
	}))

	code, stdout, _ := berth(t, "check", "--bucket", "releases", "--region", "eu-west-1", "--prefix", "rel",
		"--kms-key", "arn:aws:kms:eu-west-1:123456789012:key/1234")
	if code != ExitDenied {
		t.Fatalf("exit %d, want %d", code, ExitDenied)
	}
	wantIn(t, "stdout", stdout,
		"ok    credentials  arn:aws:sts::123456789012:assumed-role/ci/build-42",
		"ok    --bucket     bucket releases exists in eu-west-1",
		"ok    --kms-key    key arn:aws:kms:eu-west-1:123456789012:key/1234 is enabled; direct kms:GenerateDataKey is denied",
		"FAIL  permissions  arn:aws:iam::123456789012:role/ci/ci may not make 2 of the 9 requests",
		"s3:AbortMultipartUpload  on arn:aws:s3:::releases/rel/berth-check/berth-check/data/berth-check",
		"s3:PutObject             on arn:aws:s3:::releases/rel/berth-check/berth-check/manifest.json",
		`"Sid": "CommitVersions"`, `"arn:aws:s3:::releases/rel/*/*/manifest.json"`)
	sims := s.Called("iam", "SimulatePrincipalPolicy")
	if len(sims) == 0 || sims[0].Form.Get("PolicySourceArn") != "arn:aws:iam::123456789012:role/ci/ci" {
		t.Fatalf("SimulatePrincipalPolicy calls: %v", sims)
	}
	// The ListBucket statement's condition is met by a sample s3:prefix.
	if f := sims[0].Form; f.Get("ContextEntries.member.1.ContextKeyName") != "s3:prefix" || f.Get("ContextEntries.member.1.ContextKeyValues.member.1") != "rel/berth-check" {
		t.Errorf("ListBucket context = %v", f)
	}
}

func TestCheckWrongRegion(t *testing.T) {
	s := newFake(t)
	s.Handle("s3", "HEAD /releases", headBucket(301, "us-east-1"))
	s.Handle("iam", "SimulatePrincipalPolicy", simulate(func(string, string) bool { return true }))
	code, stdout, _ := berth(t, "check", "--bucket", "releases", "--region", "eu-west-1", "--role", "reader")
	if code != ExitNo {
		t.Fatalf("exit %d, want %d", code, ExitNo)
	}
	wantIn(t, "stdout", stdout, "FAIL  --region     bucket releases is in us-east-1, not eu-west-1: pass --region us-east-1",
		"ok    permissions  arn:aws:iam::123456789012:user/admin may make all")

	s.Handle("s3", "HEAD /missing", func(*awsfake.Request) awsfake.Response { return awsfake.Response{Status: 404} })
	code, stdout, _ = berth(t, "check", "--bucket", "missing", "--region", "eu-west-1", "--role", "reader", "--output", "json")
	if code != ExitNo {
		t.Fatalf("missing bucket: exit %d, want %d", code, ExitNo)
	}
	var out struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Field string `json:"field"`
			OK    bool   `json:"ok"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.OK || out.Checks[1].Field != "--bucket" || out.Checks[1].OK {
		t.Errorf("json = %+v (%v)", out, err)
	}
}

func TestCheckOffline(t *testing.T) {
	// No fake server: an AWS call would fail to connect.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	dir := t.TempDir()
	full, err := policy.Render(policy.KindArtifactWrite, policy.Params{Bucket: "releases", Prefix: "rel"})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "full.json"), full.Policy.JSON(), 0o644)
	partial := *full.Policy
	partial.Statement = nil
	for _, st := range full.Policy.Statement {
		if st.Sid != "StageData" {
			partial.Statement = append(partial.Statement, st)
		}
	}
	os.WriteFile(filepath.Join(dir, "partial.json"), partial.JSON(), 0o644)

	code, stdout, _ := berth(t, "check", "--bucket", "releases", "--prefix", "rel", "--policy", filepath.Join(dir, "full.json"))
	if code != 0 {
		t.Fatalf("full policy: exit %d", code)
	}
	wantIn(t, "stdout", stdout, "ok  permissions  arn:aws:iam::000000000000:role/berth-check may make all")

	code, stdout, _ = berth(t, "check", "--bucket", "releases", "--prefix", "rel", "--policy", filepath.Join(dir, "partial.json"))
	if code != ExitDenied {
		t.Fatalf("partial policy: exit %d, want %d", code, ExitDenied)
	}
	wantIn(t, "stdout", stdout, "may not make 2 of the 7 requests", "s3:AbortMultipartUpload", `"Sid": "StageData"`, "(offline, ")
	if strings.Contains(stdout, "CommitVersions") {
		t.Error("the snippet grants statements that are not missing")
	}
}

// compact removes the indentation of a JSON template.
func compact(t *testing.T, s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("template is not JSON: %v", err)
	}
	return b.String()
}

func actions(s *awsfake.Server) []string {
	var out []string
	for _, c := range s.Calls() {
		out = append(out, c.Service+":"+c.Action)
	}
	return out
}
