package web_test

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/internal/awsx"
)

const (
	hubPrincipal = "arn:aws:iam::999988887777:role/berth-hub"
	awsAccount   = "123456789012"
)

// awsScenario connects an AWS data plane of two regions in the browser,
// with AWS at the wire (awsfake) and the hub on the database at dbURL: the
// bootstrap instructions, a check, a plan that replaces a key in us-east-1
// (deployed already) approved in the browser, and a deploy that fails in
// eu-west-1, its events and reason shown; then a status job (each region's
// stack state and outputs) and a drift job (a drifted bucket's properties,
// and the in-sync region's empty state). A worker runs each job when the
// test says, so the job pages are seen queued and then updated in place by
// ui.js.
func awsScenario(t *testing.T, b *tab, dbURL string) {
	fake := awsfake.New(t)
	fake.Setenv(t, "eu-west-1")
	s, srv := startHub(t, dbURL)
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
		return awsfake.JSON(map[string]any{"Parameter": map[string]any{"Name": r.JSON["Name"], "Value": strconv.Itoa(cfn.BootstrapVersion), "Type": "String", "Version": 1}})
	})
	reason := "berth-hub-reader-eu-west-1 already exists in stack arn:aws:cloudformation:eu-west-1:123456789012:stack/other/1"
	// A value long enough to need wrapping at 390 px.
	policy := `{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*",` +
		`"Resource":["arn:aws:s3:::berth-artifacts-123456789012-eu-west-1","arn:aws:s3:::berth-artifacts-123456789012-eu-west-1/*"],` +
		`"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
	fake.AddStack("us-east-1", &awsfake.Stack{Name: "berth-dataplane", Status: "CREATE_COMPLETE",
		Changes: []string{awsfake.ResourceChange("Modify", "ArtifactKey", "1234abcd-12ab-34cd-56ef-1234567890ab", "AWS::KMS::Key", "True",
			awsfake.ChangeDetail("KeySpec", "Always", "DirectModification", "SYMMETRIC_DEFAULT", "HMAC_256"))},
		Outputs: map[string]string{"ArtifactBucket": "berth-artifacts-123456789012-us-east-1"},
		Drifts:  []string{awsfake.ResourceDrift("ArtifactBucket", "berth-artifacts-123456789012-us-east-1", "AWS::S3::Bucket", "IN_SYNC")}})
	fake.AddStack("eu-west-1", &awsfake.Stack{Name: "berth-dataplane", DriftStatus: "DRIFTED", Drifts: []string{
		awsfake.ResourceDrift("HubReaderRole", "berth-hub-reader-eu-west-1", "AWS::IAM::Role", "IN_SYNC"),
		awsfake.ResourceDrift("ArtifactBucket", "berth-artifacts-123456789012-eu-west-1", "AWS::S3::Bucket", "MODIFIED",
			[4]string{"/VersioningConfiguration/Status", "Enabled", "Suspended", "NOT_EQUAL"}),
		awsfake.ResourceDrift("ArtifactBucketPolicy", "berth-artifacts-123456789012-eu-west-1", "AWS::S3::BucketPolicy", "MODIFIED",
			[4]string{"/PolicyDocument", policy, `{"Version":"2012-10-17","Statement":[]}`, "NOT_EQUAL"}),
	}, Changes: []string{
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
	b.fill(map[string]string{"#f-account_id": awsAccount, "#f-regions": "eu-west-1 us-east-1"})
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
	if got := b.text("main .warning"); !strings.Contains(got, "1 change(s) replace a resource") {
		t.Errorf("the plan does not warn of the replacement: %q", got)
	}
	replaced := eval[[]string](b, "[...document.querySelectorAll('main tbody tr')].filter(r => r.querySelector('td.bad')).map(r => r.innerText.replace(/\\s+/g, ' '))")
	if len(replaced) != 1 || !strings.Contains(replaced[0], "ArtifactKey") || !strings.Contains(replaced[0], "replaces") {
		t.Errorf("the replaced resource is not marked in the change table: %q", replaced)
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

	// Status: each region's stack, the failed one marked, with outputs.
	b.open("/dataplanes/prod")
	b.click("form[action$='/jobs']:nth-of-type(3) button")
	b.waitText("Status job")
	runJob()
	b.waitText("Status: succeeded")
	if got := b.text("section[aria-labelledby='status-eu-west-1'] dd.bad"); !strings.Contains(got, "ROLLBACK_COMPLETE") {
		t.Errorf("the rolled-back stack's state is not marked: %q in\n%s", got, b.text("main"))
	}
	if got := b.text("section[aria-labelledby='status-us-east-1'] tbody"); !strings.Contains(got, "ArtifactBucket") || !strings.Contains(got, "berth-artifacts-123456789012-us-east-1") {
		t.Errorf("the deployed stack's outputs: %q", got)
	}
	b.check("job-status")

	// Drift: drifted resources first, each property with its expected and
	// actual value; the region in sync says so.
	b.open("/dataplanes/prod")
	b.click("form[action$='/jobs']:nth-of-type(4) button")
	b.waitText("Drift job")
	runJob()
	b.waitText("Status: succeeded")
	rows := eval[[]string](b, "[...document.querySelectorAll(\"section[aria-labelledby='drift-eu-west-1'] table.drift tbody tr\")].map(r => r.innerText.replace(/\\s+/g, ' '))")
	if len(rows) != 3 || !strings.Contains(rows[0], "MODIFIED") || !strings.Contains(rows[1], "MODIFIED") || !strings.Contains(rows[2], "HubReaderRole") {
		t.Errorf("the resources of the drifted stack, drifted first: %q", rows)
	}
	diffs := eval[[][]string](b, "[...document.querySelectorAll('section[aria-labelledby=drift-eu-west-1] table.diffs tbody tr')].map(r => [...r.cells].map(c => c.innerText))")
	want := map[string][]string{"/VersioningConfiguration/Status": {"/VersioningConfiguration/Status", "Enabled", "Suspended", "changed"},
		"/PolicyDocument": {"/PolicyDocument", policy, `{"Version":"2012-10-17","Statement":[]}`, "changed"}}
	for _, row := range diffs {
		if w, ok := want[row[0]]; ok && strings.Join(row, "|") == strings.Join(w, "|") {
			delete(want, row[0])
		}
	}
	if len(want) > 0 {
		t.Errorf("property differences %q lack %q", diffs, want)
	}
	if got := b.text("section[aria-labelledby='drift-us-east-1']"); !strings.Contains(got, "No drift: every resource of the stack matches its template") {
		t.Errorf("the region in sync: %q", got)
	}
	b.do("resize", chromedp.EmulateViewport(390, 900))
	if w := eval[[]int](b, "[...document.querySelectorAll('table.diffs, table.drift')].map(t => t.parentElement.scrollWidth - t.parentElement.clientWidth)"); len(w) != 4 || slices.Max(w) > 0 {
		t.Errorf("at 390 px the drift tables scroll sideways by %v px: long values do not wrap", w)
	}
	b.check("job-drift")

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
