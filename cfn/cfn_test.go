package cfn

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"

	"github.com/berth-dev/berth/internal/golden"
	"github.com/berth-dev/berth/policy"
)

var cases = []struct {
	name, kind string
	p          Params
}{
	{"dataplane", "dataplane", Params{}},
	{"dataplane-given-key", "dataplane", Params{Qualifier: "acme", Prefix: "releases", ParameterPrefix: "/acme/artifacts",
		KMSKeyARN: "arn:aws:kms:eu-west-1:123456789012:key/0b2c1f8e-1111-2222-3333-444455556666"}},
	{"dataplane-hub", "dataplane", Params{Qualifier: "acme", HubPrincipal: "arn:aws:iam::210987654321:role/berth-hub"}},
	{"bootstrap", "bootstrap", Params{}},
	{"bootstrap-admin-boundary", "bootstrap", Params{Qualifier: "acme", Administrator: true,
		PermissionsBoundary: "arn:aws:iam::123456789012:policy/boundary"}},
}

func TestTemplates(t *testing.T) {
	for _, c := range cases {
		for _, f := range []Format{YAML, JSON} {
			out, warnings, err := RenderKind(c.kind, c.p, f)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if c.p.Administrator != (len(warnings) > 0) {
				t.Errorf("%s: warnings %v", c.name, warnings)
			}
			name := c.name + "." + string(f)
			golden.Check(t, name, out)

			// Parse back with goformation (which also runs its intrinsic
			// processor over the template).
			parse := goformation.ParseJSON
			if f == YAML {
				parse = goformation.ParseYAML
			}
			tmpl, err := parse(out)
			if err != nil {
				t.Fatalf("%s: goformation cannot parse it back: %v", name, err)
			}
			if len(tmpl.Resources) == 0 {
				t.Errorf("%s: no resources after parsing back", name)
			}
			js, _, _ := RenderKind(c.kind, c.p, JSON)
			checkReferences(t, name, js)

			// Everything berth renders lints clean (AdministratorAccess
			// only with its warning).
			fs, err := policy.Lint(name, out)
			if err != nil {
				t.Fatal(err)
			}
			for _, fd := range fs {
				if c.p.Administrator && fd.ID == "admin-access" {
					continue
				}
				t.Errorf("%s", fd)
			}
		}
	}
}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

// checkReferences resolves every Ref, Fn::GetAtt and Fn::Sub variable in a
// JSON template against its parameters, resources and pseudo parameters.
func checkReferences(t *testing.T, name string, js []byte) {
	t.Helper()
	var tmpl struct {
		Parameters map[string]any
		Resources  map[string]struct {
			Type string
		}
	}
	if err := json.Unmarshal(js, &tmpl); err != nil {
		t.Fatal(err)
	}
	known := func(id string) bool {
		if strings.HasPrefix(id, "AWS::") {
			return true
		}
		_, p := tmpl.Parameters[id]
		_, r := tmpl.Resources[id]
		return p || r
	}
	attrs := map[string][]string{"AWS::S3::Bucket": {"Arn", "DomainName"}, "AWS::KMS::Key": {"Arn", "KeyId"},
		"AWS::IAM::Role": {"Arn", "RoleId"}, "AWS::SSM::Parameter": {"Type", "Value"}}
	getAtt := func(res, attr string) {
		r, ok := tmpl.Resources[res]
		if !ok {
			t.Errorf("%s: GetAtt of unknown resource %s", name, res)
			return
		}
		for _, a := range attrs[r.Type] {
			if a == attr {
				return
			}
		}
		t.Errorf("%s: GetAtt %s.%s: %s has no such attribute here", name, res, attr, r.Type)
	}
	var root any
	_ = json.Unmarshal(js, &root)
	n := 0
	var walk func(any)
	walk = func(x any) {
		switch v := x.(type) {
		case map[string]any:
			for k, arg := range v {
				switch k {
				case "Ref":
					n++
					if !known(arg.(string)) {
						t.Errorf("%s: Ref to unknown %v", name, arg)
					}
				case "Fn::GetAtt":
					n++
					parts := arg.([]any)
					getAtt(parts[0].(string), parts[1].(string))
				case "Fn::Sub":
					for _, m := range subVar.FindAllStringSubmatch(arg.(string), -1) {
						n++
						res, attr, ok := strings.Cut(m[1], ".")
						if ok {
							getAtt(res, attr)
						} else if !known(res) {
							t.Errorf("%s: Fn::Sub ${%s} is unknown", name, m[1])
						}
					}
				}
				walk(arg)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(root)
	if n == 0 {
		t.Errorf("%s: no references found", name)
	}
}

func TestNames(t *testing.T) {
	if _, err := DeriveNames("acme", ""); err != nil {
		t.Error(err)
	}
	if _, err := DataPlane(Params{Qualifier: "Bad_Q"}); err == nil {
		t.Error("bad qualifier accepted")
	}
	if _, err := DeriveNames(strings.Repeat("q", 40), ""); err == nil {
		t.Error("long qualifier accepted")
	}
	if _, _, err := RenderKind("nope", Params{}, YAML); err == nil {
		t.Error("unknown kind accepted")
	}
}
