package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/golden"
)

var dataStack = Stack{
	Name:         "berth-data",
	TemplateBody: `{"Resources":{}}`,
	Parameters:   map[string]string{"Qualifier": "main", "KmsKeyArn": ""},
	Tags:         map[string]string{"berth:stack": "data"},
	Capabilities: []string{"CAPABILITY_NAMED_IAM"},
}

func TestFirstDeploy(t *testing.T) {
	f := newFake(t)
	f.csStatus = []string{"CREATE_PENDING", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"}
	f.changes = []string{
		resourceChange("Add", "ArtifactBucket", "", "AWS::S3::Bucket", ""),
		resourceChange("Add", "BucketParameter", "", "AWS::SSM::Parameter", ""),
		resourceChange("Add", "WriterPolicy", "", "AWS::IAM::ManagedPolicy", ""),
	}
	f.outputs = map[string]string{"BucketName": "berth-artifacts-123", "BucketArn": "arn:aws:s3:::berth-artifacts-123"}
	f.steps = []step{
		{status: "CREATE_IN_PROGRESS", events: []evt{
			{status: "CREATE_IN_PROGRESS", reason: "User Initiated"},
			{logical: "ArtifactBucket", typ: "AWS::S3::Bucket", status: "CREATE_IN_PROGRESS"},
			{logical: "BucketParameter", typ: "AWS::SSM::Parameter", status: "CREATE_IN_PROGRESS"},
		}},
		{status: "CREATE_IN_PROGRESS", events: []evt{
			{logical: "ArtifactBucket", typ: "AWS::S3::Bucket", status: "CREATE_COMPLETE", physical: "berth-artifacts-123"},
			{logical: "BucketParameter", typ: "AWS::SSM::Parameter", status: "CREATE_COMPLETE"},
			{logical: "WriterPolicy", typ: "AWS::IAM::ManagedPolicy", status: "CREATE_IN_PROGRESS"},
			{logical: "WriterPolicy", typ: "AWS::IAM::ManagedPolicy", status: "CREATE_COMPLETE"},
		}},
		{status: "CREATE_COMPLETE", events: []evt{{status: "CREATE_COMPLETE"}}},
	}
	var events strings.Builder
	d := f.deployer(&events)
	ctx := context.Background()

	p, err := d.Plan(ctx, dataStack)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != "CREATE" || p.NoChanges || len(p.Changes) != 3 || p.StackID != stackID || p.ChangeSetID != changeSetID {
		t.Fatalf("plan = %+v", p)
	}
	if c := p.Changes[2]; c.Action != "Add" || c.LogicalID != "WriterPolicy" || c.Type != "AWS::IAM::ManagedPolicy" {
		t.Errorf("third change (second page) = %+v", c)
	}
	form := f.form("CreateChangeSet")
	want := url.Values{
		"StackName":                          {"berth-data"},
		"ChangeSetType":                      {"CREATE"},
		"TemplateBody":                       {`{"Resources":{}}`},
		"Capabilities.member.1":              {"CAPABILITY_NAMED_IAM"},
		"Parameters.member.1.ParameterKey":   {"KmsKeyArn"},
		"Parameters.member.1.ParameterValue": {""},
		"Parameters.member.2.ParameterKey":   {"Qualifier"},
		"Parameters.member.2.ParameterValue": {"main"},
		"Tags.member.1.Key":                  {"berth:stack"},
		"Tags.member.1.Value":                {"data"},
	}
	for k, v := range want {
		if !reflect.DeepEqual(form[k], v) {
			t.Errorf("CreateChangeSet %s = %q, want %q", k, form[k], v)
		}
	}
	if name := form.Get("ChangeSetName"); !regexp.MustCompile(`^berth-\d{8}-\d{6}-\d{6}$`).MatchString(name) {
		t.Errorf("ChangeSetName = %q", name)
	}

	res, err := d.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "CREATE_COMPLETE" || res.StackID != stackID || res.NoChanges {
		t.Errorf("result = %+v", res)
	}
	if want := map[string]string{"BucketName": "berth-artifacts-123", "BucketArn": "arn:aws:s3:::berth-artifacts-123"}; !reflect.DeepEqual(res.Outputs, want) {
		t.Errorf("outputs = %v, want %v", res.Outputs, want)
	}
	if got := f.form("ExecuteChangeSet").Get("ChangeSetName"); got != changeSetID {
		t.Errorf("ExecuteChangeSet ChangeSetName = %q", got)
	}
	// Only this deploy's events, oldest first, each once; the
	// REVIEW_IN_PROGRESS event from before the execution is not repeated.
	wantEvents := `10:00:01  berth-data                   AWS::CloudFormation::Stack       CREATE_IN_PROGRESS   User Initiated
10:00:02  ArtifactBucket               AWS::S3::Bucket                  CREATE_IN_PROGRESS
10:00:03  BucketParameter              AWS::SSM::Parameter              CREATE_IN_PROGRESS
10:00:04  ArtifactBucket               AWS::S3::Bucket                  CREATE_COMPLETE
10:00:05  BucketParameter              AWS::SSM::Parameter              CREATE_COMPLETE
10:00:06  WriterPolicy                 AWS::IAM::ManagedPolicy          CREATE_IN_PROGRESS
10:00:07  WriterPolicy                 AWS::IAM::ManagedPolicy          CREATE_COMPLETE
10:00:08  berth-data                   AWS::CloudFormation::Stack       CREATE_COMPLETE
`
	if events.String() != wantEvents {
		t.Errorf("events:\n%s\nwant:\n%s", events.String(), wantEvents)
	}
	var out bytes.Buffer
	if err := FormatPlan(&out, p); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "plan-create.txt", out.Bytes())
}

