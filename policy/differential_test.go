package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
)

// The differential test runs every rendered policy through berth's
// evaluator and through @cloud-copilot/iam-simulate (an independent
// implementation, installed by scripts/iamdata/install-simulate.sh) and
// requires the same decision. Table cases must also give the expected one.

const (
	diffAccount = "123456789012"
	diffVendor  = "arn:aws:iam::210987654321:role/vendor-deployer"
	diffCaller  = "arn:aws:iam::123456789012:role/ci"
)

type diffCase struct {
	name   string
	req    Request
	pol    Policies
	want   Outcome // "" for generated cases: agreement only
	strict bool    // the other evaluator must accept the case
	// known says why iam-simulate answers this case differently from IAM;
	// berth must give want, and iam-simulate must still differ (so the
	// note is dropped when it is fixed).
	known string
}

type simCase struct {
	Identity []*Document `json:"identity"`
	Resource *Document   `json:"resource,omitempty"`
	Boundary *Document   `json:"boundary,omitempty"`
	Request  struct {
		Principal       string         `json:"principal"`
		Action          string         `json:"action"`
		Resource        string         `json:"resource"`
		ResourceAccount string         `json:"resourceAccount"`
		Context         map[string]any `json:"context"`
	} `json:"request"`
}

type simResult struct {
	Result string `json:"result"`
	Error  string `json:"error"`
}

func simulator(t *testing.T) (node, modules string) {
	t.Helper()
	skip := func(msg string) { testenv.Require(t, msg+"; run scripts/iamdata/install-simulate.sh") }
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node not found")
	}
	dir := os.Getenv("BERTH_TOOLS_NPM")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "berth-tools", "npm")
	}
	modules = filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "@cloud-copilot", "iam-simulate", "package.json")); err != nil {
		skip("@cloud-copilot/iam-simulate not installed in " + dir)
	}
	return node, modules
}

func runSimulator(t *testing.T, node, modules string, cases []diffCase) []simResult {
	t.Helper()
	var in []simCase
	for _, c := range cases {
		var s simCase
		s.Identity = c.pol.Identity
		if s.Identity == nil {
			s.Identity = []*Document{}
		}
		s.Resource = c.pol.Resource
		if usesTrust(c.req.Action) && c.pol.Trust != nil {
			s.Resource = c.pol.Trust
		}
		s.Boundary = c.pol.Boundary
		s.Request.Principal = c.req.Principal
		s.Request.Action = c.req.Action
		s.Request.Resource = c.req.Resource
		s.Request.ResourceAccount = c.req.resourceAccount(principalAccount(c.req.Principal))
		s.Request.Context = map[string]any{}
		for k, v := range c.req.Context {
			if len(v) == 1 && !multivalued(k) {
				s.Request.Context[k] = v[0]
			} else {
				s.Request.Context[k] = v
			}
		}
		in = append(in, s)
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "scripts", "iamdata", "simulate.cjs")
	cmd := exec.Command(node, script, modules)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run iam-simulate: %v\n%s", err, stderr.String())
	}
	var res []simResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(cases) {
		t.Fatalf("read iam-simulate output (%d results for %d cases): %v", len(res), len(cases), err)
	}
	return res
}

func theirOutcome(r simResult) Outcome {
	switch r.Result {
	case "Allowed":
		return Allowed
	case "ExplicitlyDenied":
		return ExplicitDeny
	}
	return ImplicitDeny
}

func ctx(kv ...string) map[string][]string {
	m := map[string][]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = append(m[kv[i]], kv[i+1])
	}
	return m
}

