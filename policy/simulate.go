package policy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/policy/iamdata"
)

// Request is one API call to evaluate offline.
type Request struct {
	Action    string // "s3:GetObject"
	Resource  string // ARN of the resource, or "*" for wildcard-only actions
	Principal string // ARN of the caller: an IAM role, user, assumed-role session or account root; or a service name
	// ResourceAccount owns the resource. Empty means the account in the
	// resource ARN, or the principal's account when the ARN has none (S3).
	ResourceAccount string
	// Context holds the request's condition keys (case-insensitive names).
	// Keys whose type is ArrayOf... are multivalued; others take one value.
	Context map[string][]string
}

// Policies are the policies that apply to a request.
type Policies struct {
	Identity []*Document // the principal's identity policies
	Resource *Document   // the resource's policy (bucket policy, key policy...)
	Trust    *Document   // a role's trust policy: the resource policy of sts:AssumeRole*
	Boundary *Document   // the principal's permissions boundary
}

// Outcome is the final answer.
type Outcome string

const (
	Allowed      Outcome = "allowed"
	ExplicitDeny Outcome = "explicit-deny"
	ImplicitDeny Outcome = "implicit-deny"
)

// StatementRef names a statement that decided the outcome.
type StatementRef struct {
	Policy string // "identity[0]", "resource", "trust" or "boundary"
	Index  int    // statement index in that policy
	Sid    string
	Effect string
}

func (r StatementRef) String() string {
	s := fmt.Sprintf("%s Statement[%d] (%s)", r.Policy, r.Index, r.Effect)
	if r.Sid != "" {
		s = fmt.Sprintf("%s Statement[%d] %q (%s)", r.Policy, r.Index, r.Sid, r.Effect)
	}
	return s
}

// Decision is the result of Evaluate.
type Decision struct {
	Outcome     Outcome
	SameAccount bool
	// Decisive are the statements that decided: the denying statements for
	// an explicit deny, the allowing ones for an allow; empty for an
	// implicit deny.
	Decisive []StatementRef
	// Reason explains an implicit deny in one line.
	Reason string
}

// Allowed reports whether the request is allowed.
func (d Decision) Allowed() bool { return d.Outcome == Allowed }

// ErrUnsupported is returned for policies or requests the evaluator does not
// model; it refuses rather than guesses.
var ErrUnsupported = errors.New("not supported by the offline evaluator")

