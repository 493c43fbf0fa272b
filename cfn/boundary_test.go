package cfn

import (
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/policy"
)

const (
	testAccount = "123456789012"
	testRegion  = "eu-west-1"
	testKeyARN  = "arn:aws:kms:eu-west-1:123456789012:key/0b2c1f8e-1111-2222-3333-444455556666"
)

// stackSubst fills in what CloudFormation substitutes in both templates for
// qualifier q in testAccount and testRegion.
func stackSubst(q string) *strings.Replacer {
	return strings.NewReplacer("${AWS::Partition}", "aws", "${AWS::AccountId}", testAccount, "${AWS::Region}", testRegion,
		"${ArtifactBucket.Arn}", "arn:aws:s3:::"+q+"-"+testAccount+"-"+testRegion, "${ArtifactBucket}", q+"-"+testAccount+"-"+testRegion,
		"${CacheBucket.Arn}", "arn:aws:s3:::"+q+"-cache-"+testAccount+"-"+testRegion, "${CacheBucket}", q+"-cache-"+testAccount+"-"+testRegion,
		"${ArtifactKey.Arn}", testKeyARN, "${TrustPrincipal}", "arn:aws:iam::210987654321:role/vendor", "${ExternalId}", "ext-1",
		"${"+HubExternalIDParameter+"}", "hub-ext-1")
}

// bootstrapBoundary is the data plane boundary of the bootstrap rendered
// with p's qualifier and parameter prefix, as IAM holds it, and its ARN.
func bootstrapBoundary(t *testing.T, p Params) (*policy.Document, string) {
	t.Helper()
	boot := renderResources(t, "bootstrap", Params{Qualifier: p.Qualifier, ParameterPrefix: p.ParameterPrefix})
	res, ok := boot["DataPlaneBoundary"]
	if !ok || res.Type != "AWS::IAM::ManagedPolicy" {
		t.Fatal("the bootstrap template has no DataPlaneBoundary managed policy")
	}
	name, _ := res.Properties["ManagedPolicyName"].(string)
	return resolveDocument(t, "DataPlaneBoundary", res.Properties["PolicyDocument"], stackSubst(p.Qualifier)),
		"arn:aws:iam::" + testAccount + ":policy/" + name
}

// accountKeyPolicy lets the account's IAM policies decide on the key, as
// the data plane key's policy does.
var accountKeyPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` +
	testAccount + `:root"},"Action":"kms:*","Resource":"*"}]}`

// statementRequests turns an Allow statement into concrete requests: each
// action on each resource with its wildcards filled, and each condition
// key set to the statement's first value, so the statement itself allows
// every one of them.
func statementRequests(s policy.Statement, principal string) []policy.Request {
	ctx := map[string][]string{}
	for _, keys := range s.Condition {
		for k, vals := range keys {
			ctx[k] = []string{strings.ReplaceAll(vals[0], "*", "x")}
		}
	}
	var out []policy.Request
	for _, a := range s.Action {
		for _, r := range s.Resource {
			if r != "*" {
				r = strings.ReplaceAll(r, "*", "x")
			}
			out = append(out, policy.Request{Action: a, Resource: r, Principal: principal, Context: ctx})
		}
	}
	return out
}

