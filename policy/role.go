package policy

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// RoleFile is a role as `berth policy render provisioner|ops` prints it: the
// properties of an AWS::IAM::Role, which the simulator takes apart so users
// need not.
type RoleFile struct {
	Trust *Document
	// Policies are the role's identity policies in file order: the inline
	// ones, then those of ManagedPolicies (berth's addition: the customer
	// managed policies created with the role and attached to it).
	Policies            []*Document
	ManagedPolicyARNs   []string
	PermissionsBoundary string // an ARN: the document is not in the file
}

// ErrNotRole is returned by ParseRole for a document without
// AssumeRolePolicyDocument (a plain policy, for example).
var ErrNotRole = errors.New("not a role (no AssumeRolePolicyDocument)")

// ParseRole parses a role file in JSON or YAML. Errors other than
// ErrNotRole are *ParseError with a line and column.
func ParseRole(data []byte) (*RoleFile, error) {
	root, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode || lookup(root, "AssumeRolePolicyDocument") == nil {
		return nil, ErrNotRole
	}
	entries, err := mapEntries(root, "")
	if err != nil {
		return nil, err
	}
	r := &RoleFile{}
	for _, e := range entries {
		k, v := e[0], e[1]
		switch k.Value {
		case "AssumeRolePolicyDocument":
			if r.Trust, err = decodeDocument(v, k.Value, nil); err != nil {
				return nil, err
			}
		case "ManagedPolicyArns":
			vals, err := values(v, k.Value, nil)
			if err != nil {
				return nil, err
			}
			r.ManagedPolicyARNs = vals
		case "PermissionsBoundary":
			if r.PermissionsBoundary, err = scalar(v, k.Value, nil); err != nil {
				return nil, err
			}
		case "Policies", "ManagedPolicies":
			name := "PolicyName"
			if k.Value == "ManagedPolicies" {
				name = "ManagedPolicyName"
			}
			if v.Kind != yaml.SequenceNode {
				return nil, nodeErr(v, k.Value, "expected a list of {%s, PolicyDocument}, found %s", name, kindName(v))
			}
			for i, item := range v.Content {
				p := fmt.Sprintf("%s[%d]", k.Value, i)
				d := lookup(item, "PolicyDocument")
				if item.Kind != yaml.MappingNode || d == nil {
					return nil, nodeErr(item, p, "expected {%s, PolicyDocument}", name)
				}
				doc, err := decodeDocument(d, p+".PolicyDocument", nil)
				if err != nil {
					return nil, err
				}
				r.Policies = append(r.Policies, doc)
			}
		default:
			// Other AWS::IAM::Role properties (RoleName, Tags, ...) do not
			// take part in evaluation.
		}
	}
	return r, nil
}

// AdministratorAccessDocument is the content of AWS's AdministratorAccess
// managed policy, so a role file attaching it can be simulated.
func AdministratorAccessDocument() *Document {
	return doc(Statement{Effect: "Allow", Action: Values{"*"}, Resource: Values{"*"}})
}

// TrustApplies reports whether a role's trust policy is the resource policy
// of action (sts:AssumeRole*, sts:TagSession and the like).
func TrustApplies(action string) bool { return usesTrust(action) }