// Evaluate decides a request the way IAM's policy evaluation logic does for
// identity policies, a resource (or trust) policy and a permissions boundary,
// within one account or across two. SCPs, RCPs, session policies and VPC
// endpoint policies are not modelled: pass none and read the answer as "as
// far as these policies go".
func Evaluate(req Request, pol Policies) (Decision, error) {
	if err := req.validate(); err != nil {
		return Decision{}, fmt.Errorf("evaluate request: %w", err)
	}
	resPolicy, resName := pol.Resource, "resource"
	if usesTrust(req.Action) && pol.Trust != nil {
		if pol.Resource != nil {
			return Decision{}, fmt.Errorf("evaluate request: both a resource and a trust policy for %s: %w", req.Action, ErrUnsupported)
		}
		resPolicy, resName = pol.Trust, "trust"
	}
	ev := &evaluator{req: req}
	ev.principalAcct = principalAccount(req.Principal)
	ev.resourceAcct = req.resourceAccount(ev.principalAcct)

	identity, err := ev.analyze(pol.Identity, "identity")
	if err != nil {
		return Decision{}, err
	}
	var boundary *analysis
	if pol.Boundary != nil {
		if boundary, err = ev.analyze([]*Document{pol.Boundary}, "boundary"); err != nil {
			return Decision{}, err
		}
	}
	resource, err := ev.analyzeResource(resPolicy, resName)
	if err != nil {
		return Decision{}, err
	}

	d := Decision{SameAccount: ev.principalAcct != "" && ev.principalAcct == ev.resourceAcct}
	// 1. An explicit deny anywhere wins.
	var denies []StatementRef
	denies = append(denies, identity.deny...)
	denies = append(denies, resource.deny...)
	if boundary != nil {
		denies = append(denies, boundary.deny...)
	}
	if len(denies) > 0 {
		d.Outcome, d.Decisive = ExplicitDeny, denies
		return d, nil
	}
	isService := !strings.HasPrefix(req.Principal, "arn:")
	// 2. Allows, by account relation.
	switch {
	case isService:
		if len(resource.allowDirect) > 0 {
			d.Outcome, d.Decisive = Allowed, resource.allowDirect
			return d, nil
		}
		d.Outcome, d.Reason = ImplicitDeny, ev.explain("a service principal needs an allow in the resource policy")
		return d, nil
	case d.SameAccount:
		// Within an account, the resource policy or an identity policy is
		// enough, except where the service trusts no account implicitly:
		// a role's trust policy and a KMS key policy must name the caller's
		// account for identity policies to count.
		trustNeeded := isSTS(req.Action) && resPolicy != nil || isKMSKey(req)
		identityOK := len(identity.allow) > 0 && (!trustNeeded || len(resource.allowAccount) > 0)
		var allowedBy []StatementRef
		if len(resource.allowDirect) > 0 {
			allowedBy = append(allowedBy, resource.allowDirect...)
		}
		if identityOK {
			allowedBy = append(allowedBy, identity.allow...)
			if trustNeeded {
				allowedBy = append(allowedBy, resource.allowAccount...)
			}
		}
		if len(allowedBy) == 0 {
			d.Outcome, d.Reason = ImplicitDeny, "no statement allows the request"
			if trustNeeded && len(identity.allow) > 0 {
				d.Reason = "the " + resName + " policy does not allow the caller or its account"
				if isKMSKey(req) && resPolicy == nil {
					d.Reason = "KMS uses identity policies only when the key policy allows the account: pass the key policy as the resource policy"
				}
			}
			d.Reason = ev.explain(d.Reason)
			return d, nil
		}
		if boundary != nil && len(boundary.allow) == 0 {
			// A resource policy naming the caller itself is not limited by
			// the boundary (users and sessions; roles only via "*").
			bypass := ev.boundaryBypass(resource)
			if len(bypass) == 0 {
				d.Outcome, d.Reason = ImplicitDeny, ev.explain("the permissions boundary does not allow the request")
				return d, nil
			}
			allowedBy = bypass
		} else if boundary != nil {
			allowedBy = append(allowedBy, boundary.allow...)
		}
		d.Outcome, d.Decisive = Allowed, allowedBy
		return d, nil
	default:
		// Across accounts both sides must allow.
		resAllow := append(append([]StatementRef{}, resource.allowDirect...), resource.allowAccount...)
		switch {
		case len(resAllow) == 0:
			d.Outcome, d.Reason = ImplicitDeny, "cross-account: the "+resName+" policy does not allow the caller or its account"
		case len(identity.allow) == 0:
			d.Outcome, d.Reason = ImplicitDeny, "cross-account: no identity policy allows the request"
		case boundary != nil && len(boundary.allow) == 0:
			d.Outcome, d.Reason = ImplicitDeny, "the permissions boundary does not allow the request"
		default:
			d.Outcome = Allowed
			d.Decisive = append(resAllow, identity.allow...)
			if boundary != nil {
				d.Decisive = append(d.Decisive, boundary.allow...)
			}
		}
		if d.Outcome == ImplicitDeny {
			d.Reason = ev.explain(d.Reason)
		}
		return d, nil
	}
}

// usesTrust reports whether a role's trust policy is the resource policy of
// the action: the AssumeRole calls and what STS authorizes along with them
// (session tags, source identity, context).
func usesTrust(action string) bool {
	a := strings.ToLower(action)
	return strings.HasPrefix(a, "sts:assumerole") || a == "sts:tagsession" || a == "sts:setsourceidentity" || a == "sts:setcontext"
}

