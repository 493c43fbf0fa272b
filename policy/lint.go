package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/policy/iamdata"
	"gopkg.in/yaml.v3"
)

// Severity of a lint finding. Errors make `berth policy lint` exit 1.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Finding is one problem the linter found.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Hint     string   `json:"hint,omitempty"`
	Path     string   `json:"path"` // FILE:LINE:COLUMN, or FILE when the position is unknown
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s: %s: %s [%s]", f.Path, f.Severity, f.Message, f.ID)
	if f.Hint != "" {
		s += "\n\thint: " + f.Hint
	}
	return s
}

// AtLeast reports whether any finding is of severity min or worse
// (error > warning > info): what `berth policy lint --fail-on` tests.
func AtLeast(fs []Finding, min Severity) bool {
	rank := map[Severity]int{SeverityInfo: 1, SeverityWarning: 2, SeverityError: 3}
	for _, f := range fs {
		if rank[f.Severity] >= rank[min] {
			return true
		}
	}
	return false
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// IAM quotas: sizes are counted without whitespace. Source: "IAM and AWS
// STS quotas", IAM User Guide,
// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
// (managed policy 6,144 characters; role inline policies 10,240 in total;
// managed policies attached to a role or user: 10, raisable to 20). The
// bucket policy limit is S3's (20 KB, S3 User Guide, "Bucket policies").
const (
	MaxManagedPolicySize       = 6144
	MaxRoleInlineSize          = 10240 // all inline policies of a role together
	MaxAttachedManagedPolicies = 10
	MaxTrustPolicySize         = 2048 // default quota; can be raised to 4096
	MaxUserInlineSize          = 2048
	MaxGroupInlineSize         = 5120
	MaxBucketPolicySize        = 20480
)

// policyRole is what a policy document is used as, which decides the checks.
type policyRole int

const (
	roleIdentity policyRole = iota
	roleResource
	roleTrust
	roleBoundary
)

// Lint checks a policy document (JSON or YAML), a role as `berth policy
// render` prints it, or a CloudFormation template (every embedded policy,
// trust policy and managed policy ARN). name is used in finding paths.
// Malformed input is reported as a finding, not an error; the error is for
// failures of the linter itself.
func Lint(name string, data []byte) ([]Finding, error) {
	tab, err := iamdata.Load()
	if err != nil {
		return nil, fmt.Errorf("lint %s: %w", name, err)
	}
	l := &linter{name: name, tab: tab}
	root, err := parseTree(data)
	if err != nil {
		l.parseError(err)
		return l.sorted(), nil
	}
	switch {
	case root.Kind != yaml.MappingNode:
		l.add(root, "", "unrecognized-input", SeverityError, "expected a policy document, a role or a CloudFormation template, found "+kindName(root), "")
	case lookup(root, "Resources") != nil || lookup(root, "AWSTemplateFormatVersion") != nil:
		l.template(root)
	case lookup(root, "AssumeRolePolicyDocument") != nil:
		l.role(root, "", nil, true)
	case lookup(root, "Statement") != nil:
		r := roleIdentity
		if looksLikeTrust(root) {
			r = roleTrust
		} else if hasPrincipal(root) {
			r = roleResource
		}
		limit := map[policyRole]int{roleIdentity: MaxManagedPolicySize, roleTrust: MaxTrustPolicySize, roleResource: MaxBucketPolicySize}[r]
		l.policy(root, "", r, limit, nil)
	default:
		l.add(root, "", "unrecognized-input", SeverityError, "not a policy document (no Statement), role (no AssumeRolePolicyDocument) or template (no Resources)", "")
	}
	return l.sorted(), nil
}

type linter struct {
	name     string
	tab      *iamdata.Table
	findings []Finding
}

func (l *linter) sorted() []Finding {
	sort.SliceStable(l.findings, func(i, j int) bool { return posLess(l.findings[i].Path, l.findings[j].Path) })
	return l.findings
}

// posLess orders FILE:LINE:COL paths by line and column numerically.
func posLess(a, b string) bool {
	la, ca := pathPos(a)
	lb, cb := pathPos(b)
	if la != lb {
		return la < lb
	}
	return ca < cb
}

func pathPos(p string) (int, int) {
	parts := strings.Split(p, ":")
	if len(parts) < 3 {
		return 0, 0
	}
	l, _ := strconv.Atoi(parts[len(parts)-2])
	c, _ := strconv.Atoi(parts[len(parts)-1])
	return l, c
}

func (l *linter) add(n *yaml.Node, path, id string, sev Severity, msg, hint string) {
	loc := l.name
	if n != nil && n.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", l.name, n.Line, n.Column)
	}
	if path != "" {
		msg = path + ": " + msg
	}
	l.findings = append(l.findings, Finding{ID: id, Severity: sev, Message: msg, Hint: hint, Path: loc})
}