func TestNoOpRedeploy(t *testing.T) {
	f := newFake(t)
	f.status = "UPDATE_COMPLETE"
	f.outputs = map[string]string{"BucketName": "berth-artifacts-123"}
	f.csStatus = []string{"CREATE_IN_PROGRESS", "FAILED"}
	f.csReason = "The submitted information didn't contain changes. Submit different information to create a change set."
	d := f.deployer(nil)
	ctx := context.Background()

	p, err := d.Plan(ctx, dataStack)
	if err != nil {
		t.Fatal(err)
	}
	if !p.NoChanges || p.Type != "UPDATE" || len(p.Changes) != 0 {
		t.Fatalf("plan = %+v", p)
	}
	if got := f.form("CreateChangeSet").Get("ChangeSetType"); got != "UPDATE" {
		t.Errorf("ChangeSetType = %q", got)
	}
	if got := f.form("DeleteChangeSet").Get("ChangeSetName"); got != changeSetID {
		t.Errorf("the empty change set was not deleted (DeleteChangeSet %q)", got)
	}
	res, err := d.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !res.NoChanges || res.Outputs["BucketName"] != "berth-artifacts-123" || res.Status != "UPDATE_COMPLETE" {
		t.Errorf("result = %+v", res)
	}
	if f.called("ExecuteChangeSet") || f.called("DeleteStack") {
		t.Errorf("calls = %v, want no ExecuteChangeSet or DeleteStack", f.actions())
	}
	var out bytes.Buffer
	FormatPlan(&out, p)
	if want := "stack berth-data in eu-west-1: no changes\n"; out.String() != want {
		t.Errorf("FormatPlan = %q, want %q", out.String(), want)
	}
}

