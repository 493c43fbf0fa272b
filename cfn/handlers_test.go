package cfn

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/policy"
	"github.com/berth-dev/berth/policy/iamdata"
)

// handlerTable is cfn/testdata/handlers.json: the handlers section of each
// resource type's registry schema (see testdata/HANDLERS.md).
type handlerTable struct {
	Source string `json:"source"`
	Types  map[string]struct {
		Handlers map[string][]string `json:"handlers"`
	} `json:"types"`
}

// propertyTable is cfn/testdata/properties.json: which handler actions each
// property needs.
type propertyTable struct {
	AuthorizedAs map[string]string `json:"authorizedAs"`
	Types        map[string]struct {
		Always       []string            `json:"always"`
		Properties   map[string][]string `json:"properties"`
		Unattributed map[string]string   `json:"unattributed"`
		// OpsNotGranted are read handler actions ops is not given.
		OpsNotGranted map[string]string `json:"opsNotGranted"`
	} `json:"types"`
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// normAction lower-cases the service prefix (schemas write "S3:GetBucketWebsite").
func normAction(a string) string {
	svc, name, _ := strings.Cut(a, ":")
	return strings.ToLower(svc) + ":" + name
}

type templateResource struct {
	Type       string
	Properties map[string]any
}

func renderResources(t *testing.T, kind string, p Params) map[string]templateResource {
	t.Helper()
	b, _, err := RenderKind(kind, p, JSON)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct{ Resources map[string]templateResource }
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl.Resources
}

// resolveSub replaces {"Fn::Sub": "..."} with the string after substitution.
func resolveSub(v any, r *strings.Replacer) any {
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x["Fn::Sub"].(string); ok && len(x) == 1 {
			return r.Replace(s)
		}
		for k := range x {
			x[k] = resolveSub(x[k], r)
		}
	case []any:
		for i := range x {
			x[i] = resolveSub(x[i], r)
		}
	}
	return v
}

// roleDocuments are the identity policies of a role in a rendered
// template, with the stack's substitutions filled in, as IAM would hold
// them: its inline policies, then the managed policies of the template it
// attaches (Ref); it fails on any other attached policy.
func roleDocuments(t *testing.T, resources map[string]templateResource, logical string, r *strings.Replacer) []*policy.Document {
	t.Helper()
	props := resources[logical].Properties
	var raw []any
	pols, _ := props["Policies"].([]any)
	for _, p := range pols {
		raw = append(raw, p.(map[string]any)["PolicyDocument"])
	}
	arns, _ := props["ManagedPolicyArns"].([]any)
	for _, a := range arns {
		ref, _ := a.(map[string]any)["Ref"].(string)
		mp, ok := resources[ref]
		if !ok || mp.Type != "AWS::IAM::ManagedPolicy" {
			t.Fatalf("%s attaches %v, which is no managed policy of the template", logical, a)
		}
		raw = append(raw, mp.Properties["PolicyDocument"])
	}
	if len(raw) == 0 {
		t.Fatalf("%s: no policies", logical)
	}
	var out []*policy.Document
	for _, doc := range raw {
		out = append(out, resolveDocument(t, logical, doc, r))
	}
	return out
}

// resolveDocument parses a policy document of a template after substitution.
func resolveDocument(t *testing.T, what string, doc any, r *strings.Replacer) *policy.Document {
	t.Helper()
	b, err := json.Marshal(resolveSub(doc, r))
	if err != nil {
		t.Fatal(err)
	}
	d, err := policy.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, b)
	}
	return d
}