func (l *linter) parseError(err error) {
	var pe *ParseError
	if errors.As(err, &pe) {
		n := &yaml.Node{Line: pe.Pos.Line, Column: pe.Pos.Column}
		l.add(n, pe.Path, "parse-error", SeverityError, pe.Msg, "")
		return
	}
	l.add(nil, "", "parse-error", SeverityError, err.Error(), "")
}

func hasPrincipal(doc *yaml.Node) bool {
	for _, st := range statementNodes(doc) {
		if lookup(st, "Principal") != nil || lookup(st, "NotPrincipal") != nil {
			return true
		}
	}
	return false
}

// looksLikeTrust reports whether a standalone document is a trust policy:
// statements with principals and only sts actions.
func looksLikeTrust(doc *yaml.Node) bool {
	sts := false
	for _, st := range statementNodes(doc) {
		if lookup(st, "Principal") == nil {
			return false
		}
		a := lookup(st, "Action")
		if a == nil {
			return false
		}
		vals, err := values(a, "", nil)
		if err != nil {
			return false
		}
		for _, v := range vals {
			if !strings.HasPrefix(strings.ToLower(v), "sts:") {
				return false
			}
			sts = true
		}
	}
	return sts
}

func statementNodes(doc *yaml.Node) []*yaml.Node {
	st := lookup(doc, "Statement")
	if st == nil {
		return nil
	}
	if st.Kind == yaml.SequenceNode {
		return st.Content
	}
	return []*yaml.Node{st}
}

// at returns the node of a statement element, for positions.
func at(st *yaml.Node, key string) *yaml.Node {
	if n := lookup(st, key); n != nil {
		return n
	}
	return st
}

// policy lints one policy document and returns its size without whitespace
// (0 when it does not parse).
func (l *linter) policy(n *yaml.Node, path string, r policyRole, limit int, str stringer) int {
	d, err := decodeDocument(n, path, str)
	if err != nil {
		l.parseError(err)
		return 0
	}
	if d.Version == "" {
		l.add(n, path, "missing-version", SeverityWarning, "the policy has no Version, so IAM reads it as 2008-10-17 and policy variables stay literal text",
			`add "Version": "2012-10-17"`)
	} else if d.Version != Version2012 {
		l.add(at(n, "Version"), path, "old-version", SeverityWarning, "policy version "+d.Version+" does not support policy variables", `use "Version": "2012-10-17"`)
	}
	nodes := statementNodes(n)
	sids := map[string]bool{}
	for i, s := range d.Statement {
		st := nodes[i]
		sp := join(path, fmt.Sprintf("Statement[%d]", i))
		if s.Sid != "" {
			if sids[s.Sid] {
				l.add(at(st, "Sid"), sp, "duplicate-sid", SeverityError, "duplicate Sid "+quote(s.Sid), "give every statement a unique Sid")
			}
			sids[s.Sid] = true
		}
		l.statement(st, sp, s, r)
	}
	size := d.CompactLen()
	if limit > 0 && size > limit {
		l.add(n, path, "policy-size", SeverityError, fmt.Sprintf("the policy is %d characters without whitespace; IAM allows %d here", size, limit),
			"split it into several managed policies or use wildcards in resource names")
	}
	return size
}

