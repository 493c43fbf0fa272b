package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/secrets"
	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/policy"
)

const (
	hubPrincipal = "arn:aws:iam::999988887777:role/berth-hub"
	awsAccount   = "123456789012"
)

// awsHub is a hub whose AWS calls go to a wire fake, with an admin
// signed in and a worker to run its jobs one at a time.
type awsHub struct {
	t      *testing.T
	fake   *awsfake.Server
	s      *hub.Server
	url    string
	admin  *client
	worker *hub.Worker
	// externalID is what the account's roles expect (AssumeRole answers
	// AccessDenied for any other); set by bootstrap.
	externalID string
}

func newBox(t testing.TB) *secrets.Box {
	kek, err := secrets.LoadOrCreateKeyFile(filepath.Join(t.TempDir(), "kek"))
	if err != nil {
		t.Fatal(err)
	}
	return &secrets.Box{KEKs: []secrets.KEK{kek}}
}

// awsConfig gives s the fake's AWS configuration and the hub principal.
func awsConfig(t *testing.T, s *hub.Server, box *secrets.Box) {
	cfg, err := awsx.Load(context.Background(), awsx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Secrets, s.AWS, s.AWSPrincipal = box, cfg, hubPrincipal
}

func newAWSHub(t *testing.T, dbURL string) *awsHub {
	h := &awsHub{t: t, fake: awsfake.New(t)}
	h.fake.Setenv(t, "eu-west-1")
	h.s = newServer(t, dbURL)
	awsConfig(t, h.s, newBox(t))
	srv := httptest.NewServer(h.s.Handler())
	t.Cleanup(srv.Close)
	h.url = srv.URL
	h.admin = setupAdmin(t, srv.URL)
	h.worker = &hub.Worker{Server: h.s, ID: "worker-1", StackPoll: time.Millisecond}
	h.fake.Handle("sts", "AssumeRole", h.assumeRole)
	h.fake.Handle("sts", "GetCallerIdentity", awsfake.CallerIdentity(awsAccount, "arn:aws:sts::"+awsAccount+":assumed-role/berth-provisioner/berth-hub"))
	h.fake.Handle("ssm", "GetParameter", func(r *awsfake.Request) awsfake.Response {
		if r.JSON["Name"] != "/berth-bootstrap/berth/version" {
			return awsfake.JSONError(400, "ParameterNotFound", "")
		}
		return awsfake.JSON(map[string]any{"Parameter": map[string]any{"Name": r.JSON["Name"], "Value": strconv.Itoa(cfn.BootstrapVersion), "Type": "String", "Version": 1}})
	})
	return h
}

func setupAdmin(t *testing.T, url string) *client {
	var setup struct {
		Token struct{ Token string } `json:"token"`
	}
	if code := (&client{t: t, url: url}).do("POST", "/api/v1/setup", `{"code":"0123456789abcdef0123456789abcdef","email":"admin@example.com"}`, &setup); code != 201 {
		t.Fatalf("setup: %d", code)
	}
	return &client{t: t, url: url, token: setup.Token.Token}
}

// assumeRole plays STS for roles of the data plane's account: the external
// ID must be the one the hub generated.
func (h *awsHub) assumeRole(r *awsfake.Request) awsfake.Response {
	if strings.Contains(r.Form.Get("RoleArn"), ":"+awsAccount+":") && (h.externalID == "" || r.Form.Get("ExternalId") != h.externalID) {
		return awsfake.QueryError(403, "AccessDenied", "User: "+hubPrincipal+" is not authorized to perform: sts:AssumeRole on resource: "+r.Form.Get("RoleArn"))
	}
	return awsfake.AssumeRole()(r)
}

// createDataPlane registers an AWS data plane and reads its bootstrap
// instructions, as the admin hands them to the account owner.
func (h *awsHub) createDataPlane(name string, regions ...string) map[string]any {
	h.t.Helper()
	b, _ := json.Marshal(map[string]any{"name": name, "kind": "aws", "account_id": awsAccount, "regions": regions})
	var created map[string]any
	var raw string
	if code := h.admin.do("POST", "/api/v1/dataplanes", string(b), &created); code != http.StatusCreated {
		h.admin.do("POST", "/api/v1/dataplanes", string(b), &raw)
		h.t.Fatalf("create data plane: %d %s", code, raw)
	}
	var boot struct {
		Parameters map[string]string `json:"parameters"`
		Template   string            `json:"template"`
		Command    string            `json:"command"`
		QuickNote  string            `json:"quick_create_note"`
	}
	if code := h.admin.do("GET", "/api/v1/dataplanes/"+name+"/bootstrap", "", &boot); code != 200 {
		h.t.Fatalf("bootstrap: %d", code)
	}
	h.externalID = boot.Parameters["ExternalId"]
	if !strings.HasPrefix(h.externalID, "berth-") || boot.Parameters["TrustPrincipal"] != hubPrincipal {
		h.t.Fatalf("bootstrap parameters %v", boot.Parameters)
	}
	for _, want := range []string{"aws cloudformation deploy --region " + regions[0] + " --stack-name berth-bootstrap", "TrustPrincipal=" + hubPrincipal, "ExternalId=" + h.externalID} {
		if !strings.Contains(boot.Command, want) {
			h.t.Errorf("bootstrap command %q lacks %q", boot.Command, want)
		}
	}
	if !strings.Contains(boot.Template, "ProvisionerRole") || !strings.Contains(boot.QuickNote, "--template-url") {
		h.t.Errorf("bootstrap template or quick-create note missing: %q", boot.QuickNote)
	}
	return created
}

type jobView struct {
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	Status    string          `json:"status"`
	Attempts  int             `json:"attempts"`
	Failure   string          `json:"failure"`
	Result    json.RawMessage `json:"result"`
	DeployJob int64           `json:"deploy_job"`
	Events    []struct {
		Message string `json:"message"`
	} `json:"events"`
}

func (j *jobView) events() string {
	var b strings.Builder
	for _, e := range j.Events {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}

func (h *awsHub) queue(dataplane, kind string) int64 {
	h.t.Helper()
	var out struct{ ID int64 }
	var msg string
	if code := h.admin.do("POST", "/api/v1/dataplanes/"+dataplane+"/jobs", `{"kind":"`+kind+`"}`, &out); code != http.StatusAccepted {
		h.admin.do("POST", "/api/v1/dataplanes/"+dataplane+"/jobs", `{"kind":"`+kind+`"}`, &msg)
		h.t.Fatalf("queue %s: %d %s", kind, code, msg)
	}
	return out.ID
}

// run runs the next job and returns it as the API shows it.
func (h *awsHub) run(id int64) *jobView {
	h.t.Helper()
	ran, err := h.worker.RunOne(context.Background())
	if err != nil || !ran {
		h.t.Fatalf("run job %d: ran %v, %v", id, ran, err)
	}
	return h.job(id)
}

func (h *awsHub) job(id int64) *jobView {
	h.t.Helper()
	var j jobView
	if code := h.admin.do("GET", "/api/v1/jobs/"+itoa(id), "", &j); code != 200 {
		h.t.Fatalf("get job %d: %d", id, code)
	}
	return &j
}

// dataPlaneStack is a data plane stack the next deploy creates in region.
func dataPlaneStack(fake *awsfake.Server, region string) *awsfake.Stack {
	st := &awsfake.Stack{Name: "berth-dataplane", Outputs: map[string]string{
		"BucketName": "berth-" + awsAccount + "-" + region,
		"KeyArn":     "arn:aws:kms:" + region + ":" + awsAccount + ":key/1234abcd",
	}, Changes: []string{
		awsfake.ResourceChange("Add", "ArtifactBucket", "", "AWS::S3::Bucket", ""),
		awsfake.ResourceChange("Add", "HubReaderRole", "", "AWS::IAM::Role", ""),
		awsfake.ResourceChange("Add", "HubWriterRole", "", "AWS::IAM::Role", ""),
	}, Steps: []awsfake.Step{
		{Status: "CREATE_IN_PROGRESS", Events: []awsfake.Event{{Status: "CREATE_IN_PROGRESS", Reason: "User Initiated"},
			{Logical: "ArtifactBucket", Type: "AWS::S3::Bucket", Status: "CREATE_IN_PROGRESS"}}},
		{Status: "CREATE_COMPLETE", Events: []awsfake.Event{{Logical: "ArtifactBucket", Type: "AWS::S3::Bucket", Status: "CREATE_COMPLETE"},
			{Status: "CREATE_COMPLETE"}}},
	}}
	fake.AddStack(region, st)
	return st
}

// deployDataPlane plans, approves and deploys, and returns the deploy job.
func (h *awsHub) deployDataPlane(name string) *jobView {
	h.t.Helper()
	plan := h.run(h.queue(name, "plan"))
	if plan.Status != "succeeded" {
		h.t.Fatalf("plan: %s %s", plan.Status, plan.Failure)
	}
	var approved struct {
		DeployJob int64 `json:"deploy_job"`
	}
	var msg string
	if code := h.admin.do("POST", "/api/v1/jobs/"+itoa(plan.ID)+"/approve", "", &approved); code != http.StatusAccepted {
		h.admin.do("POST", "/api/v1/jobs/"+itoa(plan.ID)+"/approve", "", &msg)
		h.t.Fatalf("approve: %d %s", code, msg)
	}
	return h.run(approved.DeployJob)
}

func TestAWSDataPlaneCheckPlanApproveDeploy(t *testing.T) {
	dbFile := filepath.Join(t.TempDir(), "hub.db")
	h := newAWSHub(t, "sqlite:"+dbFile)
	created := h.createDataPlane("prod", "eu-west-1", "us-east-1")
	eu, us := dataPlaneStack(h.fake, "eu-west-1"), dataPlaneStack(h.fake, "us-east-1")

	// The external ID is sealed: not in the create answer, the listing or
	// the database file.
	var list map[string]any
	if code := h.admin.do("GET", "/api/v1/dataplanes", "", &list); code != 200 {
		t.Fatalf("list: %d", code)
	}
	for what, v := range map[string]any{"create answer": created, "listing": list} {
		b, _ := json.Marshal(v)
		if strings.Contains(string(b), h.externalID) {
			t.Errorf("%s holds the external ID: %s", what, b)
		}
	}
	for _, p := range []string{dbFile, dbFile + "-wal"} {
		if b, _ := os.ReadFile(p); strings.Contains(string(b), h.externalID) {
			t.Errorf("%s holds the external ID in clear", p)
		}
	}

	check := h.run(h.queue("prod", "check"))
	if check.Status != "succeeded" || !strings.Contains(string(check.Result), `"field": "bootstrap"`) || !strings.Contains(check.events(), "acting as arn:aws:iam::"+awsAccount+":role/berth-provisioner") {
		t.Fatalf("check: %s %s %s\n%s", check.Status, check.Failure, check.Result, check.events())
	}
	as := h.fake.Called("sts", "AssumeRole")
	if len(as) != 1 || as[0].Form.Get("ExternalId") != h.externalID || as[0].AccessKeyID != awsfake.AccessKeyID {
		t.Errorf("check assumed %d times, external ID %q", len(as), as[0].Form.Get("ExternalId"))
	}

	var msg string
	if code := h.admin.do("POST", "/api/v1/dataplanes/prod/jobs", `{"kind":"deploy"}`, &msg); code != http.StatusBadRequest || !strings.Contains(msg, "approve") {
		t.Errorf("a deploy job without a plan: %d %s", code, msg)
	}

	// CloudFormation may echo a parameter in a change's details: the job
	// stores and shows it masked.
	eu.Changes[1] = awsfake.ResourceChange("Add", "HubReaderRole", "", "AWS::IAM::Role", "",
		awsfake.ChangeDetail("AssumeRolePolicyDocument", "Never", "DirectModification", "", `{"sts:ExternalId":"`+h.externalID+`"}`))
	plan := h.run(h.queue("prod", "plan"))
	if plan.Status != "succeeded" {
		t.Fatalf("plan: %s %s", plan.Status, plan.Failure)
	}
	if strings.Contains(string(plan.Result), h.externalID) || !strings.Contains(string(plan.Result), `ExternalId\":\"****`) {
		t.Errorf("plan result does not mask the external ID: %s", plan.Result)
	}
	var pr struct {
		Changes bool   `json:"changes"`
		Table   string `json:"table"`
	}
	json.Unmarshal(plan.Result, &pr)
	for _, want := range []string{"stack berth-dataplane in eu-west-1: create, 3 changes", "stack berth-dataplane in us-east-1: create, 3 changes", "HubWriterRole"} {
		if !strings.Contains(pr.Table, want) || !pr.Changes {
			t.Errorf("plan table lacks %q:\n%s", want, pr.Table)
		}
	}
	for _, st := range []*awsfake.Stack{eu, us} {
		if st.Parameters.Get("Parameters.member.1.ParameterKey") != "HubExternalId" || st.Parameters.Get("Parameters.member.1.ParameterValue") != h.externalID {
			t.Errorf("change set parameters %v", st.Parameters)
		}
		if !strings.Contains(st.Template, hubPrincipal) || !strings.Contains(st.Template, "berth-hub-writer-${AWS::Region}") {
			t.Errorf("template does not add the hub's roles")
		}
		if strings.Contains(st.Template, h.externalID) {
			t.Error("the template body holds the external ID")
		}
	}
	if n := len(h.fake.Called("cloudformation", "ExecuteChangeSet")); n != 0 {
		t.Fatalf("a plan executed %d change sets", n)
	}

	// Only an organisation admin approves.
	var member struct {
		Token struct{ Token string } `json:"token"`
	}
	if code := h.admin.do("POST", "/api/v1/users", `{"email":"dev@example.com"}`, &member); code != 201 {
		t.Fatalf("create user: %d", code)
	}
	dev := &client{t: t, url: h.url, token: member.Token.Token}
	if code := dev.do("POST", "/api/v1/jobs/"+itoa(plan.ID)+"/approve", "", &msg); code != http.StatusForbidden {
		t.Errorf("a member approved: %d %s", code, msg)
	}
	if code := dev.do("GET", "/api/v1/jobs/"+itoa(plan.ID), "", &msg); code != http.StatusForbidden {
		t.Errorf("a member read a job: %d %s", code, msg)
	}
	if code := h.admin.do("POST", "/api/v1/jobs/"+itoa(check.ID)+"/approve", "", &msg); code != http.StatusConflict {
		t.Errorf("approving a check: %d %s", code, msg)
	}
	var approved struct {
		DeployJob int64 `json:"deploy_job"`
	}
	if code := h.admin.do("POST", "/api/v1/jobs/"+itoa(plan.ID)+"/approve", "", &approved); code != http.StatusAccepted {
		t.Fatalf("approve: %d", code)
	}
	if code := h.admin.do("POST", "/api/v1/jobs/"+itoa(plan.ID)+"/approve", "", &msg); code != http.StatusConflict {
		t.Errorf("approved twice: %d %s", code, msg)
	}
	dep := h.run(approved.DeployJob)
	if dep.Status != "succeeded" {
		t.Fatalf("deploy: %s %s\n%s", dep.Status, dep.Failure, dep.events())
	}
	for _, want := range []string{"applying the change sets of plan job " + itoa(plan.ID), "eu-west-1: ", "us-east-1: ", "ArtifactBucket", "CREATE_COMPLETE"} {
		if !strings.Contains(dep.events(), want) {
			t.Errorf("deploy events lack %q:\n%s", want, dep.events())
		}
	}
	ex := h.fake.Called("cloudformation", "ExecuteChangeSet")
	if len(ex) != 2 {
		t.Errorf("%d change sets executed, want 2", len(ex))
	}
	if pj := h.job(plan.ID); pj.DeployJob != approved.DeployJob {
		t.Errorf("plan job names deploy job %d", pj.DeployJob)
	}
	var after struct {
		Dataplanes []struct {
			Own     bool `json:"own"`
			Buckets []struct{ Region, Name string }
		} `json:"dataplanes"`
	}
	h.admin.do("GET", "/api/v1/dataplanes", "", &after)
	if len(after.Dataplanes) != 1 || !after.Dataplanes[0].Own || len(after.Dataplanes[0].Buckets) != 2 || after.Dataplanes[0].Buckets[1].Name != "berth-"+awsAccount+"-us-east-1" {
		t.Errorf("after deploy: %+v", after)
	}

	var jobs struct {
		Jobs []struct {
			ID        int64  `json:"id"`
			Kind      string `json:"kind"`
			Status    string `json:"status"`
			DeployJob int64  `json:"deploy_job"`
		} `json:"jobs"`
	}
	if code := h.admin.do("GET", "/api/v1/dataplanes/prod/jobs", "", &jobs); code != 200 || len(jobs.Jobs) != 3 ||
		jobs.Jobs[0].ID != approved.DeployJob || jobs.Jobs[0].Kind != "deploy" || jobs.Jobs[1].DeployJob != approved.DeployJob || jobs.Jobs[2].Kind != "check" {
		t.Errorf("job list: %d %+v", code, jobs)
	}

	// Once deployed, a check also assumes the hub's roles of each region.
	before := len(h.fake.Called("sts", "AssumeRole"))
	recheck := h.run(h.queue("prod", "check"))
	if recheck.Status != "succeeded" || !strings.Contains(string(recheck.Result), "hub writer role in us-east-1") {
		t.Errorf("check after deploy: %s %s %s", recheck.Status, recheck.Failure, recheck.Result)
	}
	hubRoles := 0
	for _, c := range h.fake.Called("sts", "AssumeRole")[before:] {
		if strings.Contains(c.Form.Get("RoleArn"), ":role/berth-hub-") && c.Form.Get("ExternalId") == h.externalID && c.Form.Get("Policy") != "" {
			hubRoles++
		}
	}
	if hubRoles != 4 {
		t.Errorf("check assumed %d hub roles, want reader and writer in 2 regions", hubRoles)
	}

	status := h.run(h.queue("prod", "status"))
	if status.Status != "succeeded" || !strings.Contains(string(status.Result), `"deployed": true`) {
		t.Errorf("status: %s %s %s", status.Status, status.Failure, status.Result)
	}
	if as := h.fake.Called("sts", "AssumeRole"); !strings.HasSuffix(as[len(as)-1].Form.Get("RoleArn"), ":role/berth-ops") {
		t.Errorf("status assumed %s, want the ops role", as[len(as)-1].Form.Get("RoleArn"))
	}

	eu.DriftStatus = "DRIFTED"
	eu.Drifts = []string{awsfake.ResourceDrift("HubReaderRole", "berth-hub-reader-eu-west-1", "AWS::IAM::Role", "MODIFIED",
		[4]string{"MaxSessionDuration", "3600", "43200", "NOT_EQUAL"})}
	drift := h.run(h.queue("prod", "drift"))
	var dr struct {
		Table string `json:"table"`
	}
	json.Unmarshal(drift.Result, &dr)
	if drift.Status != "succeeded" || !strings.Contains(dr.Table, "HubReaderRole") || !strings.Contains(dr.Table, "43200") {
		t.Errorf("drift: %s %s\n%s", drift.Status, drift.Failure, dr.Table)
	}

	// With the template published, the instructions carry a quick-create
	// link with the parameters filled in.
	h.s.TemplateURL = "https://templates.s3.eu-west-1.amazonaws.com/berth-bootstrap.yaml"
	var boot struct {
		Link string `json:"quick_create_url"`
	}
	h.admin.do("GET", "/api/v1/dataplanes/prod/bootstrap", "", &boot)
	for _, want := range []string{"https://console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/quickcreate?",
		"templateURL=https%3A%2F%2Ftemplates.s3.eu-west-1.amazonaws.com%2Fberth-bootstrap.yaml", "stackName=berth-bootstrap",
		"param_ExternalId=" + h.externalID, "param_TrustPrincipal=arn%3Aaws%3Aiam%3A%3A999988887777%3Arole%2Fberth-hub"} {
		if !strings.Contains(boot.Link, want) {
			t.Errorf("quick-create link %q lacks %q", boot.Link, want)
		}
	}
}

func TestCheckTemplateURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://templates.s3.eu-west-1.amazonaws.com/berth-bootstrap.yaml": true,
		"https://s3.amazonaws.com/templates/berth/bootstrap.yaml":           true,
		"http://templates.s3.eu-west-1.amazonaws.com/berth-bootstrap.yaml":  false,
		"https://example.com/berth-bootstrap.yaml":                          false,
		"https://templates.s3.eu-west-1.amazonaws.com/":                     false,
		"not a url": false,
	} {
		if err := hub.CheckTemplateURL(u); (err == nil) != ok {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// Requests that are wrong are refused with what to fix, and nothing is
// stored.
func TestAWSDataPlaneBadInput(t *testing.T) {
	h := newAWSHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{`{"name":"p","kind":"aws","account_id":"12345","regions":["eu-west-1"]}`, 400, "account_id \"12345\": want the 12-digit ID"},
		{`{"name":"p","kind":"aws","account_id":"123456789012","regions":[]}`, 400, "regions"},
		{`{"name":"p","kind":"aws","account_id":"123456789012","regions":["eu-west-1","eu-west-1"]}`, 400, "listed twice"},
		{`{"name":"p","kind":"aws","account_id":"123456789012","regions":["mars-1"]}`, 400, "not an AWS region"},
		{`{"name":"p","kind":"aws","account_id":"123456789012","regions":["eu-west-1"],"qualifier":"Bad_Q"}`, 400, "qualifier"},
		{`{"name":"P!","kind":"aws","account_id":"123456789012","regions":["eu-west-1"]}`, 400, "data plane name \"P!\""},
		{`{"name":"p","kind":"aws","account_id":"123456789012","regions":["eu-west-1"],"external_id":"mine"}`, 400, "unknown field"},
	} {
		var msg string
		if code := h.admin.do("POST", "/api/v1/dataplanes", c.body, &msg); code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.body, code, msg, c.code, c.want)
		}
	}
	var list struct {
		Dataplanes []any `json:"dataplanes"`
	}
	if h.admin.do("GET", "/api/v1/dataplanes", "", &list); len(list.Dataplanes) != 0 {
		t.Errorf("bad requests stored %d data planes", len(list.Dataplanes))
	}
	h.s.AWSPrincipal = ""
	var msg string
	if code := h.admin.do("POST", "/api/v1/dataplanes", `{"name":"p","kind":"aws","account_id":"123456789012","regions":["eu-west-1"]}`, &msg); code != 409 || !strings.Contains(msg, "--aws-principal") {
		t.Errorf("without a hub principal: %d %s", code, msg)
	}
	h.s.AWSPrincipal = hubPrincipal
	h.createDataPlane("prod", "eu-west-1")
	for _, kind := range []string{"", "destroy"} {
		if code := h.admin.do("POST", "/api/v1/dataplanes/prod/jobs", `{"kind":"`+kind+`"}`, &msg); code != 400 || !strings.Contains(msg, "use check, plan, status or drift") {
			t.Errorf("job kind %q: %d %s", kind, code, msg)
		}
	}
	if code := h.admin.do("POST", "/api/v1/dataplanes/nope/jobs", `{"kind":"check"}`, &msg); code != 404 {
		t.Errorf("job on a missing data plane: %d %s", code, msg)
	}
	if code := h.admin.do("GET", "/api/v1/jobs/999", "", &msg); code != 404 {
		t.Errorf("missing job: %d %s", code, msg)
	}
	if code := h.admin.do("GET", "/api/v1/jobs/x", "", &msg); code != 400 {
		t.Errorf("job id x: %d %s", code, msg)
	}
}

