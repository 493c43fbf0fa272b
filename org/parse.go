package org

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Parse reads and checks a catalog. file names it in errors. It returns a
// *SyntaxError (kind ErrSyntax) when data is not YAML, and Errors (kind
// ErrInvalid) listing every problem when it is YAML but not a valid
// catalog; the catalog is returned only when it has no errors.
func Parse(file string, data []byte) (*Catalog, error) {
	doc, err := decode(file, data)
	if err != nil {
		return nil, err
	}
	p := &parser{file: file}
	var c *Catalog
	switch {
	case doc == nil:
		p.errs = append(p.errs, Error{File: file, Line: 1, Column: 1, Message: "the catalog is empty: it needs at least version: 1"})
	case p.plain(doc):
		c = p.catalog(doc)
		if c != nil {
			p.validate(c)
		}
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			if a.Column != b.Column {
				return a.Column < b.Column
			}
			return a.Message < b.Message
		})
		return nil, Errors(p.errs)
	}
	return c, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decode returns the one document's top node, nil for an empty file.
func decode(file string, data []byte) (top *yaml.Node, err error) {
	defer func() {
		// A crash inside the YAML library on hostile input is a file we
		// cannot read, not a crash of berth.
		if r := recover(); r != nil {
			top, err = nil, &SyntaxError{File: file, Msg: fmt.Sprintf("yaml: %v", r)}
		}
	}()
	syntax := func(err error) error {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			return &SyntaxError{File: file, Line: n, Msg: m[2]}
		}
		return &SyntaxError{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntax(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntax(err)
	default:
		return nil, Errors{{File: file, Line: next.Line, Column: next.Column, Message: "a catalog is one YAML document: remove the second document (after ---)"}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, nil
	}
	return doc.Content[0], nil
}

type parser struct {
	file string
	errs []Error
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, Error{File: p.file, Line: n.Line, Column: n.Column, Message: fmt.Sprintf(format, args...)})
}

func pos(n *yaml.Node) Pos { return Pos{Line: n.Line, Column: n.Column} }

// plain refuses anchors, aliases and explicit tags anywhere in the tree: a
// catalog is reviewed line by line, and an alias would make one line mean
// several places (and lets a small file expand without bound).
func (p *parser) plain(n *yaml.Node) bool {
	ok := true
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		switch {
		case n.Kind == yaml.AliasNode:
			p.errorf(n, "aliases (*%s) are not allowed in a catalog: write the value out", n.Value)
			ok = false
			return
		case n.Anchor != "":
			p.errorf(n, "anchors (&%s) are not allowed in a catalog: write the value out where it is used", n.Anchor)
			ok = false
		case n.Style&yaml.TaggedStyle != 0:
			p.errorf(n, "explicit tags (%s) are not allowed in a catalog", n.Tag)
			ok = false
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return ok
}

// fields checks that n is a mapping with only known, unique, scalar keys
// and returns the value node of each key.
func (p *parser) fields(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping (key: value lines), not %s", what, kindName(n))
		return nil
	}
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	keys := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: keys must be plain words, not %s", what, kindName(k))
			continue
		}
		if first, dup := keys[k.Value]; dup {
			p.errorf(k, "%s: key %q appears twice (first at line %d)", what, k.Value, first.Line)
			continue
		}
		keys[k.Value] = k
		if !contains(known, k.Value) {
			p.errorf(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(known, ", "))
			continue
		}
		m[k.Value] = v
	}
	return m
}

// str returns the scalar at f[key]; required says whether it must be there.
func (p *parser) str(parent *yaml.Node, f map[string]*yaml.Node, what, key string, required bool) (string, *yaml.Node) {
	v, ok := f[key]
	if !ok {
		if required {
			p.errorf(parent, "%s: %s is required", what, key)
		}
		return "", parent
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		p.errorf(v, "%s: %s must be a string, not %s", what, key, kindName(v))
		return "", v
	}
	if strings.TrimSpace(v.Value) == "" {
		p.errorf(v, "%s: %s must not be empty", what, key)
	}
	return v.Value, v
}

func (p *parser) boolean(f map[string]*yaml.Node, what, key string, def bool) bool {
	v, ok := f[key]
	if !ok {
		return def
	}
	if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
		p.errorf(v, "%s: %s must be true or false", what, key)
		return def
	}
	var b bool
	if err := v.Decode(&b); err != nil {
		p.errorf(v, "%s: %s must be true or false", what, key)
		return def
	}
	return b
}