func (l *linter) statement(st *yaml.Node, path string, s Statement, r policyRole) {
	allow := s.Effect == "Allow"
	if r == roleIdentity || r == roleBoundary {
		if s.Principal != nil || s.NotPrincipal != nil {
			l.add(at(st, "Principal"), path, "principal-in-identity-policy", SeverityError, "an identity policy cannot name a Principal", "remove Principal, or use the document as a resource or trust policy")
		}
		if s.Resource == nil && s.NotResource == nil {
			l.add(st, path, "missing-resource", SeverityError, "the statement has no Resource", `add "Resource"`)
		}
	} else if s.Principal == nil && s.NotPrincipal == nil {
		l.add(st, path, "missing-principal", SeverityError, "a resource or trust policy statement needs a Principal", "")
	}
	if allow && s.NotAction != nil {
		l.add(at(st, "NotAction"), path, "notaction-allow", SeverityWarning, "Allow with NotAction grants every action not listed, including ones AWS adds later",
			"list the allowed actions with Action instead")
	}
	if allow && s.NotResource != nil {
		l.add(at(st, "NotResource"), path, "notresource-allow", SeverityWarning, "Allow with NotResource grants every resource not listed", "list the allowed resources with Resource instead")
	}
	if allow && s.NotPrincipal != nil {
		l.add(at(st, "NotPrincipal"), path, "notprincipal-allow", SeverityError, "Allow with NotPrincipal grants access to everyone not listed", "name the principals with Principal")
	}
	actions := l.actions(at(st, "Action"), path, s, r == roleResource && ownAccountOnly(s.Principal))
	l.resources(st, path, s, actions, r)
	l.principals(st, path, s, r)
	l.conditions(at(st, "Condition"), path+".Condition", s.Condition)
}

// actions checks Action/NotAction and returns the actions they match.
func (l *linter) actions(n *yaml.Node, path string, s Statement, ownAccount bool) []iamdata.Action {
	list, elem := s.Action, "Action"
	if s.NotAction != nil {
		list, elem = s.NotAction, "NotAction"
	}
	p := path + "." + elem
	var matched []iamdata.Action
	for _, a := range list {
		if a == "*" {
			if s.Effect == "Allow" && s.NotAction == nil {
				l.add(n, p, "wildcard-action", SeverityError, `Action "*" allows every action of every service`, "list the actions the principal needs")
			}
			matched = append(matched, l.tab.MatchActions("*")...)
			continue
		}
		if isVariable(a) {
			continue
		}
		prefix, name, ok := strings.Cut(a, ":")
		if !ok || prefix == "" || name == "" {
			l.add(n, p, "malformed-action", SeverityError, quote(a)+" is not of the form service:Action", "")
			continue
		}
		if _, ok := l.tab.Service(prefix); !ok && !strings.ContainsAny(prefix, "*?") {
			l.add(n, p, "unknown-action", SeverityError, "unknown service prefix "+quote(prefix)+" in "+quote(a), "check the service prefix in the AWS service authorization reference")
			continue
		}
		m := l.tab.MatchActions(a)
		switch {
		case len(m) == 0 && strings.ContainsAny(a, "*?"):
			l.add(n, p, "unknown-action", SeverityError, quote(a)+" matches no action", "")
		case len(m) == 0:
			l.add(n, p, "unknown-action", SeverityError, "unknown action "+quote(a), l.suggestAction(prefix, name))
		case name == "*" && s.Effect == "Allow" && s.NotAction == nil && !ownAccount:
			// A key policy giving its own account kms:* is AWS's default:
			// it delegates to IAM policies rather than granting.
			l.add(n, p, "wildcard-action", SeverityWarning, quote(a)+" allows every "+prefix+" action, including ones AWS adds later",
				"list the actions the principal needs")
		}
		matched = append(matched, m...)
	}
	return matched
}

func (l *linter) suggestAction(prefix, name string) string {
	svc, _ := l.tab.Service(prefix)
	best, bestD := "", 4
	for _, a := range svc.Actions {
		if d := editDistanceFold(name, a.Name); d < bestD || d == bestD && a.Name < best {
			best, bestD = a.Name, d
		}
	}
	if best == "" {
		return ""
	}
	return "did you mean " + svc.Prefix + ":" + best + "?"
}

func editDistanceFold(a, b string) int {
	return iamdata.EditDistance(strings.ToLower(a), strings.ToLower(b))
}

// ownAccountOnly reports whether a resource policy principal is only the
// template's own account root.
func ownAccountOnly(p *Principal) bool {
	if p == nil || p.All || len(p.IDs) != 1 {
		return false
	}
	ids := p.IDs["AWS"]
	for _, id := range ids {
		if id != "${AWS::AccountId}" && maskVariables(id) != "arn:${AWS..Partition}:iam::${AWS..AccountId}:root" {
			return false
		}
	}
	return len(ids) > 0
}