// A check whose AssumeRole is refused fails with a reason saying what to
// fix: a wrong (or rotated-away) external ID, or the hub's own expired
// credentials.
func TestAWSCheckRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		sts    awsfake.Handler
		wants  []string
		absent string
	}{
		{"wrong external ID", nil, []string{"AccessDenied", "the external ID may be wrong", "role/berth-provisioner", "GET /api/v1/dataplanes/prod/bootstrap"}, ""},
		{"expired hub credentials", awsfake.Error(403, "ExpiredToken", "The security token included in the request is expired"),
			[]string{"ExpiredToken", "have expired"}, "bootstrap"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newAWSHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
			h.createDataPlane("prod", "eu-west-1")
			h.externalID = "berth-an-older-external-id" // what the account's roles were deployed with
			if c.sts != nil {
				h.fake.Handle("sts", "AssumeRole", c.sts)
			}
			j := h.run(h.queue("prod", "check"))
			if j.Status != "failed" {
				t.Fatalf("check: %s", j.Status)
			}
			for _, want := range c.wants {
				if !strings.Contains(j.Failure, want) {
					t.Errorf("failure %q lacks %q", j.Failure, want)
				}
			}
			if c.absent != "" && strings.Contains(j.Failure, c.absent) {
				t.Errorf("failure %q mentions %q", j.Failure, c.absent)
			}
			if !strings.Contains(j.events(), "failed: ") {
				t.Errorf("events:\n%s", j.events())
			}
		})
	}
}