func TestUpdateWithReplacement(t *testing.T) {
	f := newFake(t)
	f.status = "UPDATE_COMPLETE"
	f.addEvents(evt{status: "UPDATE_COMPLETE"})
	f.changes = []string{
		resourceChange("Modify", "ArtifactBucket", "berth-artifacts-123", "AWS::S3::Bucket", "True",
			changeDetail("BucketName", "Always", "DirectModification", "", "berth-artifacts-123", "berth-artifacts-456"),
			changeDetail("VersioningConfiguration", "Never", "DirectModification", "", "", "")),
		resourceChange("Modify", "BucketParameter", "/berth/data/bucket", "AWS::SSM::Parameter", "False",
			changeDetail("Value", "Never", "ResourceReference", "ArtifactBucket", "", "")),
		resourceChange("Add", "ReaderPolicy", "", "AWS::IAM::ManagedPolicy", ""),
		`<member><Type>Resource</Type><ResourceChange><PolicyAction>Retain</PolicyAction><Action>Remove</Action><LogicalResourceId>OldLogs</LogicalResourceId><PhysicalResourceId>berth-logs-123</PhysicalResourceId><ResourceType>AWS::S3::Bucket</ResourceType></ResourceChange></member>`,
		`<member><Type>Resource</Type><ResourceChange><PolicyAction>Delete</PolicyAction><Action>Remove</Action><LogicalResourceId>OldParameter</LogicalResourceId><PhysicalResourceId>/berth/old</PhysicalResourceId><ResourceType>AWS::SSM::Parameter</ResourceType></ResourceChange></member>`,
	}
	f.steps = []step{
		// CloudFormation may still report the old status right after
		// ExecuteChangeSet: that must not end the wait.
		{status: "UPDATE_COMPLETE"},
		{status: "UPDATE_IN_PROGRESS", events: []evt{{status: "UPDATE_IN_PROGRESS", reason: "User Initiated"}}},
		{status: "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", events: []evt{
			{logical: "ArtifactBucket", typ: "AWS::S3::Bucket", status: "UPDATE_COMPLETE", physical: "berth-artifacts-456"},
			{status: "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"},
		}},
		{status: "UPDATE_COMPLETE", events: []evt{{status: "UPDATE_COMPLETE"}}},
	}
	f.outputs = map[string]string{"BucketName": "berth-artifacts-456"}
	var events strings.Builder
	d := f.deployer(&events)
	ctx := context.Background()

	p, err := d.Plan(ctx, dataStack)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Changes[0]
	if p.Type != "UPDATE" || c.Action != "Modify" || c.Replacement != "True" || c.PhysicalID != "berth-artifacts-123" ||
		!reflect.DeepEqual(c.Scope, []string{"Properties"}) || len(c.Details) != 2 || c.Details[0].RequiresRecreation != "Always" ||
		c.Details[0].After != "berth-artifacts-456" {
		t.Errorf("plan = %+v", p)
	}
	if got := f.form("DescribeChangeSet").Get("IncludePropertyValues"); got != "true" {
		t.Errorf("IncludePropertyValues = %q", got)
	}
	var out bytes.Buffer
	if err := FormatPlan(&out, p); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "plan-update.txt", out.Bytes())
	js, _ := json.Marshal(p.Changes[0])
	if !strings.Contains(string(js), `"replacement":"True"`) || !strings.Contains(string(js), `"requires_recreation":"Always"`) {
		t.Errorf("json = %s", js)
	}

	res, err := d.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "UPDATE_COMPLETE" || res.Outputs["BucketName"] != "berth-artifacts-456" {
		t.Errorf("result = %+v", res)
	}
	if strings.Count(events.String(), "\n") != 4 || strings.Contains(events.String(), "10:00:00") {
		t.Errorf("events (the one from before the update must not show):\n%s", events.String())
	}
}

func TestFailedDeployRollback(t *testing.T) {
	f := newFake(t)
	f.changes = []string{resourceChange("Add", "ArtifactBucket", "", "AWS::S3::Bucket", "")}
	f.steps = []step{
		{status: "CREATE_IN_PROGRESS", events: []evt{
			{status: "CREATE_IN_PROGRESS", reason: "User Initiated"},
			{logical: "EncryptionKey", typ: "AWS::KMS::Key", status: "CREATE_IN_PROGRESS"},
			{logical: "ArtifactBucket", typ: "AWS::S3::Bucket", status: "CREATE_IN_PROGRESS"},
		}},
		{status: "ROLLBACK_IN_PROGRESS", events: []evt{
			{logical: "ArtifactBucket", typ: "AWS::S3::Bucket", status: "CREATE_FAILED",
				reason: "Resource handler returned message: \"berth-artifacts-123 already exists\" (HandlerErrorCode: AlreadyExists)"},
			{logical: "EncryptionKey", typ: "AWS::KMS::Key", status: "CREATE_FAILED", reason: "Resource creation cancelled"},
			{status: "ROLLBACK_IN_PROGRESS", reason: "The following resource(s) failed to create: [EncryptionKey, ArtifactBucket]. Rollback requested by user."},
			{logical: "EncryptionKey", typ: "AWS::KMS::Key", status: "DELETE_COMPLETE"},
		}},
		{status: "ROLLBACK_COMPLETE", events: []evt{
			{logical: "ArtifactBucket", typ: "AWS::S3::Bucket", status: "DELETE_COMPLETE"},
			{status: "ROLLBACK_COMPLETE"},
		}},
	}
	var events strings.Builder
	d := f.deployer(&events)
	ctx := context.Background()
	p, err := d.Plan(ctx, dataStack)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Apply(ctx, p)
	if !errors.Is(err, ErrDeployFailed) {
		t.Fatalf("err = %v, want ErrDeployFailed", err)
	}
	var fe *FailedError
	if !errors.As(err, &fe) || fe.Resource == nil || fe.Resource.LogicalID != "ArtifactBucket" || fe.Status != "ROLLBACK_COMPLETE" {
		t.Fatalf("failure = %+v", fe)
	}
	msg := err.Error()
	for _, want := range []string{"berth-data", "eu-west-1", "ArtifactBucket", "CREATE_FAILED", "already exists", "ROLLBACK_COMPLETE"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "cancelled") {
		t.Errorf("error %q names a resource that only failed because another did", msg)
	}
	if !strings.Contains(events.String(), "ROLLBACK_COMPLETE") {
		t.Errorf("events:\n%s", events.String())
	}

	// The next plan refuses to update the rolled-back stack, and says what to do.
	_, err = d.Plan(ctx, dataStack)
	if err == nil || !strings.Contains(err.Error(), "ROLLBACK_COMPLETE") || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("plan after failed create: %v", err)
	}
}