func (l *linter) resources(st *yaml.Node, path string, s Statement, actions []iamdata.Action, r policyRole) {
	list, elem := s.Resource, "Resource"
	if s.NotResource != nil {
		list, elem = s.NotResource, "NotResource"
	}
	n, p := at(st, elem), path+"."+elem
	for _, res := range list {
		if res == "*" {
			// In a resource policy "*" means the resource it is attached to.
			if s.Effect != "Allow" || s.NotResource != nil || s.NotAction != nil || r == roleTrust || r == roleResource {
				continue
			}
			if len(s.Action) == 1 && s.Action[0] == "*" {
				l.add(n, p, "admin-policy", SeverityError, `Allow "*" on "*" is administrator access`, "grant the actions and resources the principal needs")
				continue
			}
			if passRole(actions) {
				l.add(n, p, "passrole-wildcard", SeverityError, `iam:PassRole on "*" lets the principal hand any role, administrator roles included, to a service it controls (privilege escalation)`,
					"name the roles it may pass and add an iam:PassedToService condition")
				actions = withoutPassRole(actions)
			}
			if l.needsResourceScope(actions) && !tagScoped(s.Condition) {
				l.add(n, p, "wildcard-resource", SeverityWarning, `Resource "*" with actions that support resource-level permissions`,
					"name the resources (ARNs with wildcards where needed) or add a tag condition")
			}
			continue
		}
		if isVariable(res) && !strings.HasPrefix(res, "arn:") {
			continue // a CloudFormation Ref or GetAtt: the ARN is not known here
		}
		a, err := ParseARN(res)
		if err != nil {
			l.add(n, p, "malformed-arn", SeverityError, quote(res)+": "+err.Error(), "")
			continue
		}
		if s.Effect == "Allow" && s.NotResource == nil && passRole(actions) && a.Service == "iam" &&
			(a.Resource == "*" || a.Resource == "role/*") {
			l.add(n, p, "passrole-wildcard", SeverityError, `iam:PassRole on every role of the account (`+res+`) lets the principal hand administrator roles to a service it controls (privilege escalation)`,
				"name the roles it may pass and add an iam:PassedToService condition")
		}
	}
	if s.NotResource == nil {
		l.s3Mismatch(n, p, s)
	}
}

// passRole reports whether the matched actions include iam:PassRole.
func passRole(actions []iamdata.Action) bool {
	for _, a := range actions {
		if a.Service == "iam" && a.Name == "PassRole" {
			return true
		}
	}
	return false
}

func withoutPassRole(actions []iamdata.Action) []iamdata.Action {
	var out []iamdata.Action
	for _, a := range actions {
		if a.Service != "iam" || a.Name != "PassRole" {
			out = append(out, a)
		}
	}
	return out
}

// s3Mismatch flags S3 actions named in the statement that none of its
// resources can match: an object action on bucket ARNs only, or a bucket
// action on object ARNs only. A bucket name has no "/", so a pattern with a
// "/" never matches a bucket; one without "/" or wildcards never matches an
// object. Statements with resources not known here (Refs, "*") are skipped.
func (l *linter) s3Mismatch(n *yaml.Node, path string, s Statement) {
	var canBucket, canObject bool
	for _, res := range s.Resource {
		a, err := ParseARN(res)
		if err != nil || a.Service != "s3" || a.Region != "" || a.Account != "" || strings.Contains(res, "${") {
			return
		}
		if strings.Contains(a.Resource, "/") {
			canObject = true
		} else {
			canBucket = true
			if strings.ContainsAny(a.Resource, "*?") {
				canObject = true
			}
		}
	}
	if !canBucket && !canObject {
		return
	}
	for _, name := range s.Action {
		if strings.ContainsAny(name, "*?") || isVariable(name) {
			continue
		}
		act, ok := l.tab.Action(name)
		if !ok || act.Service != "s3" {
			continue
		}
		var object, bucket bool
		for _, rt := range act.ResourceTypes {
			switch strings.TrimSuffix(rt, "*") {
			case "object":
				object = true
			case "bucket":
				bucket = true
			}
		}
		switch {
		case object && !bucket && !canObject:
			l.add(n, path, "s3-resource-mismatch", SeverityError, act.FullName()+" applies to objects, but every resource of the statement is a bucket ARN, so it never matches",
				"add the objects, such as arn:aws:s3:::BUCKET/*, or move the action to a statement on them")
		case bucket && !object && !canBucket:
			l.add(n, path, "s3-resource-mismatch", SeverityError, act.FullName()+" applies to buckets, but every resource of the statement is an object ARN (with a \"/\"), so it never matches",
				"add the bucket ARN, arn:aws:s3:::BUCKET, or move the action to a statement on it")
		}
	}
}