func (p *parser) list(parent *yaml.Node, f map[string]*yaml.Node, what, key string) []*yaml.Node {
	v, ok := f[key]
	if !ok || (v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		return nil // "ous:" with nothing after it: none
	}
	if v.Kind != yaml.SequenceNode {
		p.errorf(v, "%s: %s must be a list (lines starting with -), not %s", what, key, kindName(v))
		return nil
	}
	return v.Content
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func (p *parser) catalog(n *yaml.Node) *Catalog {
	f := p.fields(n, "catalog", "version", "ous", "accounts", "access_classes")
	if f == nil {
		return nil
	}
	c := &Catalog{AccessClasses: map[string]AccessClass{}}
	if v, ok := f["version"]; !ok {
		p.errorf(n, "catalog: version is required: add version: 1 at the top")
	} else if v.Kind != yaml.ScalarNode || v.Value != "1" {
		p.errorf(v, "catalog: version %s is not supported: this berth reads version 1", kindName(v))
	} else {
		c.Version = 1
	}
	for _, o := range p.list(n, f, "catalog", "ous") {
		if ou, ok := p.ou(o); ok {
			c.OUs = append(c.OUs, ou)
		}
	}
	for _, a := range p.list(n, f, "catalog", "accounts") {
		if acct, ok := p.account(a); ok {
			c.Accounts = append(c.Accounts, acct)
		}
	}
	if v, ok := f["access_classes"]; ok {
		ac := p.fields(v, "access_classes", Classes()...)
		for i := 0; i+1 < len(v.Content); i += 2 {
			class, cv := v.Content[i].Value, v.Content[i+1]
			if _, known := ac[class]; !known {
				continue
			}
			c.AccessClasses[class] = p.accessClass(class, cv)
		}
	}
	return c
}

func (p *parser) ou(n *yaml.Node) (OU, bool) {
	what := "ou"
	if name := peek(n, "name"); name != "" {
		what = "ou " + name
	}
	f := p.fields(n, what, "name", "children")
	if f == nil {
		return OU{}, false
	}
	name, nn := p.str(n, f, "ou", "name", true)
	ou := OU{Name: name, Pos: pos(nn)}
	for _, c := range p.list(n, f, what, "children") {
		if child, ok := p.ou(c); ok {
			ou.Children = append(ou.Children, child)
		}
	}
	return ou, true
}

func (p *parser) account(n *yaml.Node) (Account, bool) {
	what := "account"
	if name := peek(n, "name"); name != "" {
		what = "account " + name
	}
	f := p.fields(n, what, "name", "email", "ou", "owner", "class", "tags", "budget", "close")
	if f == nil {
		return Account{}, false
	}
	a := Account{Pos: pos(n), Budget: Budget{Amount: DefaultBudget}}
	a.at = map[string]Pos{}
	var nn *yaml.Node
	a.Name, nn = p.str(n, f, "account", "name", true)
	a.at["name"] = pos(nn)
	for key, dst := range map[string]*string{"email": &a.Email, "ou": &a.OU, "owner": &a.Owner, "class": &a.Class} {
		var vn *yaml.Node
		*dst, vn = p.str(n, f, what, key, true)
		a.at[key] = pos(vn)
	}
	a.Close = p.boolean(f, what, "close", false)
	if v, ok := f["tags"]; ok {
		if tf := p.fields(v, what+" tags", anyKey(v)...); tf != nil {
			a.Tags = map[string]string{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k := v.Content[i].Value
				if _, ok := tf[k]; !ok {
					continue
				}
				val, _ := p.str(v, tf, what+" tags", k, true)
				a.Tags[k] = val
				a.at["tags."+k] = pos(v.Content[i])
			}
		}
	}
	if v, ok := f["budget"]; ok {
		a.Budget = p.budget(what, v)
	}
	return a, true
}

// peek returns a mapping's scalar value for key, or "", so that errors
// about a whole item can name it.
func peek(n *yaml.Node, key string) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == key && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

// anyKey lists the scalar keys of a mapping, for maps whose keys are data.
func anyKey(n *yaml.Node) []string {
	var ks []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		ks = append(ks, n.Content[i].Value)
	}
	return ks
}