// isKMSKey reports whether the request is on a KMS key, whose key policy
// must allow the account before identity policies count.
func isKMSKey(r Request) bool {
	if !strings.HasPrefix(strings.ToLower(r.Action), "kms:") {
		return false
	}
	a, err := ParseARN(r.Resource)
	return err == nil && a.Service == "kms" && strings.HasPrefix(a.Resource, "key/")
}

func isSTS(action string) bool {
	return strings.HasPrefix(strings.ToLower(action), "sts:")
}

func (r Request) validate() error {
	if _, _, ok := strings.Cut(r.Action, ":"); !ok || strings.ContainsAny(r.Action, "*?") {
		return fmt.Errorf("action %q: want one action such as s3:GetObject", r.Action)
	}
	if r.Resource != "*" {
		if _, err := ParseARN(r.Resource); err != nil || strings.ContainsAny(r.Resource, "*?") {
			return fmt.Errorf("resource %q: want one ARN or \"*\"", r.Resource)
		}
	}
	if r.Principal == "" {
		return errors.New("a principal is required")
	}
	if strings.HasPrefix(r.Principal, "arn:") {
		if principalAccount(r.Principal) == "" {
			return fmt.Errorf("principal %q: want an IAM role, user, assumed-role or root ARN", r.Principal)
		}
	} else if !strings.HasSuffix(r.Principal, ".amazonaws.com") {
		return fmt.Errorf("principal %q: want an ARN or a service principal such as ec2.amazonaws.com", r.Principal)
	}
	return nil
}

// principalAccount is the account of an IAM or STS principal ARN.
func principalAccount(p string) string {
	a, err := ParseARN(p)
	if err != nil || (a.Service != "iam" && a.Service != "sts") || !accountRe.MatchString(a.Account) {
		return ""
	}
	return a.Account
}

func (r Request) resourceAccount(principalAcct string) string {
	if r.ResourceAccount != "" {
		return r.ResourceAccount
	}
	if a, err := ParseARN(r.Resource); err == nil && accountRe.MatchString(a.Account) {
		return a.Account
	}
	return principalAcct
}

type evaluator struct {
	req                         Request
	principalAcct, resourceAcct string
	// literal is set while evaluating a policy whose Version is not
	// 2012-10-17: IAM substitutes no policy variables there.
	literal bool
	// nearMisses are allow statements that apply to the request but for
	// condition keys missing from its context: the likeliest reason for
	// an implicit deny, and one the account relation does not explain.
	nearMisses []nearMiss
}

type nearMiss struct {
	ref  StatementRef
	keys []string
}

// explain returns the reason for an implicit deny, naming the condition
// keys whose absence kept allow statements from applying.
func (ev *evaluator) explain(reason string) string {
	if len(ev.nearMisses) == 0 {
		return reason
	}
	var parts []string
	for _, m := range ev.nearMisses {
		noun := "condition key " + m.keys[0] + " is"
		if len(m.keys) > 1 {
			noun = "condition keys " + strings.Join(m.keys, ", ") + " are"
		}
		parts = append(parts, fmt.Sprintf("%s would allow the request, but %s not in the request context", m.ref, noun))
	}
	return strings.Join(parts, "; ")
}

// analysis collects matching statements of one kind of policy.
type analysis struct {
	allow, deny []StatementRef
	// Resource policies only: allows naming the caller (or "*") and allows
	// naming only the caller's account.
	allowDirect, allowAccount []StatementRef
	// allowDirectWildcard are the direct allows that matched via "*".
	allowDirectWildcard []StatementRef
}