// needsResourceScope reports whether some action supports resource-level
// permissions, so Resource "*" grants more than necessary.
func (l *linter) needsResourceScope(actions []iamdata.Action) bool {
	for _, a := range actions {
		if !a.WildcardOnly() {
			return true
		}
	}
	return false
}

// tagScoped reports whether a condition limits the statement by tags, the
// usual way to scope actions on resources that have no name yet.
func tagScoped(c Condition) bool {
	for op, keys := range c {
		if strings.Contains(op, "Not") {
			continue
		}
		for k := range keys {
			lk := strings.ToLower(k)
			if strings.Contains(lk, "resourcetag/") || strings.Contains(lk, "requesttag/") {
				return true
			}
		}
	}
	return false
}

func (l *linter) principals(st *yaml.Node, path string, s Statement, r policyRole) {
	pr := s.Principal
	if pr == nil {
		return
	}
	n, p := at(st, "Principal"), path+".Principal"
	public := pr.All
	var crossAccount, federated bool
	for typ, ids := range pr.IDs {
		for _, id := range ids {
			switch typ {
			case "AWS":
				switch {
				case id == "*":
					public = true
				case isVariable(id) && !strings.HasPrefix(id, "arn:"):
					// A Ref: unknown, assume another account.
					crossAccount = true
				case accountRe.MatchString(id):
					crossAccount = true
				default:
					a, err := ParseARN(id)
					if err != nil || (a.Service != "iam" && a.Service != "sts") {
						msg := "an AWS principal must be an IAM ARN or a 12-digit account ID"
						if err != nil {
							msg = err.Error()
						}
						l.add(n, p, "malformed-principal", SeverityError, quote(id)+": "+msg, "")
						continue
					}
					// ${AWS::AccountId} in a template is this account.
					if a.Account != "${AWS..AccountId}" {
						crossAccount = true
					}
				}
			case "Federated":
				federated = true
			}
		}
	}
	if s.Effect != "Allow" {
		return
	}
	// A condition guards only if it narrows: "sts:ExternalId StringLike *"
	// or an IfExists a caller satisfies by omitting the key does not.
	narrow := narrowingKeys(s.Condition)
	what := "without a condition"
	if len(s.Condition) > 0 {
		what = "with conditions that do not narrow it (" + strings.Join(conditionSummary(s.Condition), "; ") + ")"
	}
	switch {
	case public:
		if !anyKey(narrow, identityKey) {
			l.add(n, p, "public-principal", SeverityError, `Principal "*" `+what+` allows anyone`,
				"name the principal, or add a condition that limits who, such as aws:PrincipalOrgID or aws:PrincipalArn with a full ARN")
		}
	case crossAccount && r == roleTrust && assumes(s):
		if !anyKey(narrow, guardKey) {
			l.add(n, p, "trust-without-condition", SeverityError, "the role trusts a principal of another account "+what,
				`add "Condition": {"StringEquals": {"sts:ExternalId": "..."}} so the trusted party cannot be tricked into acting on this account (confused deputy)`)
		}
	case federated && r == roleTrust && assumes(s):
		switch {
		case !anyKey(narrow, guardKey):
			l.add(n, p, "trust-without-condition", SeverityError, "the role trusts a federated provider "+what+", so every identity of that provider can assume it",
				"add conditions on the provider's aud and sub keys")
		case trustsGitHub(pr) && !anyKey(narrow, func(k string) bool { return k == githubOIDC+":sub" }):
			l.add(n, p, "oidc-without-sub", SeverityError, "the role trusts GitHub's OIDC provider without narrowing "+githubOIDC+":sub, so a workflow of any repository on GitHub can assume it",
				`add "StringLike": {"`+githubOIDC+`:sub": "repo:OWNER/REPO:*"} (or a branch or environment of it)`)
		}
	}
}

const githubOIDC = "token.actions.githubusercontent.com"

// assumes reports whether a trust statement allows assuming the role, as
// opposed to only tagging a session another statement lets in.
func assumes(s Statement) bool {
	if s.NotAction != nil {
		return true
	}
	for _, a := range s.Action {
		if iamdata.Wildcard(strings.ToLower(a), "sts:assumerole") || iamdata.Wildcard(strings.ToLower(a), "sts:assumerolewithwebidentity") ||
			iamdata.Wildcard(strings.ToLower(a), "sts:assumerolewithsaml") {
			return true
		}
	}
	return false
}