func TestAWSDeployFailureReportsRollbackReason(t *testing.T) {
	h := newAWSHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	h.createDataPlane("prod", "eu-west-1")
	reason := "berth-hub-reader-eu-west-1 already exists in stack arn:aws:cloudformation:eu-west-1:123456789012:stack/other/1"
	st := dataPlaneStack(h.fake, "eu-west-1")
	st.Steps = []awsfake.Step{
		{Status: "CREATE_IN_PROGRESS", Events: []awsfake.Event{{Status: "CREATE_IN_PROGRESS", Reason: "User Initiated"}}},
		{Status: "ROLLBACK_IN_PROGRESS", Events: []awsfake.Event{
			{Logical: "HubReaderRole", Type: "AWS::IAM::Role", Status: "CREATE_FAILED", Reason: reason},
			{Status: "ROLLBACK_IN_PROGRESS", Reason: "The following resource(s) failed to create: [HubReaderRole]. Rollback requested by user."}}},
		{Status: "ROLLBACK_COMPLETE", Events: []awsfake.Event{{Status: "ROLLBACK_COMPLETE"}}},
	}
	dep := h.deployDataPlane("prod")
	if dep.Status != "failed" {
		t.Fatalf("deploy: %s", dep.Status)
	}
	want := "HubReaderRole (AWS::IAM::Role) CREATE_FAILED: " + reason + "; stack is ROLLBACK_COMPLETE"
	if !strings.Contains(dep.Failure, want) {
		t.Errorf("failure %q lacks %q", dep.Failure, want)
	}
	var res struct {
		Failed []struct {
			Status   string `json:"status"`
			Region   string `json:"region"`
			Resource struct {
				LogicalID string `json:"logical_id"`
				Reason    string `json:"reason"`
			} `json:"resource"`
		} `json:"failed"`
	}
	if err := json.Unmarshal(dep.Result, &res); err != nil || len(res.Failed) != 1 || res.Failed[0].Resource.Reason != reason ||
		res.Failed[0].Status != "ROLLBACK_COMPLETE" || res.Failed[0].Region != "eu-west-1" {
		t.Errorf("result %s (%v)", dep.Result, err)
	}
	if !strings.Contains(dep.events(), "eu-west-1: ") || !strings.Contains(dep.events(), "CREATE_FAILED") {
		t.Errorf("events:\n%s", dep.events())
	}
	var list struct {
		Dataplanes []struct{ Own bool } `json:"dataplanes"`
	}
	h.admin.do("GET", "/api/v1/dataplanes", "", &list)
	if list.Dataplanes[0].Own {
		t.Error("a failed deploy made the data plane the organisation's own")
	}
}