func (ev *evaluator) analyze(docs []*Document, kind string) (*analysis, error) {
	a := &analysis{}
	for i, d := range docs {
		name := kind
		if kind == "identity" {
			name = fmt.Sprintf("identity[%d]", i)
		}
		ev.literal = d.Version != Version2012
		for j, s := range d.Statement {
			if s.Principal != nil || s.NotPrincipal != nil {
				return nil, fmt.Errorf("evaluate %s policy: statement %d has a Principal: %w", name, j, ErrUnsupported)
			}
			ok, missing, err := ev.matches(s, true)
			if err != nil {
				return nil, fmt.Errorf("evaluate %s Statement[%d]: %w", name, j, err)
			}
			ref := StatementRef{Policy: name, Index: j, Sid: s.Sid, Effect: s.Effect}
			if !ok {
				if len(missing) > 0 && s.Effect == "Allow" {
					ev.nearMisses = append(ev.nearMisses, nearMiss{ref, missing})
				}
				continue
			}
			if s.Effect == "Deny" {
				a.deny = append(a.deny, ref)
			} else {
				a.allow = append(a.allow, ref)
			}
		}
	}
	return a, nil
}

func (ev *evaluator) analyzeResource(d *Document, name string) (*analysis, error) {
	a := &analysis{}
	if d == nil {
		return a, nil
	}
	ev.literal = d.Version != Version2012
	for j, s := range d.Statement {
		ok, missing, err := ev.matches(s, false)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s Statement[%d]: %w", name, j, err)
		}
		if !ok && len(missing) == 0 {
			continue
		}
		m, wildcard, err := ev.principalMatch(s)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s Statement[%d]: %w", name, j, err)
		}
		if m == noMatch {
			continue
		}
		ref := StatementRef{Policy: name, Index: j, Sid: s.Sid, Effect: s.Effect}
		if !ok {
			if s.Effect == "Allow" {
				ev.nearMisses = append(ev.nearMisses, nearMiss{ref, missing})
			}
			continue
		}
		switch {
		case s.Effect == "Deny":
			a.deny = append(a.deny, ref)
		case m == directMatch:
			a.allowDirect = append(a.allowDirect, ref)
			if wildcard {
				a.allowDirectWildcard = append(a.allowDirectWildcard, ref)
			}
		default:
			a.allowAccount = append(a.allowAccount, ref)
		}
	}
	return a, nil
}

// boundaryBypass returns the resource policy allows that a permissions
// boundary does not limit within an account.
func (ev *evaluator) boundaryBypass(res *analysis) []StatementRef {
	a, _ := ParseARN(ev.req.Principal)
	switch {
	case a.Service == "sts" && strings.HasPrefix(a.Resource, "assumed-role/"),
		a.Service == "iam" && strings.HasPrefix(a.Resource, "user/"),
		a.Service == "sts" && strings.HasPrefix(a.Resource, "federated-user/"):
		return res.allowDirect
	case a.Service == "iam" && strings.HasPrefix(a.Resource, "role/"):
		return res.allowDirectWildcard
	}
	return nil
}

type principalResult int

const (
	noMatch principalResult = iota
	accountMatch
	directMatch
)

// principalMatch matches the request principal against a resource policy
// statement's Principal or NotPrincipal.
func (ev *evaluator) principalMatch(s Statement) (principalResult, bool, error) {
	if s.Principal == nil && s.NotPrincipal == nil {
		return noMatch, false, errors.New("a resource policy statement without Principal")
	}
	p := s.Principal
	if p == nil {
		p = s.NotPrincipal
	}
	best, wildcard := noMatch, false
	if p.All {
		best, wildcard = directMatch, true
	}
	for typ, ids := range p.IDs {
		for _, id := range ids {
			var m principalResult
			switch typ {
			case "AWS":
				if id == "*" {
					m, wildcard = directMatch, true
					break
				}
				if strings.ContainsAny(id, "*?") {
					return noMatch, false, fmt.Errorf("wildcard principal %q (IAM rejects it): %w", id, ErrUnsupported)
				}
				m = ev.awsPrincipal(id)
			case "Service":
				if id == ev.req.Principal {
					m = directMatch
				}
			default:
				return noMatch, false, fmt.Errorf("principal type %s: %w", typ, ErrUnsupported)
			}
			if m > best {
				best = m
			}
		}
	}
	if s.NotPrincipal != nil {
		if best == noMatch {
			return directMatch, false, nil
		}
		return noMatch, false, nil
	}
	return best, wildcard, nil
}