// TestHandlerPermissions checks that the bootstrap roles can do what
// CloudFormation's handlers do for the data plane template: the provisioner
// creates and updates every property the template sets, the ops role runs
// every read handler (drift detection).
func TestHandlerPermissions(t *testing.T) {
	var handlers handlerTable
	var props propertyTable
	readJSON(t, "handlers.json", &handlers)
	readJSON(t, "properties.json", &props)
	if handlers.Source == "" {
		t.Error("handlers.json does not name its source")
	}

	// The property table classifies every create, update and read action
	// of the schemas, and names no action the schemas do not list.
	for typ, h := range handlers.Types {
		pt, ok := props.Types[typ]
		if !ok {
			t.Errorf("%s: not in properties.json", typ)
			continue
		}
		listed := map[string]bool{}
		for _, acts := range h.Handlers {
			for _, a := range acts {
				listed[normAction(a)] = true
			}
		}
		classified := map[string]bool{}
		for _, a := range pt.Always {
			classified[normAction(a)] = true
		}
		for _, acts := range pt.Properties {
			for _, a := range acts {
				classified[normAction(a)] = true
			}
		}
		for a := range pt.Unattributed {
			classified[normAction(a)] = true
		}
		read := map[string]bool{}
		for _, a := range h.Handlers["read"] {
			read[normAction(a)] = true
		}
		for a := range pt.OpsNotGranted {
			if !read[normAction(a)] {
				t.Errorf("%s: opsNotGranted names %s, which the read handler does not list", typ, a)
			}
		}
		for a := range classified {
			if !listed[a] {
				t.Errorf("%s: properties.json names %s, which no handler of the schema lists", typ, a)
			}
		}
		for _, hn := range []string{"create", "update", "read"} {
			for _, a := range h.Handlers[hn] {
				if !classified[normAction(a)] {
					t.Errorf("%s: %s handler action %s is not classified in properties.json", typ, hn, a)
				}
			}
		}
	}

	// Every resource type and property the templates set is classified.
	type rendered struct {
		name      string
		resources map[string]templateResource
	}
	var all []rendered
	for _, c := range cases {
		all = append(all, rendered{c.name, renderResources(t, c.kind, c.p)})
	}
	for _, c := range networkCases {
		b, err := RenderNetworkKind(c.kind, c.np, c.ap, JSON)
		if err != nil {
			t.Fatal(err)
		}
		var tmpl struct{ Resources map[string]templateResource }
		if err := json.Unmarshal(b, &tmpl); err != nil {
			t.Fatal(err)
		}
		all = append(all, rendered{c.name, tmpl.Resources})
	}
	for _, c := range all {
		for logical, r := range c.resources {
			pt, ok := props.Types[r.Type]
			if _, inSchemas := handlers.Types[r.Type]; !ok || !inSchemas {
				t.Errorf("%s: %s is %s, which handlers.json or properties.json lacks (regenerate, see testdata/HANDLERS.md)", c.name, logical, r.Type)
				continue
			}
			for prop := range r.Properties {
				if _, ok := pt.Properties[prop]; !ok {
					t.Errorf("%s: %s.%s is not classified in properties.json", c.name, logical, prop)
				}
			}
		}
	}

	checked := map[string]bool{}
	for _, p := range []Params{
		{},
		{Qualifier: "acme", ParameterPrefix: "/acme/artifacts"},
		{Qualifier: "acme", KMSKeyARN: "arn:aws:kms:eu-west-1:123456789012:key/0b2c1f8e-1111-2222-3333-444455556666"},
		{Qualifier: "acme", HubPrincipal: "arn:aws:iam::210987654321:role/berth-hub"},
	} {
		checkRoles(t, handlers, props, p, checked)
	}
	// Guard against a table that silently checks nothing.
	for _, must := range []string{"provisioner s3:PutBucketOwnershipControls", "ops s3:GetBucketOwnershipControls",
		"ops ssm:GetParameters", "ops ssm:ListTagsForResource", "ops kms:ListResourceTags", "provisioner kms:CreateKey",
		"provisioner iam:CreateRole", "provisioner iam:AttachRolePolicy", "provisioner iam:PutRolePermissionsBoundary", "ops iam:ListAttachedRolePolicies",
		"provisioner ec2:CreateVpc", "provisioner ec2:CreateSubnet", "provisioner ec2:CreateVpcPeeringConnection", "provisioner sts:AssumeRole",
		"provisioner ec2:CreateTags", "provisioner ec2:DeleteTags", "provisioner ec2:ModifyVpcEndpointServicePermissions", "ops ec2:DescribeVpcAttribute"} {
		if !checked[must] {
			t.Errorf("%s was not checked", must)
		}
	}
	t.Logf("%d role/action pairs checked from %s", len(checked), handlers.Source)
}