func TestAWSVendedCredentials(t *testing.T) {
	h := newAWSHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	h.createDataPlane("prod", "eu-west-1", "us-east-1")
	dataPlaneStack(h.fake, "eu-west-1")
	dataPlaneStack(h.fake, "us-east-1")
	var msg string
	name := "a-project-with-a-rather-long-name-to-test-the-policy-size-64ch"
	if code := h.admin.do("POST", "/api/v1/projects", `{"name":"`+name+`","dataplane":"prod"}`, &msg); code != http.StatusCreated {
		t.Fatalf("create project: %d %s", code, msg)
	}
	if code := h.admin.do("POST", "/api/v1/projects/"+name+"/credentials", `{"role":"write"}`, &msg); code != http.StatusConflict || !strings.Contains(msg, "deploy it") {
		t.Errorf("credentials before a deploy: %d %s", code, msg)
	}
	if code := h.admin.do("GET", "/api/v1/projects/"+name+"/versions/1.0.0/download?file=a.bin", "", &msg); code != http.StatusConflict || !strings.Contains(msg, "deploy it") {
		t.Errorf("download link before a deploy: %d %s", code, msg)
	}
	if dep := h.deployDataPlane("prod"); dep.Status != "succeeded" {
		t.Fatalf("deploy: %s", dep.Failure)
	}
	before := len(h.fake.Called("sts", "AssumeRole"))
	var creds struct {
		Regions []struct {
			Region, Bucket string
			AccessKeyID    string `json:"access_key_id"`
			SessionToken   string `json:"session_token"`
		} `json:"regions"`
	}
	if code := h.admin.do("POST", "/api/v1/projects/"+name+"/credentials", `{"role":"write"}`, &creds); code != 200 {
		t.Fatalf("credentials: %d", code)
	}
	calls := h.fake.Called("sts", "AssumeRole")[before:]
	if len(calls) != 2 || len(creds.Regions) != 2 || creds.Regions[1].Bucket != "berth-"+awsAccount+"-us-east-1" || creds.Regions[0].AccessKeyID != awsfake.AssumedKeyID {
		t.Fatalf("%d AssumeRole calls, answer %+v", len(calls), creds)
	}
	for i, region := range []string{"eu-west-1", "us-east-1"} {
		f := calls[i].Form
		if f.Get("RoleArn") != "arn:aws:iam::"+awsAccount+":role/berth-hub-writer-"+region || f.Get("ExternalId") != h.externalID {
			t.Errorf("AssumeRole %s with external ID %q", f.Get("RoleArn"), f.Get("ExternalId"))
		}
		if d, err := strconv.Atoi(f.Get("DurationSeconds")); err != nil || d < 900 || d > 3600 {
			t.Errorf("DurationSeconds %d, want at most 3600", d)
		}
		pol := f.Get("Policy")
		if len(pol) == 0 || len(pol) > policy.MaxSessionPolicyLen {
			t.Errorf("session policy of %d characters", len(pol))
		}
		if _, err := policy.Parse([]byte(pol)); err != nil || !strings.Contains(pol, "berth-"+awsAccount+"-"+region+"/"+name+"/*") {
			t.Errorf("session policy %s (%v)", pol, err)
		}
	}

	// A download link: the hub reads the manifest and signs the link with
	// a reader session of the hub's reader role, not its own credentials.
	bucket := "berth-" + awsAccount + "-eu-west-1"
	manifest := fmt.Sprintf(`{"format":1,"project":%q,"version":"1.0.0","size":5,"sha256":%q,"metadata":{},"filename":"app.tgz","created":"2026-01-02T10:00:00Z","staged_by":"ci","object":%q}`,
		name, strings.Repeat("ab", 32), name+"/1.0.0/data/20260102T100000Z-0001")
	h.fake.Handle("s3", "GET /"+bucket, func(r *awsfake.Request) awsfake.Response {
		return awsfake.Response{Header: http.Header{"Content-Type": {"application/xml"}}, Body: `<ListBucketResult><Name>` + bucket + `</Name><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>` +
			`<Contents><Key>` + name + `/1.0.0/manifest.json</Key><Size>300</Size><LastModified>2026-01-02T10:00:00.000Z</LastModified></Contents></ListBucketResult>`}
	})
	h.fake.Handle("s3", "GET /"+bucket+"/"+name+"/1.0.0/manifest.json", func(*awsfake.Request) awsfake.Response {
		return awsfake.Response{Header: http.Header{"Content-Type": {"application/json"}}, Body: manifest}
	})
	for _, pointer := range []string{"/latest.json", "/prerelease/latest.json"} {
		h.fake.Handle("s3", "GET /"+bucket+"/"+name+pointer, func(*awsfake.Request) awsfake.Response {
			return awsfake.Response{Status: 404, Header: http.Header{"Content-Type": {"application/xml"}}, Body: `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`}
		})
	}
	before = len(h.fake.Called("sts", "AssumeRole"))
	var link struct{ URL, Region string }
	if code := h.admin.do("GET", "/api/v1/projects/"+name+"/versions/1.0.0/download?file=app.tgz", "", &link); code != 200 {
		t.Fatalf("download link: %d", code)
	}
	u, _ := url.Parse(link.URL)
	if link.Region != "eu-west-1" || u.Path != "/"+bucket+"/"+name+"/1.0.0/data/20260102T100000Z-0001" ||
		!strings.HasPrefix(u.Query().Get("X-Amz-Credential"), awsfake.AssumedKeyID+"/") || u.Query().Get("X-Amz-Security-Token") != "assumedTOKEN" || u.Query().Get("X-Amz-Expires") == "" {
		t.Errorf("link %s", link.URL)
	}
	for _, c := range h.fake.Called("sts", "AssumeRole")[before:] {
		if !strings.Contains(c.Form.Get("RoleArn"), ":role/berth-hub-reader-") || c.Form.Get("ExternalId") != h.externalID {
			t.Errorf("download link assumed %s", c.Form.Get("RoleArn"))
		}
	}

	// The versions of a project on an AWS data plane, listed and paged
	// through the same reader sessions.
	us := "berth-" + awsAccount + "-us-east-1"
	h.fake.Handle("s3", "GET /"+us, func(r *awsfake.Request) awsfake.Response {
		return awsfake.Response{Header: http.Header{"Content-Type": {"application/xml"}}, Body: `<ListBucketResult><Name>` + us + `</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`}
	})
	for _, pointer := range []string{"/latest.json", "/prerelease/latest.json"} {
		h.fake.Handle("s3", "GET /"+us+"/"+name+pointer, func(*awsfake.Request) awsfake.Response {
			return awsfake.Response{Status: 404, Header: http.Header{"Content-Type": {"application/xml"}}, Body: `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`}
		})
	}
	for _, q := range []string{"", "?limit=10&order=newest"} {
		var list struct {
			Versions []struct {
				Version string   `json:"version"`
				Regions []string `json:"regions"`
			} `json:"versions"`
			Warning string `json:"warning"`
		}
		if code := h.admin.do("GET", "/api/v1/projects/"+name+"/versions"+q, "", &list); code != 200 || list.Warning != "" ||
			len(list.Versions) != 1 || list.Versions[0].Version != "1.0.0" || strings.Join(list.Versions[0].Regions, ",") != "eu-west-1" {
			t.Errorf("versions%s on an AWS data plane: %d %+v", q, code, list)
		}
	}
	for _, c := range h.fake.Calls() {
		if c.Service == "s3" && c.AccessKeyID != awsfake.AssumedKeyID {
			t.Errorf("S3 %s signed with %s, not a vended session", c.Action, c.AccessKeyID)
		}
	}
}

