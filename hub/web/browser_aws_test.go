package web_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/internal/awsx"
)

const (
	hubPrincipal = "arn:aws:iam::999988887777:role/berth-hub"
	awsAccount   = "123456789012"
)

// awsScenario connects an AWS data plane in the browser, with AWS at the
// wire (awsfake): the bootstrap instructions, a check, a plan approved in
// the browser and a deploy that fails, its events and reason shown. A
// worker runs each job when the test says, so the job pages are seen
// queued and then updated in place by ui.js.
func awsScenario(t *testing.T, b *tab) {
	fake := awsfake.New(t)
	fake.Setenv(t, "eu-west-1")
	s, srv := startHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	cfg, err := awsx.Load(context.Background(), awsx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.AWS, s.AWSPrincipal = cfg, hubPrincipal
	b.base = srv.URL
	worker := &hub.Worker{Server: s, ID: "worker-1", StackPoll: time.Millisecond}
	externalID := ""
	fake.Handle("sts", "AssumeRole", func(r *awsfake.Request) awsfake.Response {
		if strings.Contains(r.Form.Get("RoleArn"), ":"+awsAccount+":") && (externalID == "" || r.Form.Get("ExternalId") != externalID) {
			return awsfake.QueryError(403, "AccessDenied", "not authorized to perform: sts:AssumeRole")
		}
		return awsfake.AssumeRole()(r)
	})
	fake.Handle("sts", "GetCallerIdentity", awsfake.CallerIdentity(awsAccount, "arn:aws:sts::"+awsAccount+":assumed-role/berth-provisioner/berth-hub"))
	fake.Handle("ssm", "GetParameter", func(r *awsfake.Request) awsfake.Response {
		if r.JSON["Name"] != "/berth-bootstrap/berth/version" {
			return awsfake.JSONError(400, "ParameterNotFound", "")
		}
		return awsfake.JSON(map[string]any{"Parameter": map[string]any{"Name": r.JSON["Name"], "Value": "3", "Type": "String", "Version": 1}})
	})
	reason := "berth-hub-reader-eu-west-1 already exists in stack arn:aws:cloudformation:eu-west-1:123456789012:stack/other/1"
	fake.AddStack("eu-west-1", &awsfake.Stack{Name: "berth-dataplane", Changes: []string{
		awsfake.ResourceChange("Add", "ArtifactBucket", "", "AWS::S3::Bucket", ""),
		awsfake.ResourceChange("Add", "HubReaderRole", "", "AWS::IAM::Role", ""),
	}, Steps: []awsfake.Step{
		{Status: "CREATE_IN_PROGRESS", Events: []awsfake.Event{{Status: "CREATE_IN_PROGRESS", Reason: "User Initiated"}}},
		{Status: "ROLLBACK_IN_PROGRESS", Events: []awsfake.Event{
			{Logical: "HubReaderRole", Type: "AWS::IAM::Role", Status: "CREATE_FAILED", Reason: reason},
			{Status: "ROLLBACK_IN_PROGRESS", Reason: "The following resource(s) failed to create: [HubReaderRole]. Rollback requested by user."}}},
		{Status: "ROLLBACK_COMPLETE", Events: []awsfake.Event{{Status: "ROLLBACK_COMPLETE"}}},
	}})
	runJob := func() {
		t.Helper()
		if ran, err := worker.RunOne(context.Background()); err != nil || !ran {
			t.Fatalf("run a job: ran %v, %v", ran, err)
		}
	}

	b.open("/setup?code=" + setupCode)
	b.fill(map[string]string{"#email": "ana@example.com"})
	b.click("form button[type=submit]")
	b.waitText("No projects yet")

	// The connect form: a wrong account ID shows beside its field.
	b.open("/dataplanes")
	b.click("a[href='/dataplanes/aws']")
	b.waitText("Connect an AWS account")
	b.fill(map[string]string{"#f-name": "prod", "#f-account_id": "12345", "#f-regions": "eu-west-1"})
	b.click("main form button[type=submit]")
	b.waitText("There is a problem")
	if b.attr("#f-account_id", "aria-invalid") != "true" || !strings.Contains(b.text("#f-account_id-error"), "12-digit") {
		t.Errorf("a wrong account ID is not shown on its field: %s", b.text("main"))
	}
	b.check("dataplane-aws-error")
	b.fill(map[string]string{"#f-account_id": awsAccount})
	b.click("main form button[type=submit]")
	b.waitText("Deploy the bootstrap in account " + awsAccount)
	command := b.text("pre code")
	externalID = regexp.MustCompile(`ExternalId=(\S+)`).FindStringSubmatch(command + " ")[1]
	if !strings.Contains(command, "aws cloudformation deploy --region eu-west-1") || !strings.Contains(command, "TrustPrincipal="+hubPrincipal) {
		t.Errorf("bootstrap command %q", command)
	}
	template := eval[string](b, "fetch(document.querySelector('a[href$=\"/bootstrap.yaml\"]').href).then(r => r.text())", chromedp.EvalAwaitPromise)
	if !strings.Contains(template, "ProvisionerRole") {
		t.Errorf("the bootstrap template download: %.200q", template)
	}
	b.check("dataplane-aws")

	// Check: queued, then updated in place when the worker has run it.
	b.click("form[action$='/jobs'] button")
	b.waitText("Status: queued")
	b.check("job-queued")
	runJob()
	b.waitText("Status: succeeded")
	if got := b.text("main tbody"); !strings.Contains(got, "bootstrap") || !strings.Contains(got, "passed") {
		t.Errorf("check results: %s", got)
	}
	if got := b.text(".events"); !strings.Contains(got, "acting as arn:aws:iam::"+awsAccount+":role/berth-provisioner") {
		t.Errorf("check events: %s", got)
	}
	b.check("job-check")

	// Plan, approve in the browser, deploy: the failure's reason is shown.
	b.open("/dataplanes/prod")
	b.click("form[action$='/jobs']:nth-of-type(2) button")
	b.waitText("Plan job")
	runJob()
	b.waitText("Approve and deploy these changes")
	if got := b.text("main"); !strings.Contains(got, "HubReaderRole") || !strings.Contains(got, "berth-dataplane in eu-west-1") {
		t.Errorf("plan page: %s", got)
	}
	b.check("job-plan")
	b.click("form[action$='/approve'] button")
	b.waitText("Deploy job")
	runJob()
	b.waitText("Status: failed")
	if got := b.text("main"); !strings.Contains(got, reason) || !strings.Contains(got, "CREATE_FAILED") || !strings.Contains(got, "eu-west-1: ") {
		t.Errorf("the failed deploy's page lacks its reason or events:\n%s", got)
	}
	b.check("job-deploy-failed")

	// The organisation requires its own data planes: the setting, and the
	// notice on the project form.
	b.open("/settings")
	b.check("settings")
	b.click("#f-enforce_own_dataplanes")
	b.click("main form button[type=submit]")
	b.waitText("Projects may now use only AWS data planes this hub deployed")
	if !eval[bool](b, "document.querySelector('#f-enforce_own_dataplanes').checked") {
		t.Error("the saved setting is not shown checked")
	}
	b.open("/projects")
	b.waitText("requires its own data planes")
	b.check("projects-enforced")
}
