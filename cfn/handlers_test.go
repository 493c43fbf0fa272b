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

// rolePolicy is the inline policy of a role in the rendered bootstrap
// template, with the stack's substitutions filled in: what IAM would hold.
func rolePolicy(t *testing.T, resources map[string]templateResource, logical string, r *strings.Replacer) *policy.Document {
	t.Helper()
	pols, _ := resources[logical].Properties["Policies"].([]any)
	if len(pols) != 1 {
		t.Fatalf("%s: %d inline policies, want 1", logical, len(pols))
	}
	doc := resolveSub(pols[0].(map[string]any)["PolicyDocument"], r)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := policy.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v\n%s", logical, err, b)
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
	for _, c := range cases {
		for logical, r := range renderResources(t, c.kind, c.p) {
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
	} {
		checkRoles(t, handlers, props, p, checked)
	}
	// Guard against a table that silently checks nothing.
	for _, must := range []string{"provisioner s3:PutBucketOwnershipControls", "ops s3:GetBucketOwnershipControls",
		"ops ssm:GetParameters", "ops ssm:ListTagsForResource", "ops kms:ListResourceTags", "provisioner kms:CreateKey"} {
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
	roles := map[string]*policy.Document{
		"provisioner": rolePolicy(t, boot, "ProvisionerRole", subst),
		"ops":         rolePolicy(t, boot, "OpsRole", subst),
	}
	keyARN := "arn:aws:kms:" + region + ":" + account + ":key/0b2c1f8e-1111-2222-3333-444455556666"
	// The key policy the data plane template gives its key: the account
	// administers it through IAM, so the roles' policies decide.
	keyPolicy := policy.MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"}]}`)

	// request is the call a handler makes for action on the resource of typ.
	request := func(logical, typ, action, role string) (policy.Request, policy.Policies) {
		req := policy.Request{Action: action, Principal: "arn:aws:sts::" + account + ":assumed-role/" + qualifier + "-" + role + "/berth-ci",
			Context: map[string][]string{}}
		pol := policy.Policies{Identity: []*policy.Document{roles[role]}}
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
			t.Fatalf("no resource ARN for %s", typ)
		}
		return req, pol
	}
	iam := iamdata.MustLoad()
	check := func(role, what, logical, typ, action string) {
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
		req, pol := request(logical, typ, action, role)
		d, err := policy.Evaluate(req, pol)
		if err != nil {
			t.Errorf("%s: %s: %v", role, what, err)
			return
		}
		if !d.Allowed() {
			t.Errorf("qualifier %s: %s role is denied %s on %s (%s): %s %s", qualifier, role, action, req.Resource, what, d.Outcome, d.Reason)
		}
	}

	resources := renderResources(t, "dataplane", p)
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
					check("provisioner", hn+" "+logical+" ("+why+")", logical, r.Type, a)
					checked["provisioner "+a] = true
				}
			}
		}
		for _, a := range h["read"] {
			a = normAction(a)
			check("ops", "read "+logical, logical, r.Type, a)
			checked["ops "+a] = true
		}
	}
}