func TestEnforceOwnDataPlanes(t *testing.T) {
	h := newAWSHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	h.createDataPlane("prod", "eu-west-1")
	dataPlaneStack(h.fake, "eu-west-1")
	// An S3-compatible data plane with pasted keys; the fake plays its STS.
	pasted, _ := json.Marshal(map[string]any{"name": "pasted", "kind": "s3compat", "endpoints": []string{"local=" + h.fake.URL}, "bucket": "shared", "prefix": "rel",
		"writer": map[string]string{"access_key_id": "AKIAWRITER", "secret_access_key": "writer-secret-0000000000"},
		"reader": map[string]string{"access_key_id": "AKIAREADER", "secret_access_key": "reader-secret-0000000000"}})
	var msg string
	if code := h.admin.do("POST", "/api/v1/dataplanes", string(pasted), &msg); code != http.StatusCreated {
		t.Fatalf("s3compat data plane: %d %s", code, msg)
	}
	project := func(name, dp string) int {
		return h.admin.do("POST", "/api/v1/projects", `{"name":"`+name+`","dataplane":"`+dp+`"}`, &msg)
	}
	credentials := func(name string) int {
		return h.admin.do("POST", "/api/v1/projects/"+name+"/credentials", `{"role":"read"}`, &msg)
	}
	setting := func(c *client, on string) int {
		return c.do("PUT", "/api/v1/org/settings", `{"enforce_own_dataplanes":`+on+`}`, &msg)
	}
	if project("on-pasted", "pasted") != 201 || credentials("on-pasted") != 200 {
		t.Fatalf("before enforcing: %s", msg)
	}

	var member struct {
		Token struct{ Token string } `json:"token"`
	}
	h.admin.do("POST", "/api/v1/users", `{"email":"dev@example.com"}`, &member)
	if code := setting(&client{t: t, url: h.url, token: member.Token.Token}, "true"); code != http.StatusForbidden {
		t.Errorf("a member changed the setting: %d", code)
	}
	if code := setting(h.admin, `"yes"`); code != http.StatusBadRequest {
		t.Errorf("a string setting: %d", code)
	}
	if code := setting(h.admin, "true"); code != 200 {
		t.Fatalf("enforce: %d %s", code, msg)
	}
	if code := project("pasted-2", "pasted"); code != http.StatusForbidden || !strings.Contains(msg, "pasted keys") {
		t.Errorf("project on pasted keys while enforced: %d %s", code, msg)
	}
	if code := project("early", "prod"); code != http.StatusForbidden || !strings.Contains(msg, "never deployed") {
		t.Errorf("project on an undeployed data plane: %d %s", code, msg)
	}
	if code := credentials("on-pasted"); code != http.StatusForbidden || !strings.Contains(msg, "no credentials") || !strings.Contains(msg, "pasted keys") {
		t.Errorf("credentials of a project that breaks the setting: %d %s", code, msg)
	}
	if dep := h.deployDataPlane("prod"); dep.Status != "succeeded" {
		t.Fatalf("deploy: %s", dep.Failure)
	}
	if project("owned", "prod") != 201 || credentials("owned") != 200 {
		t.Errorf("project on a hub-deployed data plane: %s", msg)
	}
	var got struct {
		Enforce bool `json:"enforce_own_dataplanes"`
	}
	if h.admin.do("GET", "/api/v1/org/settings", "", &got); !got.Enforce {
		t.Error("settings do not show enforcement")
	}
	if setting(h.admin, "false") != 200 || credentials("on-pasted") != 200 {
		t.Errorf("after turning it off: %s", msg)
	}
}