// checkRoles renders the bootstrap and data plane templates with p and has
// the simulator check the provisioner's create and update and ops's read
// handler actions; it records the role/action pairs checked.
func checkRoles(t *testing.T, handlers handlerTable, props propertyTable, p Params, checked map[string]bool) {
	const (
		account = "123456789012"
		region  = "eu-west-1"
	)
	qualifier, paramPrefix := p.Qualifier, p.ParameterPrefix
	if qualifier == "" {
		qualifier = policy.DefaultQualifier
	}
	if paramPrefix == "" {
		paramPrefix = "/" + qualifier
	}
	subst := strings.NewReplacer("${AWS::Partition}", "aws", "${AWS::AccountId}", account, "${AWS::Region}", region,
		"${TrustPrincipal}", "arn:aws:iam::210987654321:role/vendor", "${ExternalId}", "ext-1")
	boot := renderResources(t, "bootstrap", Params{Qualifier: p.Qualifier, ParameterPrefix: p.ParameterPrefix, KMSKeyARN: p.KMSKeyARN})
	roles := map[string][]*policy.Document{
		"provisioner": roleDocuments(t, boot, "ProvisionerRole", subst),
		"ops":         roleDocuments(t, boot, "OpsRole", subst),
	}
	keyARN := "arn:aws:kms:" + region + ":" + account + ":key/0b2c1f8e-1111-2222-3333-444455556666"
	// The key policy the data plane template gives its key: the account
	// administers it through IAM, so the roles' policies decide.
	keyPolicy := policy.MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"}]}`)

	resources := renderResources(t, "dataplane", p)
	// request is the call a handler makes for action on the resource of typ.
	iamTable := iamdata.MustLoad()
	request := func(logical, typ, action, role, handler string) (policy.Request, policy.Policies) {
		req := policy.Request{Action: action, Principal: "arn:aws:sts::" + account + ":assumed-role/" + qualifier + "-" + role + "/berth-ci",
			Context: map[string][]string{}}
		pol := policy.Policies{Identity: roles[role]}
		tag := "aws:ResourceTag/" + policy.QualifierTagKey
		switch typ {
		case "AWS::S3::Bucket", "AWS::S3::BucketPolicy":
			req.Resource = "arn:aws:s3:::" + qualifier + "-" + account + "-" + region
			if strings.HasPrefix(logical, "Cache") {
				req.Resource = "arn:aws:s3:::" + qualifier + "-cache-" + account + "-" + region
			}
		case "AWS::SSM::Parameter":
			req.Resource = "arn:aws:ssm:" + region + ":" + account + ":parameter" + paramPrefix + "/bucket"
		case "AWS::IAM::ManagedPolicy":
			req.Resource = "arn:aws:iam::" + account + ":policy/" + qualifier + "-artifact-read-" + region
		case "AWS::IAM::Role":
			if action == "sts:AssumeRole" { // PeerRoleArn
				req.Resource = "arn:aws:iam::444455556666:role/" + PeeringAccepterRoleName(qualifier)
				break
			}
			req.Resource = "arn:aws:iam::" + account + ":role/" + policy.HubRoleName(qualifier, "reader", region)
			// The role has (or, for CreateRole and PutRolePermissionsBoundary,
			// asks for) the boundary the template sets.
			if b, ok := resolveSub(resources[logical].Properties["PermissionsBoundary"], subst).(string); ok {
				req.Context["iam:PermissionsBoundary"] = []string{b}
			}
			if action == "iam:AttachRolePolicy" || action == "iam:DetachRolePolicy" {
				req.Context["iam:PolicyARN"] = []string{"arn:aws:iam::" + account + ":policy/" + qualifier + "-artifact-read-" + region}
			}
		case "AWS::KMS::Key":
			req.Resource, pol.Resource = keyARN, keyPolicy
			req.Context[tag] = []string{qualifier}
			switch action {
			case "kms:CreateKey":
				req.Resource, pol.Resource = "*", nil
				delete(req.Context, tag)
				fallthrough
			case "kms:TagResource":
				req.Context["aws:RequestTag/"+policy.QualifierTagKey] = []string{qualifier}
				req.Context["aws:TagKeys"] = []string{policy.QualifierTagKey}
			case "kms:UntagResource":
				req.Context["aws:TagKeys"] = []string{"team"} // a tag the template no longer sets
			}
		default:
			if !strings.HasPrefix(typ, "AWS::EC2::") {
				t.Fatalf("no resource ARN for %s", typ)
			}
			ec2Request(&req, iamTable, typ, action, handler, qualifier)
			if action == "sts:AssumeRole" {
				// PeerRoleArn: the accepter role in the peer account, whose
				// trust (the peering-accepter template) decides too.
				req.Resource = "arn:aws:iam::444455556666:role/" + PeeringAccepterRoleName(qualifier)
				req.Context = map[string][]string{"aws:PrincipalArn": {"arn:aws:iam::" + account + ":role/" + qualifier + "-provisioner"}}
				pol.Trust = accepterTrust(t, qualifier, account)
			}
		}
		return req, pol
	}
	iam := iamdata.MustLoad()
	check := func(role, what, handler, logical, typ, action string) {
		// Some schemas list API operations, not IAM actions: S3 authorizes
		// DeleteBucketEncryption as s3:PutEncryptionConfiguration.
		if as, ok := props.AuthorizedAs[action]; ok {
			what += ", " + action + " is authorized as " + as
			action = as
		}
		if _, ok := iam.Action(action); !ok {
			t.Errorf("%s: %s is no IAM action: add it to authorizedAs in properties.json", what, action)
			return
		}
		req, pol := request(logical, typ, action, role, handler)
		d, err := policy.Evaluate(req, pol)
		if err != nil {
			t.Errorf("%s: %s: %v", role, what, err)
			return
		}
		if !d.Allowed() {
			t.Errorf("qualifier %s: %s role is denied %s on %s (%s): %s %s", qualifier, role, action, req.Resource, what, d.Outcome, d.Reason)
		}
	}

	// The network stack is deployed by the same provisioner.
	np := networkCases[1].np
	np.Qualifier = p.Qualifier
	for i := range np.Peers {
		np.Peers[i].RoleARN = "arn:aws:iam::444455556666:role/" + PeeringAccepterRoleName(qualifier)
	}
	b, err := RenderNetworkKind("network", np, AccepterParams{}, JSON)
	if err != nil {
		t.Fatal(err)
	}
	var network struct{ Resources map[string]templateResource }
	if err := json.Unmarshal(b, &network); err != nil {
		t.Fatal(err)
	}
	for l, r := range network.Resources {
		resources["Network"+l] = r
	}
	var logicals []string
	for l := range resources {
		logicals = append(logicals, l)
	}
	sort.Strings(logicals)
	for _, logical := range logicals {
		r := resources[logical]
		h, pt := handlers.Types[r.Type].Handlers, props.Types[r.Type]
		need := map[string]string{}
		for _, a := range pt.Always {
			need[normAction(a)] = "every create and update"
		}
		for prop := range r.Properties {
			for _, a := range pt.Properties[prop] {
				need[normAction(a)] = prop
			}
		}
		for _, hn := range []string{"create", "update"} {
			for _, a := range h[hn] {
				a = normAction(a)
				if why, ok := need[a]; ok {
					check("provisioner", hn+" "+logical+" ("+why+")", hn, logical, r.Type, a)
					checked["provisioner "+a] = true
				}
			}
		}
		for _, a := range h["read"] {
			if _, no := pt.OpsNotGranted[a]; no {
				continue
			}
			a = normAction(a)
			check("ops", "read "+logical, "read", logical, r.Type, a)
			checked["ops "+a] = true
		}
	}
}