func (p *parser) budget(what string, n *yaml.Node) Budget {
	b := Budget{Amount: DefaultBudget}
	f := p.fields(n, what+" budget", "amount", "currency", "approval")
	if f == nil {
		return b
	}
	if v, ok := f["amount"]; ok {
		amt, err := strconv.Atoi(v.Value)
		switch {
		case v.Kind != yaml.ScalarNode || v.Tag != "!!int" || err != nil:
			p.errorf(v, "%s: budget amount must be a whole number of USD a month, not %s", what, kindName(v))
		case amt <= 0:
			p.errorf(v, "%s: budget amount must be more than 0 USD (default %d)", what, DefaultBudget)
		default:
			b.Amount = amt
		}
	}
	if cur, cv := p.str(n, f, what+" budget", "currency", false); cur != "" && cur != "USD" {
		p.errorf(cv, "%s: budget currency %q is not supported: AWS Budgets counts in USD", what, cur)
	}
	if v, ok := f["approval"]; ok {
		if af := p.fields(v, what+" budget approval", "by", "ref"); af != nil {
			by, _ := p.str(v, af, what+" budget approval", "by", true)
			ref, _ := p.str(v, af, what+" budget approval", "ref", true)
			// Missing parts were reported above; this is not "no approval".
			b.Approval = &Approval{By: by, Ref: ref}
		}
	}
	if b.Amount > DefaultBudget && b.Approval == nil {
		p.errorf(n, "%s: a budget of %d USD is above the default %d and needs approval: {by: WHO, ref: WHERE (pull request or ticket)}", what, b.Amount, DefaultBudget)
	}
	return b
}

func (p *parser) accessClass(class string, n *yaml.Node) AccessClass {
	what := "access class " + class
	var ac AccessClass
	f := p.fields(n, what, "standing", "escalations")
	if f == nil {
		return ac
	}
	for _, s := range p.list(n, f, what, "standing") {
		sf := p.fields(s, what+" standing", "group", "permission_set")
		if sf == nil {
			continue
		}
		st := Standing{Pos: pos(s)}
		st.Group, _ = p.str(s, sf, what+" standing", "group", true)
		var psn *yaml.Node
		st.PermissionSet, psn = p.str(s, sf, what+" standing", "permission_set", true)
		p.permissionSet(psn, what, st.PermissionSet)
		ac.Standing = append(ac.Standing, st)
	}
	for _, e := range p.list(n, f, what, "escalations") {
		ef := p.fields(e, what+" escalation", "permission_set", "eligible", "approvers", "max_duration", "forbid_self_approval")
		if ef == nil {
			continue
		}
		w := what + " escalation"
		esc := Escalation{Pos: pos(e)}
		var psn, dn *yaml.Node
		esc.PermissionSet, psn = p.str(e, ef, w, "permission_set", true)
		p.permissionSet(psn, what, esc.PermissionSet)
		esc.Eligible, _ = p.str(e, ef, w, "eligible", true)
		esc.Approvers, _ = p.str(e, ef, w, "approvers", true)
		var d string
		d, dn = p.str(e, ef, w, "max_duration", true)
		if d != "" {
			dur, err := time.ParseDuration(d)
			switch {
			case err != nil:
				p.errorf(dn, "%s: max_duration %q is not a duration: write it like 1h or 30m", w, d)
			case dur < MinEscalation || dur > MaxEscalation:
				p.errorf(dn, "%s: max_duration %s is out of range: between %s and %s (Identity Center sessions last at most 12h)", w, d, fmtDur(MinEscalation), fmtDur(MaxEscalation))
			default:
				esc.MaxDuration = dur
			}
		}
		esc.ForbidSelfApproval = p.boolean(ef, w, "forbid_self_approval", true)
		ac.Escalations = append(ac.Escalations, esc)
	}
	return ac
}

// Identity Center permission set names: 1 to 32 of [\w+=,.@-].
var permissionSetName = regexp.MustCompile(`^[\w+=,.@-]{1,32}$`)

func (p *parser) permissionSet(n *yaml.Node, what, name string) {
	if name != "" && !permissionSetName.MatchString(name) {
		p.errorf(n, "%s: permission set %q is not a valid name: 1 to 32 letters, digits and +=,.@_-", what, name)
	}
}

func fmtDur(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) errorAt(at Pos, format string, args ...any) {
	p.errs = append(p.errs, Error{File: p.file, Line: at.Line, Column: at.Column, Message: fmt.Sprintf(format, args...)})
}