func TestChangeSetFailed(t *testing.T) {
	f := newFake(t)
	f.csStatus = []string{"FAILED"}
	f.csReason = "Requires capabilities : [CAPABILITY_NAMED_IAM]"
	d := f.deployer(nil)
	_, err := d.Plan(context.Background(), Stack{Name: "berth-data", TemplateBody: "{}"})
	var fe *FailedError
	if !errors.As(err, &fe) || !errors.Is(err, ErrDeployFailed) || fe.Op != "plan" || !strings.Contains(err.Error(), "CAPABILITY_NAMED_IAM") {
		t.Fatalf("err = %v", err)
	}
	// The failed change set and the empty stack it made are cleaned up.
	if !f.called("DeleteChangeSet") || f.form("DeleteStack").Get("StackName") != stackID {
		t.Errorf("calls = %v", f.actions())
	}
}

func TestDiscardCreate(t *testing.T) {
	f := newFake(t)
	f.changes = []string{resourceChange("Add", "ArtifactBucket", "", "AWS::S3::Bucket", "")}
	d := f.deployer(nil)
	ctx := context.Background()
	p, err := d.Plan(ctx, dataStack)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Discard(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got := f.form("DeleteChangeSet").Get("ChangeSetName"); got != changeSetID {
		t.Errorf("DeleteChangeSet = %q", got)
	}
	if got := f.form("DeleteStack").Get("StackName"); got != stackID {
		t.Errorf("DeleteStack = %q, want the REVIEW_IN_PROGRESS stack", got)
	}

	// Discarding an update plan leaves the stack alone.
	f2 := newFake(t)
	f2.status = "UPDATE_COMPLETE"
	d2 := f2.deployer(nil)
	p2, err := d2.Plan(ctx, dataStack)
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Discard(ctx, p2); err != nil {
		t.Fatal(err)
	}
	if f2.called("DeleteStack") || !f2.called("DeleteChangeSet") {
		t.Errorf("calls = %v", f2.actions())
	}
}

func TestDrift(t *testing.T) {
	f := newFake(t)
	f.status = "UPDATE_COMPLETE"
	f.driftStatus = []string{"DETECTION_IN_PROGRESS", "DETECTION_COMPLETE"}
	f.drifts = []string{
		resourceDriftXML("BucketParameter", "/berth/data/bucket", "AWS::SSM::Parameter", "IN_SYNC"),
		resourceDriftXML("ArtifactBucket", "berth-artifacts-123", "AWS::S3::Bucket", "MODIFIED",
			[4]string{"/VersioningConfiguration/Status", "Enabled", "Suspended", "NOT_EQUAL"},
			[4]string{"/Tags/1", `{"Key":"owner","Value":"platform"}`, "", "REMOVE"}),
		resourceDriftXML("WriterPolicy", "arn:aws:iam::123456789012:policy/berth-writer", "AWS::IAM::ManagedPolicy", "IN_SYNC"),
		resourceDriftXML("EncryptionKey", "", "AWS::KMS::Key", "DELETED"),
		resourceDriftXML("Alarm", "berth-alarm", "AWS::CloudWatch::Alarm", "NOT_CHECKED"),
	}
	d := f.deployer(nil)
	r, err := d.Drift(context.Background(), "berth-data")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "DRIFTED" || r.Drifted != 2 || len(r.Resources) != 5 || r.DetectionStatus != "DETECTION_COMPLETE" {
		t.Fatalf("report = %+v", r)
	}
	var bucket ResourceDrift
	for _, rd := range r.Resources {
		if rd.LogicalID == "ArtifactBucket" {
			bucket = rd
		}
	}
	want := PropertyDifference{Path: "/VersioningConfiguration/Status", Expected: "Enabled", Actual: "Suspended", Type: "NOT_EQUAL"}
	if bucket.Status != "MODIFIED" || len(bucket.Differences) != 2 || bucket.Differences[0] != want {
		t.Errorf("bucket = %+v", bucket)
	}
	if got := f.form("DescribeStackDriftDetectionStatus").Get("StackDriftDetectionId"); got != "drift-1" {
		t.Errorf("StackDriftDetectionId = %q", got)
	}
	var out bytes.Buffer
	if err := FormatDrift(&out, r); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "drift.txt", out.Bytes())
}