// A deployed data plane whose hub roles refuse the hub fails its check,
// naming the role and region.
func TestAWSCheckHubRolesRefused(t *testing.T) {
	h := newAWSHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	h.createDataPlane("prod", "eu-west-1")
	dataPlaneStack(h.fake, "eu-west-1")
	if dep := h.deployDataPlane("prod"); dep.Status != "succeeded" {
		t.Fatalf("deploy: %s", dep.Failure)
	}
	h.fake.Handle("sts", "AssumeRole", func(r *awsfake.Request) awsfake.Response {
		if strings.Contains(r.Form.Get("RoleArn"), ":role/berth-hub-writer-") {
			return awsfake.QueryError(403, "AccessDenied", "not authorized to perform: sts:AssumeRole")
		}
		return h.assumeRole(r)
	})
	j := h.run(h.queue("prod", "check"))
	if j.Status != "failed" || !strings.Contains(j.Failure, "check hub writer role in eu-west-1") || !strings.Contains(j.Failure, "AccessDenied") {
		t.Errorf("check: %s %q", j.Status, j.Failure)
	}
	var results []struct {
		Field string `json:"field"`
		OK    bool   `json:"ok"`
	}
	json.Unmarshal(j.Result, &results)
	ok := map[string]bool{}
	for _, r := range results {
		ok[r.Field] = r.OK
	}
	if !ok["hub reader role in eu-west-1"] || ok["hub writer role in eu-west-1"] || !ok["bootstrap"] {
		t.Errorf("results: %s", j.Result)
	}
}

