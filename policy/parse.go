package policy

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Parse parses a policy document in JSON or YAML. It accepts the forms AWS
// accepts (a single string for a list, a single statement for a list) and
// refuses what AWS refuses (unknown elements, Action with NotAction, a bad
// Effect). Errors are *ParseError with a line and column.
func Parse(data []byte) (*Document, error) {
	root, err := parseTree(data)
	if err != nil {
		return nil, err
	}
	return decodeDocument(root, "", nil)
}

// MustParse is Parse for tests and literals; it panics on error.
func MustParse(data string) *Document {
	d, err := Parse([]byte(data))
	if err != nil {
		panic(err)
	}
	return d
}

// stringer turns a non-scalar node (a CloudFormation intrinsic function) into
// the string it stands for; nil outside templates.
type stringer func(n *yaml.Node) (string, bool)

func decodeDocument(n *yaml.Node, path string, str stringer) (*Document, error) {
	entries, err := mapEntries(n, path)
	if err != nil {
		return nil, err
	}
	d := &Document{}
	var sawStatement bool
	for _, e := range entries {
		k, v := e[0], e[1]
		p := join(path, k.Value)
		switch k.Value {
		case "Version":
			if d.Version, err = scalar(v, p, str); err != nil {
				return nil, err
			}
			if d.Version != Version2012 && d.Version != "2008-10-17" {
				return nil, nodeErr(v, p, "unknown policy version %q (use %q)", d.Version, Version2012)
			}
		case "Id":
			if d.ID, err = scalar(v, p, str); err != nil {
				return nil, err
			}
		case "Statement":
			sawStatement = true
			items := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				items = v.Content
			}
			for i, item := range items {
				sp := fmt.Sprintf("%s[%d]", p, i)
				if v.Kind != yaml.SequenceNode {
					sp = p
				}
				s, err := decodeStatement(item, sp, str)
				if err != nil {
					return nil, err
				}
				d.Statement = append(d.Statement, *s)
			}
		default:
			return nil, nodeErr(k, p, "unknown policy element %q (expected Version, Id or Statement)", k.Value)
		}
	}
	if !sawStatement {
		return nil, nodeErr(n, path, "policy has no Statement")
	}
	return d, nil
}

func decodeStatement(n *yaml.Node, path string, str stringer) (*Statement, error) {
	entries, err := mapEntries(n, path)
	if err != nil {
		return nil, err
	}
	s := &Statement{Pos: Pos{n.Line, n.Column}}
	seen := map[string]bool{}
	for _, e := range entries {
		k, v := e[0], e[1]
		p := join(path, k.Value)
		seen[k.Value] = true
		switch k.Value {
		case "Sid":
			s.Sid, err = scalar(v, p, str)
		case "Effect":
			s.Effect, err = scalar(v, p, str)
			if err == nil && s.Effect != "Allow" && s.Effect != "Deny" {
				err = nodeErr(v, p, "Effect must be Allow or Deny, not %q", s.Effect)
			}
		case "Principal":
			s.Principal, err = decodePrincipal(v, p, str)
		case "NotPrincipal":
			s.NotPrincipal, err = decodePrincipal(v, p, str)
		case "Action":
			s.Action, err = nonEmptyValues(v, p, str, "Action")
		case "NotAction":
			s.NotAction, err = nonEmptyValues(v, p, str, "NotAction")
		case "Resource":
			s.Resource, err = nonEmptyValues(v, p, str, "Resource")
		case "NotResource":
			s.NotResource, err = nonEmptyValues(v, p, str, "NotResource")
		case "Condition":
			s.Condition, err = decodeCondition(v, p, str)
		default:
			err = nodeErr(k, p, "unknown statement element %q", k.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case !seen["Effect"]:
		return nil, nodeErr(n, path, "statement has no Effect")
	case seen["Action"] && seen["NotAction"]:
		return nil, nodeErr(n, path, "statement has both Action and NotAction")
	case !seen["Action"] && !seen["NotAction"]:
		return nil, nodeErr(n, path, "statement has neither Action nor NotAction")
	case seen["Resource"] && seen["NotResource"]:
		return nil, nodeErr(n, path, "statement has both Resource and NotResource")
	case seen["Principal"] && seen["NotPrincipal"]:
		return nil, nodeErr(n, path, "statement has both Principal and NotPrincipal")
	}
	return s, nil
}

func decodePrincipal(n *yaml.Node, path string, str stringer) (*Principal, error) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" && !isIntrinsic(n) {
		if n.Value != "*" {
			return nil, nodeErr(n, path, "principal must be \"*\" or an object such as {\"AWS\": \"ARN\"}, not %q", n.Value)
		}
		return &Principal{All: true}, nil
	}
	entries, err := mapEntries(n, path)
	if err != nil {
		return nil, err
	}
	p := &Principal{IDs: map[string]Values{}}
	for _, e := range entries {
		k, v := e[0], e[1]
		switch k.Value {
		case "AWS", "Service", "Federated", "CanonicalUser":
		default:
			return nil, nodeErr(k, join(path, k.Value), "unknown principal type %q (expected AWS, Service, Federated or CanonicalUser)", k.Value)
		}
		vals, err := values(v, join(path, k.Value), str)
		if err != nil {
			return nil, err
		}
		p.IDs[k.Value] = vals
	}
	return p, nil
}

func decodeCondition(n *yaml.Node, path string, str stringer) (Condition, error) {
	entries, err := mapEntries(n, path)
	if err != nil {
		return nil, err
	}
	c := Condition{}
	for _, e := range entries {
		op, body := e[0], e[1]
		p := join(path, op.Value)
		keys, err := mapEntries(body, p)
		if err != nil {
			return nil, err
		}
		m := map[string]Values{}
		for _, kv := range keys {
			vals, err := values(kv[1], join(p, kv[0].Value), str)
			if err != nil {
				return nil, err
			}
			m[kv[0].Value] = vals
		}
		c[op.Value] = m
	}
	return c, nil
}

// nonEmptyValues is values for elements IAM refuses as an empty list.
func nonEmptyValues(n *yaml.Node, path string, str stringer, name string) (Values, error) {
	v, err := values(n, path, str)
	if err == nil && len(v) == 0 {
		err = nodeErr(n, path, "%s is an empty list; name at least one, or leave %s out", name, name)
	}
	return v, err
}

// values accepts a scalar or a list of scalars.
func values(n *yaml.Node, path string, str stringer) (Values, error) {
	if n.Kind == yaml.SequenceNode && !isIntrinsic(n) {
		out := Values{}
		for i, item := range n.Content {
			s, err := scalar(item, fmt.Sprintf("%s[%d]", path, i), str)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := scalar(n, path, str)
	if err != nil {
		return nil, err
	}
	return Values{s}, nil
}

// scalar accepts a string, number or boolean (AWS compares them as strings).
func scalar(n *yaml.Node, path string, str stringer) (string, error) {
	if str != nil && isIntrinsic(n) {
		if s, ok := str(n); ok {
			return s, nil
		}
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || isIntrinsic(n) {
		return "", nodeErr(n, path, "expected a string, found %s", kindName(n))
	}
	return n.Value, nil
}

// isIntrinsic reports whether n is a CloudFormation intrinsic function: a
// one-key object such as {"Fn::Sub": ...} or {"Ref": ...}, or a YAML short
// form such as !Sub.
func isIntrinsic(n *yaml.Node) bool {
	if len(n.Tag) > 1 && n.Tag[0] == '!' && n.Tag[1] != '!' {
		return true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		return k == "Ref" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