// awsPrincipal matches one "AWS" principal value: the caller's ARN, the
// role of an assumed-role session, or the caller's account.
func (ev *evaluator) awsPrincipal(id string) principalResult {
	caller := ev.req.Principal
	if accountRe.MatchString(id) {
		if id == ev.principalAcct {
			return accountMatch
		}
		return noMatch
	}
	a, err := ParseARN(id)
	if err != nil {
		return noMatch
	}
	if a.Service == "iam" && a.Resource == "root" {
		if a.Account == ev.principalAcct {
			return accountMatch
		}
		return noMatch
	}
	if id == caller {
		return directMatch
	}
	// arn:aws:sts::A:assumed-role/NAME/SESSION matches arn:aws:iam::A:role/[PATH/]NAME.
	c, err := ParseARN(caller)
	if err == nil && c.Service == "sts" && strings.HasPrefix(c.Resource, "assumed-role/") &&
		a.Service == "iam" && strings.HasPrefix(a.Resource, "role/") && a.Account == c.Account {
		parts := strings.Split(c.Resource, "/")
		role := a.Resource[strings.LastIndex(a.Resource, "/")+1:]
		if len(parts) >= 3 && parts[1] == role {
			return directMatch
		}
	}
	return noMatch
}

// matches reports whether a statement applies to the request: action,
// resource and conditions (not the principal). When only conditions on keys
// absent from the request context fail, missing names those keys.
func (ev *evaluator) matches(s Statement, needResource bool) (ok bool, missing []string, err error) {
	if !ev.actionMatches(s) {
		return false, nil, nil
	}
	ok, err = ev.resourceMatches(s, needResource)
	if err != nil || !ok {
		return false, nil, err
	}
	return ev.conditionsMatch(s.Condition)
}

func (ev *evaluator) actionMatches(s Statement) bool {
	list := s.Action
	if s.NotAction != nil {
		list = s.NotAction
	}
	want := strings.ToLower(ev.req.Action)
	hit := false
	for _, a := range list {
		if iamdata.Wildcard(strings.ToLower(a), want) {
			hit = true
			break
		}
	}
	if s.NotAction != nil {
		return !hit
	}
	return hit
}

func (ev *evaluator) resourceMatches(s Statement, needResource bool) (bool, error) {
	list := s.Resource
	if s.NotResource != nil {
		list = s.NotResource
	}
	if list == nil {
		// Trust and some resource policies omit Resource: the statement
		// is about the resource the policy is attached to.
		return !needResource, nil
	}
	hit := false
	for _, pat := range list {
		ok, err := ev.resourceMatch(pat)
		if err != nil {
			return false, err
		}
		if ok {
			hit = true
			break
		}
	}
	if s.NotResource != nil {
		return !hit, nil
	}
	return hit, nil
}

func (ev *evaluator) resourceMatch(pattern string) (bool, error) {
	if pattern == "*" {
		return true, nil
	}
	p, ok, err := ev.substitute(pattern)
	if err != nil || !ok {
		return false, err
	}
	if ev.req.Resource == "*" {
		return false, nil
	}
	return arnLike(p, ev.req.Resource), nil
}

// arnLike matches an ARN pattern field by field, as IAM does: a wildcard
// does not match across the colons that separate the first five fields.
func arnLike(pattern, arn string) bool {
	pp := strings.SplitN(pattern, ":", 6)
	ap := strings.SplitN(arn, ":", 6)
	if len(pp) != 6 || len(ap) != 6 {
		return iamdata.Wildcard(pattern, arn)
	}
	for i := range pp {
		if !iamdata.Wildcard(pp[i], ap[i]) {
			return false
		}
	}
	return true
}