func TestDeleteRetained(t *testing.T) {
	f := newFake(t)
	f.status = "UPDATE_COMPLETE"
	f.addEvents(evt{status: "UPDATE_COMPLETE"})
	f.steps = []step{
		{status: "DELETE_IN_PROGRESS", events: []evt{
			{status: "DELETE_IN_PROGRESS", reason: "User Initiated"},
			{logical: "ArtifactBucket", typ: "AWS::S3::Bucket", status: "DELETE_SKIPPED", physical: "berth-artifacts-123"},
			{logical: "BucketParameter", typ: "AWS::SSM::Parameter", status: "DELETE_IN_PROGRESS", physical: "/berth/data/bucket"},
		}},
		{status: "DELETE_COMPLETE", events: []evt{
			{logical: "BucketParameter", typ: "AWS::SSM::Parameter", status: "DELETE_COMPLETE", physical: "/berth/data/bucket"},
			{status: "DELETE_COMPLETE"},
		}},
	}
	var events strings.Builder
	d := f.deployer(&events)
	res, err := d.Delete(context.Background(), "berth-data", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Resource{{LogicalID: "ArtifactBucket", PhysicalID: "berth-artifacts-123", Type: "AWS::S3::Bucket"}}
	if res.NotFound || !reflect.DeepEqual(res.Retained, want) {
		t.Errorf("result = %+v", res)
	}
	if got := f.form("DeleteStack"); got.Get("StackName") != stackID || got.Get("RetainResources.member.1") != "" {
		t.Errorf("DeleteStack form = %v", got)
	}
	if !strings.Contains(events.String(), "DELETE_SKIPPED") {
		t.Errorf("events:\n%s", events.String())
	}
}

func TestDeleteRefusesRetainOutsideDeleteFailed(t *testing.T) {
	f := newFake(t)
	f.status = "UPDATE_COMPLETE"
	d := f.deployer(nil)
	_, err := d.Delete(context.Background(), "berth-data", []string{"ArtifactBucket"})
	if err == nil || !strings.Contains(err.Error(), "DeletionPolicy") {
		t.Fatalf("err = %v", err)
	}
	if f.called("DeleteStack") {
		t.Error("DeleteStack was called")
	}

	f.status = "DELETE_FAILED"
	f.steps = []step{{status: "DELETE_COMPLETE", events: []evt{
		{logical: "ArtifactBucket", typ: "AWS::S3::Bucket", status: "DELETE_SKIPPED", physical: "berth-artifacts-123"},
		{status: "DELETE_COMPLETE"},
	}}}
	res, err := d.Delete(context.Background(), "berth-data", []string{"ArtifactBucket"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.form("DeleteStack").Get("RetainResources.member.1"); got != "ArtifactBucket" {
		t.Errorf("RetainResources = %q", got)
	}
	if len(res.Retained) != 1 {
		t.Errorf("retained = %+v", res.Retained)
	}
}

func TestDeleteMissingStack(t *testing.T) {
	f := newFake(t)
	d := f.deployer(nil)
	res, err := d.Delete(context.Background(), "berth-data", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.NotFound || f.called("DeleteStack") {
		t.Errorf("result = %+v, calls = %v", res, f.actions())
	}
}

func TestStatus(t *testing.T) {
	f := newFake(t)
	d := f.deployer(nil)
	ctx := context.Background()

	_, err := d.Status(ctx, "berth-data")
	if !errors.Is(err, ErrStackNotFound) || !errors.Is(err, errkind.NotFound) || errors.Is(err, errkind.Invalid) {
		t.Fatalf("err = %v, want ErrStackNotFound", err)
	}
	if !strings.Contains(err.Error(), "berth-data") || !strings.Contains(err.Error(), "eu-west-1") {
		t.Errorf("error %q does not name the stack and region", err)
	}

	f.status = "UPDATE_COMPLETE"
	f.outputs = map[string]string{"BucketName": "b"}
	info, err := d.Status(ctx, "berth-data")
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != "UPDATE_COMPLETE" || info.ID != stackID || info.Outputs["BucketName"] != "b" ||
		info.Parameters["Qualifier"] != "main" || info.Tags["berth:stack"] != "data" || !info.Created.Equal(epoch) || info.LastUpdated != nil {
		t.Errorf("info = %+v", info)
	}
}

func TestAWSErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		code   string
		kind   error
	}{
		{"access denied", 403, "AccessDenied", errkind.PermissionDenied},
		{"throttled", 400, "Throttling", errkind.Unavailable},
		{"expired token", 403, "ExpiredToken", errkind.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.handlers["DescribeStacks"] = func(url.Values) reply {
				return errReply(tc.status, tc.code, "User: arn:aws:sts::123456789012:assumed-role/dev/x is not authorized to perform: cloudformation:DescribeStacks")
			}
			d := f.deployer(nil)
			_, err := d.Plan(context.Background(), dataStack)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), "plan stack berth-data in eu-west-1") {
				t.Errorf("error %q does not name the stack and region", err)
			}
			if f.called("CreateChangeSet") {
				t.Error("CreateChangeSet was called")
			}
		})
	}
}