// A bootstrap older than this berth's fails the plan before any change
// set, and the check says so too.
func TestAWSPlanRefusesOlderBootstrap(t *testing.T) {
	h := newAWSHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	h.createDataPlane("prod", "eu-west-1")
	dataPlaneStack(h.fake, "eu-west-1")
	h.fake.Handle("ssm", "GetParameter", func(r *awsfake.Request) awsfake.Response {
		return awsfake.JSON(map[string]any{"Parameter": map[string]any{"Name": r.JSON["Name"], "Value": strconv.Itoa(cfn.BootstrapVersion - 1), "Type": "String", "Version": 1}})
	})
	plan := h.run(h.queue("prod", "plan"))
	if plan.Status != "failed" || !strings.Contains(plan.Failure, fmt.Sprintf("is version %d and this berth needs %d", cfn.BootstrapVersion-1, cfn.BootstrapVersion)) {
		t.Errorf("plan: %s %q", plan.Status, plan.Failure)
	}
	if n := len(h.fake.Called("cloudformation", "CreateChangeSet")); n != 0 {
		t.Errorf("%d change sets created through an older bootstrap", n)
	}
	var msg string
	if code := h.admin.do("POST", "/api/v1/jobs/"+itoa(plan.ID)+"/approve", "", &msg); code != http.StatusConflict {
		t.Errorf("approving a failed plan: %d %s", code, msg)
	}
	check := h.run(h.queue("prod", "check"))
	if check.Status != "failed" || !strings.Contains(check.Failure, "check bootstrap: ") {
		t.Errorf("check: %s %q", check.Status, check.Failure)
	}
}