// substitute replaces policy variables (${aws:username},
// ${aws:PrincipalTag/team}, ${key, 'default'}, ${*}, ${?}, ${$}) with request
// context values. ok is false when a variable has no value: the pattern
// then matches nothing, as in IAM. In a 2008-10-17 policy (or one without
// Version) variables are literal text.
func (ev *evaluator) substitute(s string) (string, bool, error) {
	if ev.literal || !strings.Contains(s, "${") {
		return s, true, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), true, nil
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return "", false, fmt.Errorf("unterminated policy variable in %q", s)
		}
		b.WriteString(s[:i])
		body := s[i+2 : i+j]
		s = s[i+j+1:]
		switch body {
		case "*", "?", "$":
			// Escapes for literal characters; a literal * or ? in a
			// pattern would need escaping in the matcher too.
			if body != "$" {
				return "", false, fmt.Errorf("policy variable ${%s}: %w", body, ErrUnsupported)
			}
			b.WriteString(body)
			continue
		}
		key, def, hasDef := strings.Cut(body, ",")
		key = strings.TrimSpace(key)
		vals, ok := ev.context(key)
		switch {
		case ok && len(vals) == 1:
			b.WriteString(vals[0])
		case ok:
			return "", false, fmt.Errorf("policy variable ${%s} has %d values: %w", key, len(vals), ErrUnsupported)
		case hasDef:
			def = strings.TrimSpace(def)
			if len(def) < 2 || def[0] != '\'' || def[len(def)-1] != '\'' {
				return "", false, fmt.Errorf("policy variable default %s: want 'quoted'", def)
			}
			b.WriteString(def[1 : len(def)-1])
		default:
			return "", false, nil
		}
	}
}