// ec2Request fills in the resource and context of an EC2 handler call as
// IAM sees it: wildcard-only actions on "*"; a create on the resource it
// creates, with the template's tags as request tags; anything else on an
// existing network resource carrying the qualifier tag. Tagging during a
// create carries ec2:CreateAction.
func ec2Request(req *policy.Request, iam *iamdata.Table, typ, action, handler, qualifier string) {
	a, ok := iam.Action(action)
	if !ok || a.WildcardOnly() {
		req.Resource = "*"
		return
	}
	creates := map[string]string{"ec2:CreateVpc": "vpc", "ec2:CreateSubnet": "subnet", "ec2:CreateRouteTable": "route-table",
		"ec2:CreateSecurityGroup": "security-group", "ec2:CreateVpcEndpoint": "vpc-endpoint",
		"ec2:CreateVpcPeeringConnection": "vpc-peering-connection", "ec2:CreateVpcEndpointServiceConfiguration": "vpc-endpoint-service"}
	arn := func(typ string) string {
		return "arn:aws:ec2:eu-west-1:123456789012:" + typ + "/" + strings.ReplaceAll(typ, "-", "") + "-0123456789abcdef0"
	}
	requestTags := func() {
		req.Context["aws:RequestTag/"+policy.QualifierTagKey] = []string{qualifier}
		req.Context["aws:RequestTag/Name"] = []string{qualifier + "-x"}
		req.Context["aws:TagKeys"] = []string{policy.QualifierTagKey, "Name"}
	}
	if typ, ok := creates[action]; ok {
		req.Resource = arn(typ)
		requestTags()
		return
	}
	// The EC2 resource type of each network resource type.
	ec2Type := map[string]string{"AWS::EC2::VPC": "vpc", "AWS::EC2::Subnet": "subnet", "AWS::EC2::RouteTable": "route-table",
		"AWS::EC2::SecurityGroup": "security-group", "AWS::EC2::VPCEndpoint": "vpc-endpoint",
		"AWS::EC2::VPCPeeringConnection": "vpc-peering-connection", "AWS::EC2::VPCEndpointService": "vpc-endpoint-service"}
	switch {
	case action == "ec2:CreateTags" && handler == "create":
		// Tags a create handler sets are part of the create call.
		for create, res := range creates {
			if res == ec2Type[typ] {
				req.Resource = arn(res)
				req.Context["ec2:CreateAction"] = []string{strings.TrimPrefix(create, "ec2:")}
				requestTags()
				return
			}
		}
		panic("no create action for " + typ)
	case action == "ec2:CreateTags" || action == "ec2:DeleteTags":
		req.Resource = arn(ec2Type[typ])
	default:
		// The first required resource type of the action (iamdata marks them "*").
		for _, rt := range a.ResourceTypes {
			if strings.HasSuffix(rt, "*") {
				req.Resource = arn(strings.TrimSuffix(rt, "*"))
				break
			}
		}
	}
	req.Context["aws:ResourceTag/"+policy.QualifierTagKey] = []string{qualifier}
	switch action {
	case "ec2:CreateTags":
		requestTags()
	case "ec2:DeleteTags":
		req.Context["aws:TagKeys"] = []string{"team"} // a tag the template no longer sets
	}
}