// guardKey reports whether a condition key can tell the trusted party's
// legitimate requests from others: not TLS (every STS call has it) and not
// the tags the caller itself chooses.
func guardKey(k string) bool {
	return k != "aws:securetransport" && k != "aws:tagkeys" && !strings.HasPrefix(k, "aws:requesttag/")
}

func trustsGitHub(p *Principal) bool {
	for _, id := range p.IDs["Federated"] {
		if strings.HasSuffix(id, "oidc-provider/"+githubOIDC) {
			return true
		}
	}
	return false
}

func anyKey(keys []string, f func(string) bool) bool {
	for _, k := range keys {
		if f(k) {
			return true
		}
	}
	return false
}

// identityKey reports whether a (lower-case) condition key limits who
// makes the request, which is what a public principal needs.
func identityKey(k string) bool {
	switch k {
	case "aws:principalarn", "aws:principalaccount", "aws:principalorgid", "aws:principalorgpaths", "aws:principalisawsservice",
		"aws:principalservicename", "aws:principalservicenameslist", "aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid",
		"aws:sourceorgpaths", "aws:sourceowner", "aws:sourcevpc", "aws:sourcevpce", "aws:sourceip", "aws:vpcsourceip",
		"aws:userid", "aws:username":
		return true
	}
	return strings.HasPrefix(k, "aws:principaltag/") || strings.HasPrefix(k, "saml:") || federatedKeyRe.MatchString(k)
}

// federatedKeyRe matches the condition keys of OIDC identity providers:
// PROVIDER_HOST[/PATH]:CLAIM, such as token.actions.githubusercontent.com:sub,
// oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE:aud or app.terraform.io:sub.
// The service authorization reference does not list them; IAM accepts a
// provider's claims (aud, sub, amr, azp, oaud, ...) under its host name.
var federatedKeyRe = regexp.MustCompile(`^(?i)([a-z0-9-]+\.)+[a-z]{2,}(/[a-z0-9._~-]+)*:[a-z_][a-z0-9_]*$`)

