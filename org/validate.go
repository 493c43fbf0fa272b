package org

import (
	"fmt"
	"net/mail"
	"regexp"
	"sort"
	"strings"
)

// AWS limits: account names up to 50 characters, e-mail addresses up to 64,
// OU names up to 128, 50 tags per resource. Account names here are stricter
// (lowercase words with hyphens) because they also name profiles and files.
var (
	accountName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,48}[a-z0-9])?$`)
	ouName      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$`)
)

const (
	maxEmail    = 64
	maxTags     = 50
	maxTagKey   = 128
	maxTagValue = 256
)

// validate checks what spans more than one node: names, references,
// uniqueness and the access rules.
func (p *parser) validate(c *Catalog) {
	ous := map[string]bool{RootOU: true}
	var walk func(prefix string, list []OU)
	walk = func(prefix string, list []OU) {
		seen := map[string]Pos{}
		for _, o := range list {
			n := o.Pos
			if o.Name == "" {
				continue
			}
			if !ouName.MatchString(o.Name) {
				p.errorAt(n, "ou %q: names are 1 to 128 letters, digits, spaces and ._- and do not start with a space or symbol", o.Name)
			}
			if prefix == "" && o.Name == RootOU {
				p.errorAt(n, "ou %q: the name Root stands for the organisation's root; choose another", o.Name)
			}
			if first, dup := seen[o.Name]; dup {
				p.errorAt(n, "ou %q appears twice under the same parent (first at line %d)", o.Name, first.Line)
				continue
			}
			seen[o.Name] = o.Pos
			path := prefix + o.Name
			ous[path] = true
			walk(path+"/", o.Children)
		}
	}
	walk("", c.OUs)

	names := map[string]Pos{}
	emails := map[string]Pos{}
	var management []Account
	for _, a := range c.Accounts {
		n := a.PosOf("name")
		if a.Name != "" {
			if !accountName.MatchString(a.Name) {
				p.errorAt(n, "account %q: names are 1 to 50 lowercase letters, digits and hyphens, starting and ending with a letter or digit", a.Name)
			}
			if first, dup := names[a.Name]; dup {
				p.errorAt(n, "account %q appears twice (first at line %d): names must be unique", a.Name, first.Line)
			} else {
				names[a.Name] = a.Pos
			}
		}
		what := "account"
		if a.Name != "" {
			what += " " + a.Name
		}
		if a.Email != "" {
			if msg := checkEmail(a.Email); msg != "" {
				p.errorAt(a.PosOf("email"), "%s: e-mail %q %s", what, a.Email, msg)
			}
			key := strings.ToLower(a.Email)
			if first, dup := emails[key]; dup {
				p.errorAt(a.PosOf("email"), "%s: e-mail %s is already used by the account at line %d: AWS needs one address per account", what, a.Email, first.Line)
			} else {
				emails[key] = a.Pos
			}
		}
		if a.OU != "" && !ous[a.OU] {
			hint := "add it under ous; an account names its OU by the path from the root (Parent/Child), or Root"
			for path := range ous {
				if strings.HasSuffix(path, "/"+a.OU) {
					hint = fmt.Sprintf("did you mean %s? an account names its OU by the path from the root", path)
					break
				}
			}
			p.errorAt(a.PosOf("ou"), "%s: ou %q is not in the ous tree: %s", what, a.OU, hint)
		}
		if a.Class != "" && !contains(Classes(), a.Class) {
			p.errorAt(a.PosOf("class"), "%s: class %q is unknown: use one of %s", what, a.Class, strings.Join(Classes(), ", "))
		}
		if a.Class == ClassManagement {
			management = append(management, a)
		}
		if len(a.Tags) > maxTags {
			p.errorAt(n, "%s: %d tags, AWS allows at most %d", what, len(a.Tags), maxTags)
		}
		for _, k := range sortedKeys(a.Tags) {
			v, n := a.Tags[k], a.PosOf("tags."+k)
			switch {
			case strings.HasPrefix(strings.ToLower(k), "aws:"):
				p.errorAt(n, "%s: tag %q: the aws: prefix is reserved for AWS", what, k)
			case len(k) > maxTagKey:
				p.errorAt(n, "%s: tag key %.20q... is longer than %d characters", what, k, maxTagKey)
			case len(v) > maxTagValue:
				p.errorAt(n, "%s: tag %q: value is longer than %d characters", what, k, maxTagValue)
			}
		}
	}
	for _, a := range management[min(1, len(management)):] {
		p.errorAt(a.Pos, "account %s: only one account can be the management account (%s at line %d is already)", a.Name, management[0].Name, management[0].Pos.Line)
	}

	for _, class := range Classes() {
		ac, ok := c.AccessClasses[class]
		if !ok {
			continue
		}
		what := "access class " + class
		for _, s := range ac.Standing {
			if Production(class) {
				p.errorAt(s.Pos, "%s: no standing access to production accounts: make %s for %s an escalation with approvers and a max_duration", what, s.PermissionSet, s.Group)
			}
			if rest := strings.ReplaceAll(s.Group, OwnerPlaceholder, ""); strings.ContainsAny(rest, "{}") {
				p.errorAt(s.Pos, "%s: group %q: the only placeholder is %s", what, s.Group, OwnerPlaceholder)
			}
		}
		seen := map[string]Pos{}
		for _, e := range ac.Escalations {
			key := e.PermissionSet + "\x00" + e.Eligible
			if first, dup := seen[key]; dup && e.PermissionSet != "" && e.Eligible != "" {
				p.errorAt(e.Pos, "%s: an escalation to %s for %s already exists at line %d", what, e.PermissionSet, e.Eligible, first.Line)
			}
			seen[key] = e.Pos
			if Production(class) && !e.ForbidSelfApproval && e.Eligible != "" && e.Eligible == e.Approvers {
				p.errorAt(e.Pos, "%s: %s may both request and approve %s while self-approval is allowed: set forbid_self_approval: true or name another approver group", what, e.Eligible, e.PermissionSet)
			}
		}
	}
}

// checkEmail returns what is wrong with an account's root e-mail, or "".
func checkEmail(s string) string {
	if len(s) > maxEmail {
		return fmt.Sprintf("is longer than %d characters", maxEmail)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return "is not a plain address such as aws+team-dev@example.com"
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if strings.ContainsAny(local, "\"") || !strings.Contains(domain, ".") || strings.ContainsAny(domain, "[]") {
		return "is not a plain address such as aws+team-dev@example.com (a domain with a dot, no quotes)"
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