// A new plan replaces the data plane's previous unapproved one: that one can
// no longer be approved (from the moment the new plan is queued), and the
// new plan's worker deletes its change sets, not the stack holding them.
// An approved plan is never touched.
func TestAWSPlanReplacesUnapprovedPlan(t *testing.T) {
	h := newAWSHub(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	h.createDataPlane("prod", "eu-west-1")
	dataPlaneStack(h.fake, "eu-west-1")
	first := h.run(h.queue("prod", "plan"))
	if first.Status != "succeeded" {
		t.Fatalf("first plan: %s %s", first.Status, first.Failure)
	}
	second := h.queue("prod", "plan")
	var msg string
	if code := h.admin.do("POST", "/api/v1/jobs/"+itoa(first.ID)+"/approve", "", &msg); code != http.StatusConflict ||
		!strings.Contains(msg, fmt.Sprintf("plan job %d replaces it", second)) {
		t.Errorf("approving a plan while a newer one is queued: %d %s", code, msg)
	}
	j := h.run(second)
	if j.Status != "succeeded" || !strings.Contains(j.events(), fmt.Sprintf("this plan replaces plan job %d; its change sets are deleted", first.ID)) {
		t.Fatalf("second plan: %s %s\n%s", j.Status, j.Failure, j.events())
	}
	var firstPlan struct {
		Result struct {
			Regions []struct {
				ChangeSetID string `json:"change_set_id"`
			} `json:"regions"`
		} `json:"result"`
	}
	if err := json.Unmarshal(mustJSON(t, first), &firstPlan); err != nil || len(firstPlan.Result.Regions) != 1 || firstPlan.Result.Regions[0].ChangeSetID == "" {
		t.Fatalf("first plan's result: %v %+v", err, firstPlan)
	}
	deleted := h.fake.Called("cloudformation", "DeleteChangeSet")
	if len(deleted) != 1 || deleted[0].Form.Get("ChangeSetName") != firstPlan.Result.Regions[0].ChangeSetID {
		t.Errorf("DeleteChangeSet calls: %d, want one for %s", len(deleted), firstPlan.Result.Regions[0].ChangeSetID)
	}
	if n := len(h.fake.Called("cloudformation", "DeleteStack")); n != 0 {
		t.Errorf("DeleteStack called %d times: the stack holds the new plan's change set", n)
	}
	if code := h.admin.do("POST", "/api/v1/jobs/"+itoa(first.ID)+"/approve", "", &msg); code != http.StatusConflict {
		t.Errorf("approving a replaced plan: %d %s", code, msg)
	}
	var approved struct {
		DeployJob int64 `json:"deploy_job"`
	}
	if code := h.admin.do("POST", "/api/v1/jobs/"+itoa(second)+"/approve", "", &approved); code != http.StatusAccepted {
		t.Fatalf("approving the newest plan: %d", code)
	}
	if d := h.run(approved.DeployJob); d.Status != "succeeded" {
		t.Fatalf("deploy: %s %s", d.Status, d.Failure)
	}
	third := h.run(h.queue("prod", "plan"))
	if strings.Contains(third.events(), "replaces") || len(h.fake.Called("cloudformation", "DeleteChangeSet")) != 1 {
		t.Errorf("a plan after an approved one deleted change sets:\n%s", third.events())
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