// TestDataPlaneRolesInsideBoundary walks the rendered data plane template:
// every AWS::IAM::Role carries the boundary the bootstrap creates, and
// everything the role's policies grant is inside it; what a role could be
// given beyond that (escalation, other buckets) is not.
func TestDataPlaneRolesInsideBoundary(t *testing.T) {
	keyPolicy := policy.MustParse(accountKeyPolicy)
	hub := "arn:aws:iam::210987654321:role/berth-hub"
	for _, p := range []Params{
		{Qualifier: "acme", HubPrincipal: hub},
		{Qualifier: "acme", Prefix: "releases", ParameterPrefix: "/acme/artifacts", KMSKeyARN: testKeyARN, HubPrincipal: hub},
		{HubPrincipal: hub},
		{Qualifier: "acme"}, // no roles: nothing to check, nothing unbounded
	} {
		q := p.Qualifier
		if q == "" {
			q = policy.DefaultQualifier
		}
		r := stackSubst(q)
		boundary, boundaryARN := bootstrapBoundary(t, p)
		resources := renderResources(t, "dataplane", p)
		var logicals []string
		for l, res := range resources {
			if res.Type == "AWS::IAM::Role" {
				logicals = append(logicals, l)
			}
		}
		sort.Strings(logicals)
		if want := map[bool]int{true: len(policy.HubRoles()), false: 0}[p.HubPrincipal != ""]; len(logicals) != want {
			t.Fatalf("%+v: %d roles, want %d", p, len(logicals), want)
		}
		checked := 0
		for _, logical := range logicals {
			props := resources[logical].Properties
			if got, _ := resolveSub(props["PermissionsBoundary"], r).(string); got != boundaryARN {
				t.Errorf("%s: PermissionsBoundary %q, want the bootstrap's %s", logical, got, boundaryARN)
			}
			name, _ := resolveSub(props["RoleName"], r).(string)
			session := "arn:aws:sts::" + testAccount + ":assumed-role/" + name + "/berth-hub"
			docs := roleDocuments(t, resources, logical, r)
			for _, d := range docs {
				for _, s := range d.Statement {
					if s.Effect != "Allow" {
						continue
					}
					for _, req := range statementRequests(s, session) {
						pol := policy.Policies{Identity: docs, Boundary: boundary}
						if strings.HasPrefix(req.Action, "kms:") {
							pol.Resource = keyPolicy
						}
						dec, err := policy.Evaluate(req, pol)
						if err != nil {
							t.Fatalf("%s: %v", logical, err)
						}
						checked++
						if !dec.Allowed() {
							t.Errorf("%s (%+v): %s %s on %s is outside the boundary: %s %s", logical, p, s.Sid, req.Action, req.Resource, dec.Outcome, dec.Reason)
						}
					}
				}
			}
			// Whatever policy the role were given, the boundary caps it.
			anything := append([]*policy.Document{policy.AdministratorAccessDocument()}, docs...)
			bucket := "arn:aws:s3:::" + q + "-" + testAccount + "-" + testRegion
			for _, c := range []struct{ action, resource string }{
				{"iam:CreateRole", "arn:aws:iam::" + testAccount + ":role/" + q + "-hub-evil"},
				{"iam:PutRolePolicy", "arn:aws:iam::" + testAccount + ":role/" + name},
				{"iam:AttachRolePolicy", "arn:aws:iam::" + testAccount + ":role/" + name},
				{"iam:DeleteRolePermissionsBoundary", "arn:aws:iam::" + testAccount + ":role/" + name},
				{"iam:CreatePolicyVersion", boundaryARN},
				{"iam:PassRole", "arn:aws:iam::" + testAccount + ":role/" + q + "-provisioner"},
				{"sts:AssumeRole", "arn:aws:iam::" + testAccount + ":role/" + q + "-provisioner"},
				{"organizations:LeaveOrganization", "*"},
				{"s3:GetObject", "arn:aws:s3:::prod-data/x"},
				{"s3:DeleteObject", bucket + "/app/1.0.0/data/x"},
				{"s3:PutBucketPolicy", bucket},
				{"kms:ScheduleKeyDeletion", testKeyARN},
			} {
				pol := policy.Policies{Identity: anything, Boundary: boundary}
				if strings.HasPrefix(c.action, "kms:") {
					pol.Resource = keyPolicy
				}
				dec, err := policy.Evaluate(policy.Request{Action: c.action, Resource: c.resource, Principal: session}, pol)
				if err != nil {
					t.Fatal(err)
				}
				if dec.Allowed() {
					t.Errorf("%s: the boundary allows %s on %s", logical, c.action, c.resource)
				}
			}
		}
		if len(logicals) > 0 && checked < 10 {
			t.Errorf("%+v: only %d requests checked", p, checked)
		}
	}
}