// tableCases are the must-allow and must-deny requests for each rendered
// policy, with the "full" parameters.
func tableCases(t *testing.T) []diffCase {
	p := renderCases["full"]
	render := func(k Kind) *Result {
		r, err := Render(k, p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	bucket := "arn:aws:s3:::acme-artifacts"
	obj := func(key string) string { return bucket + "/" + key }
	param := func(name string) string { return "arn:aws:ssm:eu-west-1:123456789012:parameter" + name }
	key := p.KMSKeyARN
	viaS3 := ctx("kms:ViaService", "s3.eu-west-1.amazonaws.com")
	var cases []diffCase
	add := func(kind Kind, pol Policies, want Outcome, name, action, resource string, c map[string][]string) {
		cases = append(cases, diffCase{name: string(kind) + ": " + name, want: want, strict: true, pol: pol,
			req: Request{Action: action, Resource: resource, Principal: diffCaller, ResourceAccount: diffAccount, Context: c}})
	}
	id := func(k Kind) Policies { return Policies{Identity: []*Document{render(k).Policy}} }

	read := id(KindArtifactRead)
	add(KindArtifactRead, read, Allowed, "download data", "s3:GetObject", obj("releases/app/1.0.0/data/0a1b"), nil)
	add(KindArtifactRead, read, Allowed, "read manifest", "s3:GetObject", obj("releases/app/1.0.0/manifest.json"), nil)
	add(KindArtifactRead, read, Allowed, "list project", "s3:ListBucket", bucket, ctx("s3:prefix", "releases/app/"))
	add(KindArtifactRead, read, Allowed, "read latest parameter", "ssm:GetParameter", param("/berth/app/latest"), nil)
	add(KindArtifactRead, read, Allowed, "read bucket parameter", "ssm:GetParameter", param("/berth/bucket"), nil)
	add(KindArtifactRead, read, Allowed, "decrypt via s3", "kms:Decrypt", key, viaS3)
	add(KindArtifactRead, read, ImplicitDeny, "put object", "s3:PutObject", obj("releases/app/1.0.0/data/0a1b"), nil)
	add(KindArtifactRead, read, ImplicitDeny, "delete object", "s3:DeleteObject", obj("releases/app/1.0.0/data/0a1b"), nil)
	add(KindArtifactRead, read, ImplicitDeny, "other prefix", "s3:GetObject", obj("private/app/1.0.0/data/0a1b"), nil)
	add(KindArtifactRead, read, ImplicitDeny, "list other prefix", "s3:ListBucket", bucket, ctx("s3:prefix", "private/"))
	add(KindArtifactRead, read, ImplicitDeny, "list whole bucket", "s3:ListBucket", bucket, nil)
	add(KindArtifactRead, read, ImplicitDeny, "other bucket", "s3:GetObject", "arn:aws:s3:::other-bucket/releases/x", nil)
	add(KindArtifactRead, read, ImplicitDeny, "move latest", "ssm:PutParameter", param("/berth/app/latest"), nil)
	add(KindArtifactRead, read, ImplicitDeny, "decrypt outside s3", "kms:Decrypt", key, ctx("kms:ViaService", "ssm.eu-west-1.amazonaws.com"))
	add(KindArtifactRead, read, ImplicitDeny, "decrypt direct", "kms:Decrypt", key, nil)

	write := id(KindArtifactWrite)
	add(KindArtifactWrite, write, Allowed, "stage data", "s3:PutObject", obj("releases/app/1.0.0/data/0a1b"), nil)
	add(KindArtifactWrite, write, Allowed, "abort upload", "s3:AbortMultipartUpload", obj("releases/app/1.0.0/data/0a1b"), nil)
	add(KindArtifactWrite, write, Allowed, "commit manifest", "s3:PutObject", obj("releases/app/1.0.0/manifest.json"), nil)
	add(KindArtifactWrite, write, Allowed, "move latest object", "s3:PutObject", obj("releases/app/latest.json"), nil)
	add(KindArtifactWrite, write, Allowed, "re-read manifest", "s3:GetObject", obj("releases/app/1.0.0/manifest.json"), nil)
	add(KindArtifactWrite, write, Allowed, "find uploads", "s3:ListBucketMultipartUploads", bucket, nil)
	add(KindArtifactWrite, write, Allowed, "move latest parameter", "ssm:PutParameter", param("/berth/app/latest"), nil)
	add(KindArtifactWrite, write, Allowed, "data key", "kms:GenerateDataKey", key, viaS3)
	add(KindArtifactWrite, write, ImplicitDeny, "delete data", "s3:DeleteObject", obj("releases/app/1.0.0/data/0a1b"), nil)
	add(KindArtifactWrite, write, ImplicitDeny, "put elsewhere under prefix", "s3:PutObject", obj("releases/app/1.0.0/notes.txt"), nil)
	add(KindArtifactWrite, write, ImplicitDeny, "put other prefix", "s3:PutObject", obj("private/app/1.0.0/data/0a1b"), nil)
	add(KindArtifactWrite, write, ImplicitDeny, "overwrite bucket parameter", "ssm:PutParameter", param("/berth/bucket"), nil)
	add(KindArtifactWrite, write, ImplicitDeny, "delete bucket", "s3:DeleteBucket", bucket, nil)

	// The cache kinds with the same parameters: Bucket is the cache bucket.
	cr := id(KindCacheRead)
	add(KindCacheRead, cr, Allowed, "read entry", "s3:GetObject", obj("releases/keys/go-abc.json"), nil)
	add(KindCacheRead, cr, Allowed, "read archive", "s3:GetObject", obj("releases/data/go-abc/0a1b.tar.zst"), nil)
	add(KindCacheRead, cr, Allowed, "list restore prefix", "s3:ListBucket", bucket, ctx("s3:prefix", "releases/keys/go-"))
	add(KindCacheRead, cr, Allowed, "decrypt via s3", "kms:Decrypt", key, viaS3)
	add(KindCacheRead, cr, ImplicitDeny, "save archive", "s3:PutObject", obj("releases/data/go-abc/0a1b.tar.zst"), nil)
	add(KindCacheRead, cr, ImplicitDeny, "read artifacts", "s3:GetObject", obj("releases/app/1.0.0/manifest.json"), nil)
	add(KindCacheRead, cr, ImplicitDeny, "list whole bucket", "s3:ListBucket", bucket, nil)
	add(KindCacheRead, cr, ImplicitDeny, "list artifacts", "s3:ListBucket", bucket, ctx("s3:prefix", "releases/app/"))
	add(KindCacheRead, cr, ImplicitDeny, "data key", "kms:GenerateDataKey", key, viaS3)
	cw := id(KindCacheWrite)
	add(KindCacheWrite, cw, Allowed, "save archive", "s3:PutObject", obj("releases/data/go-abc/0a1b.tar.zst"), nil)
	add(KindCacheWrite, cw, Allowed, "abort archive upload", "s3:AbortMultipartUpload", obj("releases/data/go-abc/0a1b.tar.zst"), nil)
	add(KindCacheWrite, cw, Allowed, "commit entry", "s3:PutObject", obj("releases/keys/go-abc.json"), nil)
	add(KindCacheWrite, cw, Allowed, "check entry", "s3:GetObject", obj("releases/keys/go-abc.json"), nil)
	add(KindCacheWrite, cw, Allowed, "data key", "kms:GenerateDataKey", key, viaS3)
	add(KindCacheWrite, cw, ImplicitDeny, "delete lost archive", "s3:DeleteObject", obj("releases/data/go-abc/0a1b.tar.zst"), nil)
	add(KindCacheWrite, cw, ImplicitDeny, "put other name under keys", "s3:PutObject", obj("releases/keys/notes.txt"), nil)
	add(KindCacheWrite, cw, ImplicitDeny, "put outside the layout", "s3:PutObject", obj("releases/app/1.0.0/manifest.json"), nil)
	add(KindCacheWrite, cw, ImplicitDeny, "other bucket", "s3:PutObject", "arn:aws:s3:::other-bucket/releases/data/x", nil)
	add(KindCacheWrite, cw, ImplicitDeny, "data key outside s3", "kms:GenerateDataKey", key, nil)

	conf := id(KindConfigure)
	add(KindConfigure, conf, Allowed, "set bucket parameter", "ssm:PutParameter", param("/berth/bucket"), nil)
	add(KindConfigure, conf, Allowed, "get bucket parameter", "ssm:GetParameter", param("/berth/bucket"), nil)
	add(KindConfigure, conf, ImplicitDeny, "move latest", "ssm:PutParameter", param("/berth/app/latest"), nil)
	add(KindConfigure, conf, ImplicitDeny, "delete parameter", "ssm:DeleteParameter", param("/berth/bucket"), nil)

	be := id(KindBackend)
	inst := "arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0"
	add(KindBackend, be, Allowed, "delete state", "s3:DeleteObject", obj("runs/x.json"), nil)
	add(KindBackend, be, Allowed, "terminate own", "ec2:TerminateInstances", inst, ctx("aws:ResourceTag/dstack_bucket", "acme-artifacts"))
	add(KindBackend, be, ImplicitDeny, "terminate other", "ec2:TerminateInstances", inst, ctx("aws:ResourceTag/dstack_bucket", "someone-else"))
	add(KindBackend, be, ImplicitDeny, "terminate untagged", "ec2:TerminateInstances", inst, nil)
	add(KindBackend, be, Allowed, "create own role", "iam:CreateRole", "arn:aws:iam::123456789012:role/berth_role_acme_artifacts", nil)
	add(KindBackend, be, ImplicitDeny, "create other role", "iam:CreateRole", "arn:aws:iam::123456789012:role/admin", nil)
	add(KindBackend, be, Allowed, "pass role to ec2", "iam:PassRole", "arn:aws:iam::123456789012:role/berth_role_acme_artifacts", ctx("iam:PassedToService", "ec2.amazonaws.com"))
	add(KindBackend, be, ImplicitDeny, "pass role to lambda", "iam:PassRole", "arn:aws:iam::123456789012:role/berth_role_acme_artifacts", ctx("iam:PassedToService", "lambda.amazonaws.com"))
	add(KindBackend, be, Allowed, "own secret", "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:berth/acme-artifacts/creds-AbCdEf", nil)
	add(KindBackend, be, ImplicitDeny, "other secret", "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf", nil)
	add(KindBackend, be, Allowed, "own log group", "logs:CreateLogGroup", "arn:aws:logs:eu-west-1:123456789012:log-group:/berth/acme-artifacts/jobs", nil)
	add(KindBackend, be, ImplicitDeny, "other log group", "logs:CreateLogGroup", "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/x", nil)

	prov := render(KindProvisioner).Role
	pp := Policies{Identity: prov.Documents()}
	stack := "arn:aws:cloudformation:eu-west-1:123456789012:stack/berth-dataplane/0d4c0a30-1111-2222-3333-444455556666"
	add(KindProvisioner, pp, Allowed, "create change set", "cloudformation:CreateChangeSet", stack, nil)
	add(KindProvisioner, pp, ImplicitDeny, "other stack", "cloudformation:CreateChangeSet", "arn:aws:cloudformation:eu-west-1:123456789012:stack/prod-app/0d4c0a30-1111", nil)
	add(KindProvisioner, pp, Allowed, "create bucket", "s3:CreateBucket", "arn:aws:s3:::berth-123456789012-eu-west-1", nil)
	add(KindProvisioner, pp, ImplicitDeny, "create other bucket", "s3:CreateBucket", "arn:aws:s3:::prod-data", nil)
	add(KindProvisioner, pp, ImplicitDeny, "delete bucket", "s3:DeleteBucket", "arn:aws:s3:::berth-123456789012-eu-west-1", nil)
	add(KindProvisioner, pp, Allowed, "create managed policy", "iam:CreatePolicy", "arn:aws:iam::123456789012:policy/berth-artifact-read-eu-west-1", nil)
	add(KindProvisioner, pp, ImplicitDeny, "create role", "iam:CreateRole", "arn:aws:iam::123456789012:role/berth-x", nil)

	// The escalation path: a role the provisioner creates must carry the
	// data plane boundary, which it can neither remove nor change.
	hubRole := "arn:aws:iam::123456789012:role/berth-hub-x"
	boundaryARN := "arn:aws:iam::123456789012:policy/berth-boundary"
	withBoundary := ctx("iam:PermissionsBoundary", boundaryARN)
	otherBoundary := ctx("iam:PermissionsBoundary", "arn:aws:iam::123456789012:policy/berth-artifact-write-eu-west-1")
	add(KindProvisioner, pp, ImplicitDeny, "create hub role without boundary", "iam:CreateRole", hubRole, nil)
	add(KindProvisioner, pp, ImplicitDeny, "create hub role with another boundary", "iam:CreateRole", hubRole, otherBoundary)
	add(KindProvisioner, pp, Allowed, "create hub role with the boundary", "iam:CreateRole", hubRole, withBoundary)
	add(KindProvisioner, pp, Allowed, "set the boundary", "iam:PutRolePermissionsBoundary", hubRole, withBoundary)
	add(KindProvisioner, pp, ImplicitDeny, "set another boundary", "iam:PutRolePermissionsBoundary", hubRole, otherBoundary)
	add(KindProvisioner, pp, ExplicitDeny, "remove the boundary", "iam:DeleteRolePermissionsBoundary", hubRole, withBoundary)
	add(KindProvisioner, pp, ImplicitDeny, "inline policy on a hub role", "iam:PutRolePolicy", hubRole, withBoundary)
	add(KindProvisioner, pp, Allowed, "attach to a bounded hub role", "iam:AttachRolePolicy", hubRole,
		ctx("iam:PermissionsBoundary", boundaryARN, "iam:PolicyARN", "arn:aws:iam::123456789012:policy/berth-evil"))
	add(KindProvisioner, pp, ImplicitDeny, "attach to an unbounded hub role", "iam:AttachRolePolicy", hubRole,
		ctx("iam:PolicyARN", "arn:aws:iam::123456789012:policy/berth-evil"))
	add(KindProvisioner, pp, ImplicitDeny, "re-trust an unbounded hub role", "iam:UpdateAssumeRolePolicy", hubRole, nil)
	add(KindProvisioner, pp, Allowed, "re-trust a bounded hub role", "iam:UpdateAssumeRolePolicy", hubRole, withBoundary)
	add(KindProvisioner, pp, Allowed, "new version of an artifact policy", "iam:CreatePolicyVersion", "arn:aws:iam::123456789012:policy/berth-artifact-read-eu-west-1", nil)
	for _, a := range []string{"iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion"} {
		add(KindProvisioner, pp, ExplicitDeny, "change the boundary: "+a, a, boundaryARN, nil)
		add(KindProvisioner, pp, ExplicitDeny, "change its own policy: "+a, a, "arn:aws:iam::123456789012:policy/berth-provisioner-iam", nil)
	}

	// The boundary caps a role whatever its policies grant (here everything).
	bd, err := DataPlaneBoundary(p)
	if err != nil {
		t.Fatal(err)
	}
	capped := Policies{Identity: []*Document{AdministratorAccessDocument()}, Boundary: bd}
	dpBucket := "arn:aws:s3:::berth-123456789012-eu-west-1"
	add("boundary", capped, Allowed, "stage data", "s3:PutObject", dpBucket+"/app/1.0.0/data/x", nil)
	add("boundary", capped, Allowed, "read a manifest", "s3:GetObject", dpBucket+"/app/1.0.0/manifest.json", nil)
	add("boundary", capped, Allowed, "move latest", "ssm:PutParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/berth/app/latest", nil)
	add("boundary", capped, Allowed, "decrypt via s3", "kms:Decrypt", key, viaS3)
	add("boundary", capped, ImplicitDeny, "decrypt directly", "kms:Decrypt", key, nil)
	add("boundary", capped, ImplicitDeny, "another bucket", "s3:GetObject", "arn:aws:s3:::prod-data/x", nil)
	add("boundary", capped, ImplicitDeny, "delete an artifact", "s3:DeleteObject", dpBucket+"/app/1.0.0/data/x", nil)
	add("boundary", capped, ImplicitDeny, "delete the bucket", "s3:DeleteBucket", dpBucket, nil)
	add("boundary", capped, ExplicitDeny, "create a role", "iam:CreateRole", "arn:aws:iam::123456789012:role/berth-hub-y", nil)
	add("boundary", capped, ExplicitDeny, "attach a policy", "iam:AttachRolePolicy", "arn:aws:iam::123456789012:role/berth-hub-y", nil)
	add("boundary", capped, ExplicitDeny, "remove its boundary", "iam:DeleteRolePermissionsBoundary", "arn:aws:iam::123456789012:role/berth-hub-y", nil)
	add("boundary", capped, ExplicitDeny, "change the boundary", "iam:CreatePolicyVersion", boundaryARN, nil)
	add("boundary", capped, ExplicitDeny, "assume a role", "sts:AssumeRole", "arn:aws:iam::123456789012:role/admin", nil)
	add("boundary", capped, ExplicitDeny, "leave the organization", "organizations:LeaveOrganization", "*", nil)
	add(KindProvisioner, pp, Allowed, "bucket parameter", "ssm:PutParameter", "arn:aws:ssm:eu-west-1:123456789012:parameter/berth/bucket", nil)
	add(KindProvisioner, pp, ImplicitDeny, "latest parameter", "ssm:PutParameter", "arn:aws:ssm:eu-west-1:123456789012:parameter/berth/app/latest", nil)

	// The network stack's EC2 permissions: scoped by the qualifier tag.
	ec2 := func(res string) string { return "arn:aws:ec2:eu-west-1:123456789012:" + res }
	reqTag := func(q string) map[string][]string {
		return ctx("aws:RequestTag/berth:qualifier", q, "aws:TagKeys", "berth:qualifier", "aws:TagKeys", "Name")
	}
	resTag := func(q string) map[string][]string { return ctx("aws:ResourceTag/berth:qualifier", q) }
	add(KindProvisioner, pp, Allowed, "create tagged vpc", "ec2:CreateVpc", ec2("vpc/vpc-0123456789abcdef0"), reqTag("berth"))
	add(KindProvisioner, pp, ImplicitDeny, "create untagged vpc", "ec2:CreateVpc", ec2("vpc/vpc-0123456789abcdef0"), nil)
	add(KindProvisioner, pp, ImplicitDeny, "create vpc of another qualifier", "ec2:CreateVpc", ec2("vpc/vpc-0123456789abcdef0"), reqTag("prod"))
	add(KindProvisioner, pp, Allowed, "create subnet (the subnet)", "ec2:CreateSubnet", ec2("subnet/subnet-0123456789abcdef0"), reqTag("berth"))
	add(KindProvisioner, pp, Allowed, "create subnet in a tagged vpc", "ec2:CreateSubnet", ec2("vpc/vpc-0123456789abcdef0"), resTag("berth"))
	add(KindProvisioner, pp, ImplicitDeny, "create subnet in another vpc", "ec2:CreateSubnet", ec2("vpc/vpc-0fedcba987654321f"), reqTag("berth"))
	add(KindProvisioner, pp, ImplicitDeny, "create endpoint in another subnet", "ec2:CreateVpcEndpoint", ec2("subnet/subnet-0fedcba987654321f"), reqTag("berth"))
	add(KindProvisioner, pp, Allowed, "add a route to a tagged table", "ec2:CreateRoute", ec2("route-table/rtb-0123456789abcdef0"), resTag("berth"))
	add(KindProvisioner, pp, ImplicitDeny, "add a route to another table", "ec2:CreateRoute", ec2("route-table/rtb-0fedcba987654321f"), nil)
	add(KindProvisioner, pp, Allowed, "delete a tagged vpc", "ec2:DeleteVpc", ec2("vpc/vpc-0123456789abcdef0"), resTag("berth"))
	add(KindProvisioner, pp, ImplicitDeny, "delete another vpc", "ec2:DeleteVpc", ec2("vpc/vpc-0fedcba987654321f"), resTag("prod"))
	add(KindProvisioner, pp, Allowed, "tag on create", "ec2:CreateTags", ec2("subnet/subnet-0123456789abcdef0"), ctx("ec2:CreateAction", "CreateSubnet"))
	add(KindProvisioner, pp, ImplicitDeny, "tag another resource", "ec2:CreateTags", ec2("subnet/subnet-0fedcba987654321f"), ctx("aws:RequestTag/berth:qualifier", "berth"))
	add(KindProvisioner, pp, ImplicitDeny, "retag to another qualifier", "ec2:CreateTags", ec2("subnet/subnet-0123456789abcdef0"),
		ctx("aws:ResourceTag/berth:qualifier", "berth", "aws:RequestTag/berth:qualifier", "prod", "aws:TagKeys", "berth:qualifier"))
	add(KindProvisioner, pp, ImplicitDeny, "remove the qualifier tag", "ec2:DeleteTags", ec2("vpc/vpc-0123456789abcdef0"),
		ctx("aws:ResourceTag/berth:qualifier", "berth", "aws:TagKeys", "berth:qualifier"))
	add(KindProvisioner, pp, Allowed, "remove another tag", "ec2:DeleteTags", ec2("vpc/vpc-0123456789abcdef0"),
		ctx("aws:ResourceTag/berth:qualifier", "berth", "aws:TagKeys", "team"))
	add(KindProvisioner, pp, ImplicitDeny, "run instances", "ec2:RunInstances", ec2("instance/i-0123456789abcdef0"), reqTag("berth"))
	add(KindProvisioner, pp, ImplicitDeny, "accept a peering", "ec2:AcceptVpcPeeringConnection", ec2("vpc-peering-connection/pcx-0123456789abcdef0"), resTag("berth"))
	add(KindProvisioner, pp, Allowed, "describe vpcs", "ec2:DescribeVpcs", "*", nil)
	add(KindProvisioner, pp, Allowed, "assume a peering accepter", "sts:AssumeRole", "arn:aws:iam::444455556666:role/berth-peering-accepter", nil)
	add(KindProvisioner, pp, ImplicitDeny, "assume another role", "sts:AssumeRole", "arn:aws:iam::444455556666:role/admin", nil)

	ops := render(KindOps).Role
	op := Policies{Identity: []*Document{ops.Policy}}
	add(KindOps, op, Allowed, "describe stack", "cloudformation:DescribeStacks", stack, nil)
	add(KindOps, op, ImplicitDeny, "change stack", "cloudformation:ExecuteChangeSet", stack, nil)
	add(KindOps, op, Allowed, "read bucket policy", "s3:GetBucketPolicy", "arn:aws:s3:::berth-123456789012-eu-west-1", nil)
	add(KindOps, op, ImplicitDeny, "write bucket policy", "s3:PutBucketPolicy", "arn:aws:s3:::berth-123456789012-eu-west-1", nil)
	add(KindOps, op, Allowed, "describe vpcs", "ec2:DescribeVpcs", "*", nil)
	add(KindOps, op, Allowed, "read a tagged vpc's attributes", "ec2:DescribeVpcAttribute", ec2("vpc/vpc-0123456789abcdef0"), resTag("berth"))
	add(KindOps, op, ImplicitDeny, "create vpc", "ec2:CreateVpc", ec2("vpc/vpc-0123456789abcdef0"), reqTag("berth"))
	add(KindOps, op, ImplicitDeny, "modify a tagged vpc", "ec2:ModifyVpcAttribute", ec2("vpc/vpc-0123456789abcdef0"), resTag("berth"))

	// Policy variables are literal in a 2008-10-17 policy.
	v2008 := Policies{Identity: []*Document{MustParse(`{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::acme-artifacts/${aws:username}/*"}]}`)}}
	add("2008-10-17", v2008, ImplicitDeny, "variable not substituted", "s3:GetObject", obj("alice/x"), ctx("aws:username", "alice"))
	add("2008-10-17", v2008, Allowed, "variable is text", "s3:GetObject", obj("${aws:username}/x"), ctx("aws:username", "alice"))
	for i := len(cases) - 2; i < len(cases); i++ {
		cases[i].known = "iam-simulate substitutes variables whatever the Version; IAM documents them as literal text in 2008-10-17 policies"
	}

	// Trust policies: cross-account, with and without the external ID.
	assume := MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	for _, k := range []Kind{KindProvisioner, KindOps} {
		trust := render(k).Role.Trust
		role := "arn:aws:iam::123456789012:role/berth-" + string(k)
		tp := Policies{Identity: []*Document{assume}, Trust: trust}
		tc := func(want Outcome, name, principal string, c map[string][]string, pol Policies) {
			cases = append(cases, diffCase{name: string(k) + " trust: " + name, want: want, strict: true, pol: pol,
				req: Request{Action: "sts:AssumeRole", Resource: role, Principal: principal, Context: c}})
		}
		tc(Allowed, "vendor with external id", diffVendor, ctx("sts:ExternalId", p.ExternalID), tp)
		tc(ImplicitDeny, "vendor without external id", diffVendor, nil, tp)
		tc(ImplicitDeny, "vendor with wrong external id", diffVendor, ctx("sts:ExternalId", "guess"), tp)
		tc(ImplicitDeny, "other role of the vendor account", "arn:aws:iam::210987654321:role/other", ctx("sts:ExternalId", p.ExternalID), tp)
		tc(ImplicitDeny, "vendor without identity allow", diffVendor, ctx("sts:ExternalId", p.ExternalID), Policies{Trust: trust})
		tc(ImplicitDeny, "same-account caller", diffCaller, ctx("sts:ExternalId", p.ExternalID), tp)
		tc(Allowed, "vendor session", "arn:aws:sts::210987654321:assumed-role/vendor-deployer/job-1", ctx("sts:ExternalId", p.ExternalID), tp)

		// Session tags: berth tags its sessions with the qualifier; the
		// trust allows that tag without relying on sts:ExternalId being in
		// TagSession's context.
		tag := Policies{Identity: []*Document{MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"}]}`)}, Trust: trust}
		ts := func(want Outcome, name, principal string, c map[string][]string) {
			cases = append(cases, diffCase{name: string(k) + " trust: " + name, want: want, strict: true, pol: tag,
				req: Request{Action: "sts:TagSession", Resource: role, Principal: principal, Context: c}})
		}
		qualifierTag := ctx("aws:RequestTag/berth:qualifier", "berth", "aws:TagKeys", "berth:qualifier")
		ts(Allowed, "vendor tags the session", diffVendor, qualifierTag)
		ts(Allowed, "vendor tags the session with the external id", diffVendor,
			ctx("aws:RequestTag/berth:qualifier", "berth", "aws:TagKeys", "berth:qualifier", "sts:ExternalId", p.ExternalID))
		ts(ImplicitDeny, "vendor tags another qualifier", diffVendor, ctx("aws:RequestTag/berth:qualifier", "prod", "aws:TagKeys", "berth:qualifier"))
		ts(ImplicitDeny, "vendor adds another tag", diffVendor,
			ctx("aws:RequestTag/berth:qualifier", "berth", "aws:RequestTag/team", "x", "aws:TagKeys", "berth:qualifier", "aws:TagKeys", "team"))
		ts(ImplicitDeny, "other principal tags", "arn:aws:iam::210987654321:role/other", qualifierTag)
	}
	return cases
}

// generatedCases derive requests from every statement of every rendered
// policy: each action against each resource pattern with its wildcards
// filled in several ways, with and without the condition keys, plus
// requests against another bucket and account. Only agreement is checked.
func generatedCases(t *testing.T) []diffCase {
	var cases []diffCase
	fills := []string{"a", "app/1.0.0/data/x", "app/latest.json", ""}
	for pname, p := range renderCases {
		for _, k := range Kinds {
			r, err := Render(k, p)
			if err != nil {
				t.Fatal(err)
			}
			docs := []*Document{r.Policy}
			if r.Policy == nil {
				docs = r.Role.Documents()
			}
			for di, d := range docs {
				for si, s := range d.Statement {
					for _, a := range s.Action {
						for _, res := range s.Resource {
							for fi, f := range fills {
								arn := "*"
								if res != "*" {
									// Region and account wildcards get real values;
									// wildcards in the resource part get the fill.
									a, err := ParseARN(res)
									if err != nil {
										t.Fatal(err)
									}
									if a.Region == "*" {
										a.Region = "eu-west-1"
									}
									if a.Account == "*" {
										a.Account = diffAccount
									}
									a.Resource = strings.ReplaceAll(a.Resource, "*", f)
									if strings.HasSuffix(a.Resource, "/") || a.Resource == "" {
										a.Resource += "x"
									}
									arn = a.String()
								}
								c := map[string][]string{}
								if fi%2 == 0 {
									for _, keys := range s.Condition {
										for key, vals := range keys {
											c[key] = []string{strings.ReplaceAll(vals[0], "*", f)}
										}
									}
								}
								for _, mutate := range []func(string) string{
									func(s string) string { return s },
									func(s string) string { return strings.Replace(s, "acme", "other", 1) },
								} {
									cases = append(cases, diffCase{
										name: fmt.Sprintf("%s/%s[%d] Statement[%d] %s %s", pname, k, di, si, a, mutate(arn)),
										pol:  Policies{Identity: []*Document{d}},
										req: Request{Action: a, Resource: mutate(arn), Principal: diffCaller,
											ResourceAccount: diffAccount, Context: c},
									})
								}
							}
						}
					}
				}
			}
		}
	}
	return cases
}

// defaultKeyPolicy is AWS's default key policy: the account administers the
// key through IAM, so identity policies decide.
var defaultKeyPolicy = MustParse(`{"Version":"2012-10-17","Statement":[{"Sid":"EnableIAMPolicies","Effect":"Allow",
	"Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}`)

func TestDifferential(t *testing.T) {
	node, modules := simulator(t)
	table := tableCases(t)
	generated := generatedCases(t)
	all := append(append([]diffCase{}, table...), generated...)
	for i := range all {
		if isKMSKey(all[i].req) && all[i].pol.Resource == nil {
			all[i].pol.Resource = defaultKeyPolicy
		}
	}
	theirs := runSimulator(t, node, modules, all)
	compared, refused := 0, 0
	for i, c := range all {
		ours, err := Evaluate(c.req, c.pol)
		if err != nil {
			t.Errorf("%s: berth refused: %v", c.name, err)
			continue
		}
		if theirs[i].Error != "" {
			if c.strict {
				t.Errorf("%s: iam-simulate refused: %s", c.name, theirs[i].Error)
			}
			refused++
			continue
		}
		compared++
		if c.known != "" {
			if ours.Outcome != c.want {
				t.Errorf("%s: berth says %s, want %s", c.name, ours.Outcome, c.want)
			}
			if theirOutcome(theirs[i]) == ours.Outcome {
				t.Errorf("%s: iam-simulate now agrees; drop the note %q", c.name, c.known)
			}
			continue
		}
		if got := theirOutcome(theirs[i]); got != ours.Outcome {
			t.Errorf("%s: berth says %s (%s), iam-simulate says %s", c.name, ours.Outcome, ours.Reason, got)
			continue
		}
		if c.want != "" && ours.Outcome != c.want {
			t.Errorf("%s: both say %s, want %s", c.name, ours.Outcome, c.want)
		}
	}
	t.Logf("%d table and %d generated cases: %d compared, %d refused by iam-simulate (invalid generated requests)",
		len(table), len(generated), compared, refused)
	if compared < len(table) {
		t.Errorf("only %d cases compared", compared)
	}
}