func (ev *evaluator) context(key string) ([]string, bool) {
	for k, v := range ev.req.Context {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// multivalued reports whether a key is of an ArrayOf type.
func multivalued(key string) bool {
	t, err := iamdata.Load()
	if err != nil {
		return false
	}
	typ, _, ok := t.ConditionKey(key)
	return ok && strings.HasPrefix(typ, "ArrayOf")
}

// conditionsMatch evaluates every condition (not stopping at the first that
// fails) so it can tell a failure on a present key, which is final, from
// failures only on keys missing from the context, which it returns sorted.
func (ev *evaluator) conditionsMatch(c Condition) (bool, []string, error) {
	failed := false
	var missing []string
	for opName, keys := range c {
		op, err := ParseOperator(opName)
		if err != nil {
			return false, nil, fmt.Errorf("condition: %w", err)
		}
		for key, policyVals := range keys {
			ok, err := ev.conditionMatch(op, key, policyVals)
			if err != nil {
				return false, nil, fmt.Errorf("condition %s %s: %w", opName, key, err)
			}
			if ok {
				continue
			}
			if _, present := ev.context(key); !present && op.Base != "Null" {
				missing = append(missing, key)
			} else {
				failed = true
			}
		}
	}
	if failed {
		return false, nil, nil
	}
	sort.Strings(missing)
	return len(missing) == 0, missing, nil
}

func negated(base string) bool {
	return strings.Contains(base, "Not")
}

func (ev *evaluator) conditionMatch(op Operator, key string, policyVals Values) (bool, error) {
	ctx, present := ev.context(key)
	if op.Base == "Null" {
		want := "false"
		if !present {
			want = "true"
		}
		for _, v := range policyVals {
			if strings.EqualFold(v, want) {
				return true, nil
			}
		}
		return false, nil
	}
	switch op.Set {
	case "ForAllValues":
		if !present {
			return true, nil
		}
		for _, c := range ctx {
			ok, err := ev.compare(op.Base, c, policyVals)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case "ForAnyValue":
		if !present {
			return false, nil
		}
		for _, c := range ctx {
			ok, err := ev.compare(op.Base, c, policyVals)
			if err != nil {
				return false, err
			}
			if ok {
				return true, nil
			}
		}
		return false, nil
	}
	if !present {
		return op.IfExists || negated(op.Base), nil
	}
	if len(ctx) != 1 || multivalued(key) {
		// IAM requires a set operator for a multivalued key; a single-value
		// operator never matches it.
		return false, nil
	}
	return ev.compare(op.Base, ctx[0], policyVals)
}

// compare applies a base operator to one context value: positive operators
// match if any policy value matches, negated ones if none does.
func (ev *evaluator) compare(base string, ctxVal string, policyVals Values) (bool, error) {
	neg := negated(base)
	positive := strings.Replace(base, "Not", "", 1)
	if base == "NotIpAddress" {
		positive = "IpAddress"
	}
	for _, pv := range policyVals {
		var (
			ok  bool
			err error
		)
		switch {
		case strings.HasPrefix(positive, "String") || strings.HasPrefix(positive, "Arn"):
			var sub bool
			pv, sub, err = ev.substitute(pv)
			if err != nil {
				return false, err
			}
			if !sub {
				// An unresolved variable matches nothing, for negated
				// operators too.
				return false, nil
			}
			switch positive {
			case "StringEquals":
				ok = ctxVal == pv
			case "StringEqualsIgnoreCase":
				ok = strings.EqualFold(ctxVal, pv)
			case "StringLike":
				ok = iamdata.Wildcard(pv, ctxVal)
			case "ArnEquals", "ArnLike":
				ok = arnLike(pv, ctxVal)
			default:
				return false, fmt.Errorf("operator %s: %w", base, ErrUnsupported)
			}
		case strings.HasPrefix(positive, "Numeric"):
			ok, err = compareNumbers(positive, ctxVal, pv)
		case strings.HasPrefix(positive, "Date"):
			ok, err = compareDates(positive, ctxVal, pv)
		case positive == "Bool":
			ok = strings.EqualFold(ctxVal, pv)
		case positive == "BinaryEquals":
			a, err1 := base64.StdEncoding.DecodeString(ctxVal)
			b, err2 := base64.StdEncoding.DecodeString(pv)
			ok = err1 == nil && err2 == nil && string(a) == string(b)
		case positive == "IpAddress":
			ok, err = ipIn(ctxVal, pv)
		default:
			return false, fmt.Errorf("operator %s: %w", base, ErrUnsupported)
		}
		if err != nil {
			return false, err
		}
		if ok {
			return !neg, nil
		}
	}
	return neg, nil
}

// cmp turns a -1/0/1 comparison into the operator's answer.
func cmp(op string, c int) bool {
	switch {
	case strings.HasSuffix(op, "LessThanEquals"):
		return c <= 0
	case strings.HasSuffix(op, "LessThan"):
		return c < 0
	case strings.HasSuffix(op, "GreaterThanEquals"):
		return c >= 0
	case strings.HasSuffix(op, "GreaterThan"):
		return c > 0
	}
	return c == 0 // Equals
}

func compareNumbers(op, ctxVal, pv string) (bool, error) {
	a, err := strconv.ParseFloat(ctxVal, 64)
	if err != nil {
		return false, nil // a non-number in the request matches nothing
	}
	b, err := strconv.ParseFloat(pv, 64)
	if err != nil {
		return false, fmt.Errorf("policy value %q is not a number", pv)
	}
	c := 0
	if a < b {
		c = -1
	} else if a > b {
		c = 1
	}
	return cmp(op, c), nil
}

func compareDates(op, ctxVal, pv string) (bool, error) {
	a, err := parseDate(ctxVal)
	if err != nil {
		return false, nil
	}
	b, err := parseDate(pv)
	if err != nil {
		return false, fmt.Errorf("policy value %q is not a date", pv)
	}
	return cmp(op, a.Compare(b)), nil
}

func ipIn(ctxVal, pv string) (bool, error) {
	pfx, err := parseCIDR(pv)
	if err != nil {
		return false, fmt.Errorf("policy value %q is not an IP address or CIDR", pv)
	}
	ip, err := parseCIDR(ctxVal)
	if err != nil {
		return false, nil
	}
	return pfx.Masked().Contains(ip.Addr()), nil
}