func TestWaitCancelled(t *testing.T) {
	f := newFake(t)
	f.status = "UPDATE_COMPLETE"
	f.changes = []string{resourceChange("Add", "ReaderPolicy", "", "AWS::IAM::ManagedPolicy", "")}
	f.steps = []step{{status: "UPDATE_IN_PROGRESS", events: []evt{{status: "UPDATE_IN_PROGRESS"}}}}
	d := f.deployer(nil)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := d.Plan(ctx, dataStack)
	if err != nil {
		t.Fatal(err)
	}
	f.handlers["DescribeStackEvents"] = func(v url.Values) reply {
		if f.running {
			cancel() // the user pressed ^C while the update runs
		}
		return f.defaults("DescribeStackEvents")(v)
	}
	_, err = d.Apply(ctx, p)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "continues in CloudFormation") {
		t.Fatalf("err = %v", err)
	}
}

func TestProgressLine(t *testing.T) {
	f := newFake(t)
	f.status = "UPDATE_COMPLETE"
	f.steps = []step{
		{status: "UPDATE_IN_PROGRESS", events: []evt{{status: "UPDATE_IN_PROGRESS"}}},
		{status: "UPDATE_IN_PROGRESS"},
		{status: "UPDATE_COMPLETE", events: []evt{{status: "UPDATE_COMPLETE"}}},
	}
	var events strings.Builder
	d := f.deployer(&events)
	d.ProgressEvery = time.Nanosecond // every quiet poll
	p, err := d.Plan(context.Background(), dataStack)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(events.String(), "stack berth-data in eu-west-1: UPDATE_IN_PROGRESS, ") || !strings.Contains(events.String(), " elapsed\n") {
		t.Errorf("no progress line in:\n%s", events.String())
	}
}

// DeleteChangeSet deletes only the change set, even of a CREATE plan whose
// stack is still in review, and takes a change set already gone (deleted,
// or removed when another one ran) as done; other errors are reported.
func TestDeleteChangeSet(t *testing.T) {
	tests := []struct {
		name    string
		reply   reply
		wantErr string
	}{
		{"deleted", reply{}, ""},
		{"already gone", errReply(404, "ChangeSetNotFound", "ChangeSet [x] does not exist"), ""},
		{"refused", errReply(403, "AccessDenied", "not allowed to cloudformation:DeleteChangeSet"), "AccessDenied"},
	}
	for _, tt := range tests {
		f := newFake(t)
		f.status = "REVIEW_IN_PROGRESS"
		f.handlers["DeleteChangeSet"] = func(url.Values) reply { return tt.reply }
		d := f.deployer(nil)
		err := d.DeleteChangeSet(context.Background(), &Plan{Stack: "berth-data", ChangeSetID: changeSetID, Type: "CREATE"})
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.wantErr)
		}
		if got := f.actions(); len(got) != 1 || got[0] != "DeleteChangeSet" {
			t.Errorf("%s: calls %v, want only DeleteChangeSet", tt.name, got)
		}
	}
}