// accepterTrust is the trust policy of the peering-accepter template for
// the data plane account, substituted as IAM would hold it.
func accepterTrust(t *testing.T, qualifier, dataPlaneAccount string) *policy.Document {
	t.Helper()
	b, err := RenderNetworkKind("peering-accepter", NetworkParams{}, AccepterParams{Qualifier: qualifier, DataPlaneAccount: dataPlaneAccount,
		VPCID: "vpc-0a1b2c3d", DataPlaneCIDR: "10.40.0.0/16"}, JSON)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct{ Resources map[string]templateResource }
	if err := json.Unmarshal(b, &tmpl); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("${AWS::Partition}", "aws", "${AWS::AccountId}", "444455556666", "${AWS::Region}", "eu-west-1")
	doc := resolveSub(tmpl.Resources["AccepterRole"].Properties["AssumeRolePolicyDocument"], r)
	js, _ := json.Marshal(doc)
	d, err := policy.Parse(js)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestProvisionerEC2Exact: every EC2 (and sts, cloudwatch) action the
// bootstrap roles grant is one a handler of the network template's
// resource types calls, and ops gets none that writes: nothing broader than
// the schemas ask for. The linter passes the roles (TestTemplates), and
// TestHandlerPermissions has the simulator allow what is needed.
func TestProvisionerEC2Exact(t *testing.T) {
	var handlers handlerTable
	var props propertyTable
	readJSON(t, "handlers.json", &handlers)
	readJSON(t, "properties.json", &props)
	listed := map[string]bool{}
	for typ, h := range handlers.Types {
		if !strings.HasPrefix(typ, "AWS::EC2::") {
			continue
		}
		for _, acts := range h.Handlers {
			for _, a := range acts {
				a = normAction(a)
				if as, ok := props.AuthorizedAs[a]; ok {
					a = as
				}
				listed[a] = true
			}
		}
	}
	subst := strings.NewReplacer("${AWS::Partition}", "aws", "${AWS::AccountId}", "123456789012", "${AWS::Region}", "eu-west-1",
		"${TrustPrincipal}", "arn:aws:iam::210987654321:role/vendor", "${ExternalId}", "ext-1")
	boot := renderResources(t, "bootstrap", Params{})
	n := 0
	for _, role := range []string{"ProvisionerRole", "OpsRole"} {
		var statements []policy.Statement
		for _, d := range roleDocuments(t, boot, role, subst) {
			statements = append(statements, d.Statement...)
		}
		for _, s := range statements {
			if s.Effect != "Allow" {
				continue
			}
			for _, a := range s.Action {
				svc, name, _ := strings.Cut(a, ":")
				if svc != "ec2" && svc != "cloudwatch" && a != "sts:AssumeRole" {
					continue
				}
				n++
				if !listed[a] {
					t.Errorf("%s grants %s, which no EC2 handler calls", role, a)
				}
				if role == "OpsRole" && !strings.HasPrefix(name, "Describe") && !strings.HasPrefix(name, "List") {
					t.Errorf("ops grants %s, which is no read", a)
				}
			}
		}
	}
	if n < 40 {
		t.Errorf("only %d EC2 actions found", n)
	}
}