// narrowingKeys returns the lower-case keys of the condition entries that
// limit requests: positive operators (not negated, IfExists, Null or
// ForAllValues, which a request without the key passes) with a value that
// does not match everything.
func narrowingKeys(c Condition) []string {
	var out []string
	for opName, keys := range c {
		op, err := ParseOperator(opName)
		if err != nil || op.IfExists || op.Base == "Null" || op.Set == "ForAllValues" || negated(op.Base) {
			continue
		}
		for k, vals := range keys {
			lk := strings.ToLower(k)
			for _, v := range vals {
				if !matchesAnything(op.Base, lk, v) {
					out = append(out, lk)
					break
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// matchesAnything reports whether a condition value accepts any request
// that carries the key, as far as "who" goes.
func matchesAnything(base, key, v string) bool {
	if base != "StringLike" && base != "ArnLike" && base != "ArnEquals" {
		return false
	}
	if strings.Trim(v, "*") == "" {
		return true
	}
	if strings.HasPrefix(v, "arn:") && strings.Trim(strings.TrimPrefix(v, "arn:"), "*:") == "" {
		return true
	}
	switch {
	case key == "aws:principalarn" || key == "aws:sourcearn":
		// Any account is anyone.
		if a, err := ParseARN(v); err == nil && (a.Account == "" || strings.ContainsAny(a.Account, "*?")) {
			return true
		}
	case key == githubOIDC+":sub":
		// repo:OWNER/REPO:...; a wildcard owner is any repository.
		if rest, ok := strings.CutPrefix(v, "repo:"); ok {
			owner, _, _ := strings.Cut(rest, "/")
			return owner == "" || strings.ContainsAny(owner, "*?")
		}
	}
	return false
}

// conditionSummary renders a condition as "Operator key values" lines, sorted.
func conditionSummary(c Condition) []string {
	var out []string
	for op, keys := range c {
		for k, vals := range keys {
			out = append(out, fmt.Sprintf("%s %s %s", op, k, strings.Join(vals.normalized(), ",")))
		}
	}
	sort.Strings(out)
	return out
}

// conditionOperators are IAM's base operators; IfExists and the
// ForAnyValue:/ForAllValues: qualifiers are parsed around them.
var conditionOperators = map[string]string{}

func init() {
	for _, op := range []string{"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
		"StringLike", "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
		"NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals",
		"DateGreaterThan", "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress", "NotIpAddress", "ArnEquals",
		"ArnLike", "ArnNotEquals", "ArnNotLike", "Null"} {
		conditionOperators[strings.ToLower(op)] = op
	}
}

// Operator is a parsed condition operator.
type Operator struct {
	Base     string // e.g. "StringEquals"
	IfExists bool
	Set      string // "", "ForAnyValue" or "ForAllValues"
}

// ParseOperator splits "ForAnyValue:StringLikeIfExists" and the like.
func ParseOperator(s string) (Operator, error) {
	var op Operator
	rest := s
	if q, r, ok := strings.Cut(s, ":"); ok {
		if q != "ForAnyValue" && q != "ForAllValues" {
			return op, fmt.Errorf("unknown set qualifier %q (expected ForAnyValue or ForAllValues)", q)
		}
		op.Set, rest = q, r
	}
	if b, ok := strings.CutSuffix(rest, "IfExists"); ok && b != "" {
		op.IfExists, rest = true, b
	}
	if _, ok := conditionOperators[strings.ToLower(rest)]; !ok || conditionOperators[strings.ToLower(rest)] != rest {
		return op, fmt.Errorf("unknown condition operator %q", s)
	}
	if rest == "Null" && op.IfExists {
		return op, errors.New("NullIfExists is not an operator")
	}
	op.Base = rest
	return op, nil
}

func (l *linter) conditions(n *yaml.Node, path string, c Condition) {
	ops := make([]string, 0, len(c))
	for op := range c {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, opName := range ops {
		p := path + "." + opName
		on := at(n, opName)
		op, err := ParseOperator(opName)
		if err != nil {
			hint := ""
			base := strings.TrimSuffix(opName[strings.LastIndex(opName, ":")+1:], "IfExists")
			if canon, ok := conditionOperators[strings.ToLower(base)]; ok {
				hint = "operators are case-sensitive: did you mean " + strings.Replace(opName, base, canon, 1) + "?"
			} else if s := nearestOperator(base); s != "" {
				hint = "did you mean " + s + "?"
			}
			l.add(on, p, "unknown-condition-operator", SeverityError, err.Error(), hint)
			continue
		}
		keys := make([]string, 0, len(c[opName]))
		for k := range c[opName] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kn := at(on, k)
			if isVariable(k) {
				continue
			}
			typ, canon, ok := l.tab.ConditionKey(k)
			if !ok && federatedKeyRe.MatchString(k) {
				typ, ok = "String", true
			}
			if !ok {
				hint := ""
				if s := l.tab.SuggestConditionKey(k); s != "" {
					hint = "did you mean " + s + "?"
				}
				l.add(kn, p, "unknown-condition-key", SeverityError, "unknown condition key "+quote(k)+"; the condition never matches as intended", hint)
				continue
			}
			_ = canon
			for _, v := range c[opName][k] {
				if msg := checkConditionValue(op, v); msg != "" {
					l.add(kn, p+"."+k, "invalid-condition-value", SeverityError, msg, "")
				}
			}
			if op.Set == "" && strings.HasPrefix(typ, "ArrayOf") && !strings.HasPrefix(op.Base, "Null") && op.Base != "Null" {
				l.add(kn, p, "missing-set-operator", SeverityWarning, quote(k)+" is multivalued; use ForAnyValue: or ForAllValues: with "+op.Base,
					"ForAllValues: when every value must match, ForAnyValue: when one is enough")
			}
		}
	}
}

func nearestOperator(s string) string {
	best, bestD := "", 4
	for _, op := range conditionOperators {
		if d := editDistanceFold(s, op); d < bestD || d == bestD && op < best {
			best, bestD = op, d
		}
	}
	return best
}

// checkConditionValue returns a problem with a value for its operator, or "".
func checkConditionValue(op Operator, v string) string {
	if isVariable(v) {
		return ""
	}
	switch {
	case op.Base == "Bool" || op.Base == "Null":
		if v != "true" && v != "false" {
			return op.Base + " takes true or false, not " + quote(v)
		}
	case strings.HasPrefix(op.Base, "Numeric"):
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return op.Base + " takes a number, not " + quote(v)
		}
	case strings.HasPrefix(op.Base, "Date"):
		if _, err := parseDate(v); err != nil {
			return op.Base + " takes an ISO 8601 date or epoch seconds, not " + quote(v)
		}
	case op.Base == "IpAddress" || op.Base == "NotIpAddress":
		if _, err := parseCIDR(v); err != nil {
			return op.Base + " takes an IP address or CIDR, not " + quote(v)
		}
	}
	return ""
}

func parseDate(v string) (time.Time, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02T15:04Z", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid date %q", v)
}

func parseCIDR(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		return netip.ParsePrefix(v)
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// broadManagedPolicies are AWS managed policies that are flagged wherever
// they are attached. AdministratorAccess is "*" on "*", an error inline as
// attached; IAMFullAccess lets a principal grant itself anything.
var broadManagedPolicies = map[string]struct {
	id  string
	sev Severity
}{
	"AdministratorAccess": {"admin-access", SeverityError},
	"IAMFullAccess":       {"broad-managed-policy", SeverityError},
	"PowerUserAccess":     {"broad-managed-policy", SeverityWarning},
}

func (l *linter) managedARNs(n *yaml.Node, path string, str stringer) {
	vals, err := values(n, path, str)
	if err != nil {
		l.parseError(err)
		return
	}
	nodes := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode && !isIntrinsic(n) {
		nodes = n.Content
	}
	for i, v := range vals {
		vn := n
		if i < len(nodes) {
			vn = nodes[i]
		}
		if isVariable(v) && !strings.HasPrefix(v, "arn:") {
			continue
		}
		a, err := ParseARN(v)
		if err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "policy/") {
			l.add(vn, path, "malformed-arn", SeverityError, quote(v)+" is not a managed policy ARN", "arn:aws:iam::ACCOUNT:policy/NAME or arn:aws:iam::aws:policy/NAME")
			continue
		}
		name := a.Resource[strings.LastIndex(a.Resource, "/")+1:]
		if b, ok := broadManagedPolicies[name]; ok && a.Account == "aws" {
			l.add(vn, path, b.id, b.sev, "attaches the AWS managed policy "+name, "grant only what the role needs; berth's provisioner role is the least-privilege alternative")
		}
	}
}

// role lints the properties of an AWS::IAM::Role (or the same shape printed
// by berth policy render).
func (l *linter) role(props *yaml.Node, path string, str stringer, isRole bool) {
	if t := lookup(props, "AssumeRolePolicyDocument"); t != nil && isRole {
		l.policy(t, join(path, "AssumeRolePolicyDocument"), roleTrust, MaxTrustPolicySize, str)
	}
	if m := lookup(props, "ManagedPolicyArns"); m != nil {
		l.managedARNs(m, join(path, "ManagedPolicyArns"), str)
	}
	if b := lookup(props, "PermissionsBoundary"); b != nil {
		l.managedARNs(b, join(path, "PermissionsBoundary"), str)
	}
	attached := 0
	if m := lookup(props, "ManagedPolicyArns"); m != nil && m.Kind == yaml.SequenceNode && !isIntrinsic(m) {
		attached = len(m.Content)
	}
	// ManagedPolicies: berth's role files hold the managed policies to
	// create and attach with the role.
	if ms := lookup(props, "ManagedPolicies"); ms != nil && ms.Kind == yaml.SequenceNode {
		for i, item := range ms.Content {
			if d := lookup(item, "PolicyDocument"); d != nil {
				l.policy(d, join(path, fmt.Sprintf("ManagedPolicies[%d].PolicyDocument", i)), roleIdentity, MaxManagedPolicySize, str)
			}
		}
		attached += len(ms.Content)
	}
	if attached > MaxAttachedManagedPolicies {
		l.add(props, path, "too-many-managed-policies", SeverityError,
			fmt.Sprintf("%d managed policies attached; IAM allows %d per role or user by default", attached, MaxAttachedManagedPolicies),
			"merge policies, or raise the quota (up to 20) before deploying")
	}
	if ps := lookup(props, "Policies"); ps != nil && ps.Kind == yaml.SequenceNode {
		total := 0
		for i, item := range ps.Content {
			if d := lookup(item, "PolicyDocument"); d != nil {
				total += l.policy(d, join(path, fmt.Sprintf("Policies[%d].PolicyDocument", i)), roleIdentity, 0, str)
			}
		}
		limit := MaxRoleInlineSize
		if !isRole {
			limit = MaxGroupInlineSize
		}
		if total > limit {
			l.add(ps, join(path, "Policies"), "policy-size", SeverityError,
				fmt.Sprintf("inline policies total %d characters without whitespace; IAM allows %d", total, limit), "move statements into managed policies")
		}
	}
}