// TestProvisionerEscalation: the provisioner of the rendered bootstrap
// creates roles only with the boundary, cannot remove or change it, and a
// role it makes for itself with any policy stays inside the boundary.
func TestProvisionerEscalation(t *testing.T) {
	const q = "acme"
	r := stackSubst(q)
	boot := renderResources(t, "bootstrap", Params{Qualifier: q})
	prov := roleDocuments(t, boot, "ProvisionerRole", r)
	boundary, boundaryARN := bootstrapBoundary(t, Params{Qualifier: q})
	principal := "arn:aws:sts::" + testAccount + ":assumed-role/" + q + "-provisioner/berth-ci"
	role := "arn:aws:iam::" + testAccount + ":role/" + q + "-hub-evil"
	withBoundary := map[string][]string{"iam:PermissionsBoundary": {boundaryARN}}
	other := map[string][]string{"iam:PermissionsBoundary": {"arn:aws:iam::aws:policy/AdministratorAccess"}}
	evilPolicy := "arn:aws:iam::" + testAccount + ":policy/" + q + "-evil"
	for _, c := range []struct {
		name             string
		action, resource string
		ctx              map[string][]string
		want             policy.Outcome
	}{
		{"create a role without the boundary", "iam:CreateRole", role, nil, policy.ImplicitDeny},
		{"create a role with another boundary", "iam:CreateRole", role, other, policy.ImplicitDeny},
		{"create a role with the boundary", "iam:CreateRole", role, withBoundary, policy.Allowed},
		{"set the boundary", "iam:PutRolePermissionsBoundary", role, withBoundary, policy.Allowed},
		{"set another boundary", "iam:PutRolePermissionsBoundary", role, other, policy.ImplicitDeny},
		{"remove the boundary", "iam:DeleteRolePermissionsBoundary", role, withBoundary, policy.ExplicitDeny},
		{"inline policy", "iam:PutRolePolicy", role, withBoundary, policy.ImplicitDeny},
		{"attach its own policy to a bounded role", "iam:AttachRolePolicy", role,
			map[string][]string{"iam:PermissionsBoundary": {boundaryARN}, "iam:PolicyARN": {evilPolicy}}, policy.Allowed},
		{"attach to an unbounded role", "iam:AttachRolePolicy", role, map[string][]string{"iam:PolicyARN": {evilPolicy}}, policy.ImplicitDeny},
		{"re-trust an unbounded role", "iam:UpdateAssumeRolePolicy", role, nil, policy.ImplicitDeny},
		{"write a policy", "iam:CreatePolicy", evilPolicy, nil, policy.Allowed},
		{"new boundary version", "iam:CreatePolicyVersion", boundaryARN, nil, policy.ExplicitDeny},
		{"boundary default version", "iam:SetDefaultPolicyVersion", boundaryARN, nil, policy.ExplicitDeny},
		{"delete the boundary", "iam:DeletePolicy", boundaryARN, nil, policy.ExplicitDeny},
		{"delete a boundary version", "iam:DeletePolicyVersion", boundaryARN, nil, policy.ExplicitDeny},
		{"new version of its own policy", "iam:CreatePolicyVersion", "arn:aws:iam::" + testAccount + ":policy/" + q + "-provisioner-iam", nil, policy.ExplicitDeny},
		{"new version of an artifact policy", "iam:CreatePolicyVersion", "arn:aws:iam::" + testAccount + ":policy/" + q + "-artifact-read-" + testRegion, nil, policy.Allowed},
	} {
		dec, err := policy.Evaluate(policy.Request{Action: c.action, Resource: c.resource, Principal: principal, Context: c.ctx},
			policy.Policies{Identity: prov})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if dec.Outcome != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, dec.Outcome, dec.Reason, c.want)
		}
	}

	// The escalation the boundary closes: a role trusted by the
	// provisioner, holding a policy it wrote that grants everything.
	evil := policy.MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:*","s3:*","sts:*"],"Resource":"*"}]}`)
	session := "arn:aws:sts::" + testAccount + ":assumed-role/" + q + "-hub-evil/x"
	for _, c := range []struct{ action, resource string }{
		{"iam:CreateRole", "arn:aws:iam::" + testAccount + ":role/admin"},
		{"iam:AttachRolePolicy", "arn:aws:iam::" + testAccount + ":role/" + q + "-provisioner"},
		{"sts:AssumeRole", "arn:aws:iam::" + testAccount + ":role/admin"},
		{"s3:GetObject", "arn:aws:s3:::prod-data/secrets"},
		{"s3:PutBucketPolicy", "arn:aws:s3:::" + q + "-" + testAccount + "-" + testRegion},
	} {
		dec, err := policy.Evaluate(policy.Request{Action: c.action, Resource: c.resource, Principal: session},
			policy.Policies{Identity: []*policy.Document{evil}, Boundary: boundary})
		if err != nil {
			t.Fatal(err)
		}
		if dec.Allowed() {
			t.Errorf("a role the provisioner made for itself may %s on %s", c.action, c.resource)
		}
	}
}
