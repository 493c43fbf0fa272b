// Package policy models IAM policy documents, renders berth's least-privilege
// policies, lints policies and CloudFormation templates people bring, and
// evaluates policies offline.
//
// Everything here is pure: no AWS calls, no network. The knowledge of AWS
// (actions, resource types, condition keys) comes from the table embedded in
// the iamdata subpackage.
package policy

import (
	"bytes"
	"encoding/json"
	"sort"
)

// Version2012 is the only policy language version that supports policy
// variables; berth renders it and the linter expects it.
const Version2012 = "2012-10-17"

// Document is an IAM policy document.
type Document struct {
	Version   string
	ID        string
	Statement []Statement
}

// Statement is one statement of a policy document. Exactly one of Action and
// NotAction is set, and at most one of Resource and NotResource (trust
// policies have neither).
type Statement struct {
	Sid          string
	Effect       string // "Allow" or "Deny"
	Principal    *Principal
	NotPrincipal *Principal
	Action       Values
	NotAction    Values
	Resource     Values
	NotResource  Values
	Condition    Condition

	// Pos is where the statement starts in the parsed input; zero when built
	// in code. It is not rendered.
	Pos Pos
}

// Pos is a position in parsed input, 1-based.
type Pos struct {
	Line, Column int
}

// Values is a list of strings that AWS also accepts as a single string.
type Values []string

// Principal is "*" (All) or a map from principal type ("AWS", "Service",
// "Federated", "CanonicalUser") to identifiers.
type Principal struct {
	All bool
	IDs map[string]Values
}

// Condition maps an operator (for example "StringEquals" or
// "ForAnyValue:StringLike") to condition keys and their values.
type Condition map[string]map[string]Values

// AWSPrincipal returns a principal of type "AWS" for the given ARNs or
// account IDs.
func AWSPrincipal(ids ...string) *Principal {
	return &Principal{IDs: map[string]Values{"AWS": ids}}
}

// ServicePrincipal returns a principal of type "Service".
func ServicePrincipal(names ...string) *Principal {
	return &Principal{IDs: map[string]Values{"Service": names}}
}

// normalized returns the values sorted and without duplicates, so renders
// are stable whatever order the model was built in.
func (v Values) normalized() []string {
	out := append([]string(nil), v...)
	sort.Strings(out)
	j := 0
	for i, s := range out {
		if i > 0 && s == out[j-1] {
			continue
		}
		out[j] = s
		j++
	}
	return out[:j]
}

// MarshalJSON renders a single value as a string and several as a sorted list.
func (v Values) MarshalJSON() ([]byte, error) {
	n := v.normalized()
	if len(n) == 1 {
		return json.Marshal(n[0])
	}
	return json.Marshal(n)
}

// MarshalJSON renders "*" or a map of sorted lists.
func (p *Principal) MarshalJSON() ([]byte, error) {
	if p.All {
		return json.Marshal("*")
	}
	return json.Marshal(p.IDs)
}

// MarshalJSON renders the statement with its elements in the order AWS
// documents them.
func (s Statement) MarshalJSON() ([]byte, error) {
	type out struct {
		Sid          string     `json:"Sid,omitempty"`
		Effect       string     `json:"Effect"`
		Principal    *Principal `json:"Principal,omitempty"`
		NotPrincipal *Principal `json:"NotPrincipal,omitempty"`
		Action       Values     `json:"Action,omitempty"`
		NotAction    Values     `json:"NotAction,omitempty"`
		Resource     Values     `json:"Resource,omitempty"`
		NotResource  Values     `json:"NotResource,omitempty"`
		Condition    Condition  `json:"Condition,omitempty"`
	}
	return json.Marshal(out{s.Sid, s.Effect, s.Principal, s.NotPrincipal,
		s.Action, s.NotAction, s.Resource, s.NotResource, s.Condition})
}

// MarshalJSON renders Version, Id and Statement in that order.
func (d *Document) MarshalJSON() ([]byte, error) {
	type out struct {
		Version   string      `json:"Version,omitempty"`
		ID        string      `json:"Id,omitempty"`
		Statement []Statement `json:"Statement"`
	}
	st := d.Statement
	if st == nil {
		st = []Statement{}
	}
	return json.Marshal(out{d.Version, d.ID, st})
}

// JSON renders the document indented with two spaces and a final newline.
func (d *Document) JSON() []byte {
	b, err := json.Marshal(d)
	if err != nil {
		// Only strings, maps and slices are marshalled: this cannot fail.
		panic("policy: marshal document: " + err.Error())
	}
	var buf bytes.Buffer
	_ = json.Indent(&buf, b, "", "  ")
	buf.WriteByte('\n')
	return buf.Bytes()
}

// CompactLen is the document's length without whitespace, which is what IAM
// counts against its size quotas.
func (d *Document) CompactLen() int {
	b, _ := json.Marshal(d)
	return len(b)
}

// Actions returns the Action values of all statements, for documentation and tests.
func (d *Document) Actions() []string {
	var all Values
	for _, s := range d.Statement {
		all = append(all, s.Action...)
	}
	return all.normalized()
}
