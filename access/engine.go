package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/org"
)

// Engine carries out requests and decisions against a Store, the
// Identity Store and Identity Center.
type Engine struct {
	Catalog   *org.Catalog
	Directory Directory
	Accounts  Accounts
	Center    Assigner
	Store     Store
	// Notify announces new requests; nil sends nothing.
	Notify Notifier
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Lease is how long a claim on a grant lasts (5 minutes when zero):
	// longer than an assignment call with its polling takes.
	Lease time.Duration
	// Warn reports what must not fail a decision (a notice not sent).
	Warn func(msg string, err error)
	// ID names this replica in claims ("berth" when empty); replicas
	// sharing a database need different ones.
	ID string
}

func (e *Engine) worker(what string) string {
	if e.ID == "" {
		return "berth/" + what
	}
	return e.ID + "/" + what
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) lease() time.Duration {
	if e.Lease > 0 {
		return e.Lease
	}
	return 5 * time.Minute
}

// member reports whether the user (Identity Store id) is in group.
func (e *Engine) member(ctx context.Context, groups map[string]bool, group string) (bool, error) {
	id, err := e.Directory.GroupID(ctx, group)
	if errors.Is(err, errkind.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return groups[id], nil
}

func (e *Engine) identity(ctx context.Context, email string) (string, map[string]bool, error) {
	uid, err := e.Directory.UserID(ctx, email)
	if err != nil {
		return "", nil, err
	}
	groups, err := e.Directory.GroupIDs(ctx, uid)
	if err != nil {
		return "", nil, err
	}
	return uid, groups, nil
}

// Ask records requester's request for permission set ps on account for d,
// after checking the escalation exists, the requester is in its eligible
// group and d is within its maximum, and announces it to the approvers.
func (e *Engine) Ask(ctx context.Context, requester, account, ps string, d time.Duration, reason string) (*Request, error) {
	if strings.TrimSpace(reason) == "" || len(reason) > 1000 {
		return nil, fmt.Errorf("reason: say why you need the access, in 1 to 1000 characters: %w", errkind.Invalid)
	}
	a, esc, err := Escalation(e.Catalog, account, ps)
	if err != nil {
		return nil, err
	}
	if err := CheckDuration(esc, d); err != nil {
		return nil, err
	}
	uid, groups, err := e.identity(ctx, requester)
	if err != nil {
		return nil, fmt.Errorf("request %s on %s: %w", ps, account, err)
	}
	ok, err := e.member(ctx, groups, esc.Eligible)
	if err != nil {
		return nil, fmt.Errorf("request %s on %s: %w", ps, account, err)
	}
	if !ok {
		return nil, fmt.Errorf("%s on %s is for members of group %s, and %s is not one: %w", ps, account, esc.Eligible, requester, ErrIneligible)
	}
	accountID, err := e.Accounts.AccountID(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("request %s on %s: %w", ps, account, err)
	}
	psARN, err := e.Center.PermissionSetARN(ctx, ps)
	if err != nil {
		return nil, fmt.Errorf("request %s on %s: %w", ps, account, err)
	}
	r := &Request{
		Requester: requester, Account: account, PermissionSet: ps, Duration: d, Reason: reason,
		Status: Pending, Created: e.now(), Approvers: esc.Approvers,
		Key: GrantKey{PrincipalID: uid, AccountID: accountID, PermissionSetARN: psARN},
	}
	if err := e.Store.CreateRequest(ctx, r); err != nil {
		return nil, err
	}
	if e.Notify != nil {
		if err := e.Notify.Notify(ctx, r); err != nil && e.Warn != nil {
			e.Warn("announce access request", err)
		}
	}
	return r, nil
}

// escalationOf finds the escalation a stored request was made under; a
// catalog changed since then may no longer have it.
func (e *Engine) escalationOf(r *Request) (org.Escalation, error) {
	_, esc, err := Escalation(e.Catalog, r.Account, r.PermissionSet)
	if err != nil {
		return esc, fmt.Errorf("request %d: the catalog changed: %w", r.ID, err)
	}
	return esc, nil
}

// Approve approves a pending request and creates its assignment unless
// another covering request already holds it. The request is approved even
// when Identity Center fails: the grant then stays due and the worker
// retries it; the returned grant says so.
func (e *Engine) Approve(ctx context.Context, approver string, id int64, reason string) (*Request, *Grant, error) {
	r, err := e.Store.Request(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	esc, err := e.escalationOf(r)
	if err != nil {
		return nil, nil, err
	}
	if r.Status != Pending {
		return nil, nil, fmt.Errorf("request %d is %s: %w", id, r.Status, ErrNotPending)
	}
	_, groups, err := e.identity(ctx, approver)
	if err != nil && !errors.Is(err, errkind.NotFound) {
		return nil, nil, fmt.Errorf("approve request %d: %w", id, err)
	}
	ok := false
	if err == nil {
		if ok, err = e.member(ctx, groups, esc.Approvers); err != nil {
			return nil, nil, fmt.Errorf("approve request %d: %w", id, err)
		}
	}
	if err := CheckApprover(esc, r, approver, ok); err != nil {
		return nil, nil, err
	}
	now := e.now()
	r.Expires = now.Add(r.Duration)
	if err := e.Store.Decide(ctx, r, Pending, Decision{RequestID: id, Actor: approver, Status: Approved, Reason: reason, Time: now}); err != nil {
		return nil, nil, err
	}
	g, err := e.workOn(ctx, e.worker("approve"), &r.Key)
	return r, g, err
}

// Deny refuses a pending request; only an approver may (self-denial is
// allowed: it is a withdrawal).
func (e *Engine) Deny(ctx context.Context, actor string, id int64, reason string) (*Request, error) {
	r, err := e.Store.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Status != Pending {
		return nil, fmt.Errorf("request %d is %s: %w", id, r.Status, ErrNotPending)
	}
	if actor != r.Requester {
		if err := e.mayDecide(ctx, r, actor); err != nil {
			return nil, err
		}
	}
	if err := e.Store.Decide(ctx, r, Pending, Decision{RequestID: id, Actor: actor, Status: Denied, Reason: reason, Time: e.now()}); err != nil {
		return nil, err
	}
	return r, nil
}

// mayDecide checks actor is in the approver group of r's escalation.
func (e *Engine) mayDecide(ctx context.Context, r *Request, actor string) error {
	esc, err := e.escalationOf(r)
	if err != nil {
		return err
	}
	_, groups, err := e.identity(ctx, actor)
	if errors.Is(err, errkind.NotFound) {
		return fmt.Errorf("request %d: %s is not in the Identity Store: %w", r.ID, actor, ErrNotApprover)
	}
	if err != nil {
		return err
	}
	ok, err := e.member(ctx, groups, esc.Approvers)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("request %d: deciding on %s on %s needs membership of group %s: %w", r.ID, r.PermissionSet, r.Account, esc.Approvers, ErrNotApprover)
	}
	return nil
}

// Decidable returns the requests among reqs that actor may decide on: those
// of escalations whose approver group actor is in.
func (e *Engine) Decidable(ctx context.Context, actor string, reqs []Request) ([]Request, error) {
	_, groups, err := e.identity(ctx, actor)
	if errors.Is(err, errkind.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Request
	memo := map[string]bool{}
	for _, r := range reqs {
		esc, err := e.escalationOf(&r)
		if err != nil {
			continue // the catalog no longer has it: nobody can approve it
		}
		ok, seen := memo[esc.Approvers]
		if !seen {
			if ok, err = e.member(ctx, groups, esc.Approvers); err != nil {
				return nil, err
			}
			memo[esc.Approvers] = ok
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// Revoke ends an approved request early (its requester or an approver),
// or withdraws a pending one. The assignment is deleted only when no
// other request covers it; a failed delete stays due and is retried.
func (e *Engine) Revoke(ctx context.Context, actor string, id int64, reason string) (*Request, *Grant, error) {
	r, err := e.Store.Request(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if r.Status != Approved && r.Status != Pending {
		return nil, nil, fmt.Errorf("request %d is %s; only a pending or approved request can be revoked: %w", id, r.Status, errkind.Conflict)
	}
	if actor != r.Requester {
		if err := e.mayDecide(ctx, r, actor); err != nil {
			return nil, nil, err
		}
	}
	from := r.Status
	if err := e.Store.Decide(ctx, r, from, Decision{RequestID: id, Actor: actor, Status: Revoked, Reason: reason, Time: e.now()}); err != nil {
		return nil, nil, err
	}
	if from == Pending {
		return r, nil, nil
	}
	g, err := e.workOn(ctx, e.worker("revoke"), &r.Key)
	return r, g, err
}

// workOn claims the grant of key and does its work now. When another
// replica holds it, that replica does the work and nil is returned.
func (e *Engine) workOn(ctx context.Context, worker string, key *GrantKey) (*Grant, error) {
	g, err := e.Store.ClaimGrant(ctx, worker, key, e.now(), e.lease())
	if errors.Is(err, ErrNothingDue) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, err = e.work(ctx, worker, g)
	return g, err
}

// Calls made on a grant.
const (
	CallNone   = ""
	CallCreate = "create"
	CallDelete = "delete"
)

// work makes Identity Center match the requests covering g, records the
// outcome and returns the call it made. A failed call is not an error of
// work: it is stored on the grant, retried after Backoff, and shown.
func (e *Engine) work(ctx context.Context, worker string, g *Grant) (string, error) {
	now := e.now()
	covering, err := e.Store.Covering(ctx, g.Key, now)
	if err != nil {
		return CallNone, err
	}
	want, _ := Wanted(covering, now)
	var call string
	var callErr error
	switch {
	case want && !g.Present:
		call, callErr = CallCreate, e.Center.Assign(ctx, g.Key)
	case !want && g.Present:
		call, callErr = CallDelete, e.Center.Unassign(ctx, g.Key)
	}
	if callErr != nil {
		g.Attempts++
		g.LastError = callErr.Error()
		g.Due = true
		g.NextAttempt = e.now().Add(Backoff(g.Attempts))
	} else {
		g.Present, g.Due, g.Attempts, g.LastError = want, false, 0, ""
	}
	return call, e.Store.FinishGrant(context.WithoutCancel(ctx), worker, g)
}

// Worked is a grant a pass worked on, after the work, and the call made
// (CallNone when Identity Center already matched).
type Worked struct {
	Grant
	Call string
}

// Outcome is what one pass of the worker did.
type Outcome struct {
	Expired []Request
	// Worked are the grants worked on, with their outcome.
	Worked []Worked
}

// Reconcile expires requests that reached their end and works on every
// grant that is due, as worker. Several replicas may run it at once: each
// expiry and each grant's work happens once.
func (e *Engine) Reconcile(ctx context.Context, worker string) (*Outcome, error) {
	out := &Outcome{}
	exp, err := e.Store.ExpireDue(ctx, e.now())
	if err != nil {
		return out, err
	}
	out.Expired = exp
	for {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		g, err := e.Store.ClaimGrant(ctx, worker, nil, e.now(), e.lease())
		if errors.Is(err, ErrNothingDue) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		call, err := e.work(ctx, worker, g)
		if err != nil {
			return out, err
		}
		out.Worked = append(out.Worked, Worked{Grant: *g, Call: call})
	}
}

// Eligibility is one escalation a user may ask for.
type Eligibility struct {
	Account       string        `json:"account"`
	PermissionSet string        `json:"permission_set"`
	MaxDuration   time.Duration `json:"max_duration_ns"`
	Approvers     string        `json:"approvers"`
}

// ActiveGrant is access a user holds now.
type ActiveGrant struct {
	Account       string        `json:"account"`
	PermissionSet string        `json:"permission_set"`
	Expires       time.Time     `json:"expires"`
	Left          time.Duration `json:"left_ns"`
	// State: "active", or "pending" while the assignment is not yet
	// created (LastError says why).
	State     string `json:"state"`
	LastError string `json:"last_error,omitempty"`
}

// Identity is what whoami shows.
type Identity struct {
	Email  string `json:"email"`
	UserID string `json:"user_id"`
	// Groups are the catalog's groups the user is a member of.
	Groups   []string      `json:"groups"`
	Eligible []Eligibility `json:"eligible"`
	Active   []ActiveGrant `json:"active"`
	// Removing are assignments berth still has to delete (a failed
	// revoke being retried).
	Removing []Grant `json:"removing"`
}

// WhoAmI returns the user's Identity Store user, the catalog's groups
// they are in, the escalations they may ask for and their grants.
func (e *Engine) WhoAmI(ctx context.Context, email string) (*Identity, error) {
	uid, groups, err := e.identity(ctx, email)
	if err != nil {
		return nil, err
	}
	id := &Identity{Email: email, UserID: uid, Groups: []string{}, Eligible: []Eligibility{}, Active: []ActiveGrant{}, Removing: []Grant{}}
	seen := map[string]bool{}
	in := func(group string) (bool, error) {
		ok, err := e.member(ctx, groups, group)
		if ok && !seen[group] {
			seen[group] = true
			id.Groups = append(id.Groups, group)
		}
		return ok, err
	}
	for _, a := range e.Catalog.Accounts {
		if a.Close {
			continue
		}
		for _, ce := range e.Catalog.AccessClasses[a.Class].Escalations {
			_, esc, err := Escalation(e.Catalog, a.Name, ce.PermissionSet)
			if err != nil {
				return nil, err
			}
			ok, err := in(esc.Eligible)
			if err != nil {
				return nil, err
			}
			if ok {
				id.Eligible = append(id.Eligible, Eligibility{Account: a.Name, PermissionSet: esc.PermissionSet, MaxDuration: esc.MaxDuration, Approvers: esc.Approvers})
			}
			if _, err := in(esc.Approvers); err != nil {
				return nil, err
			}
		}
	}
	now := e.now()
	grants, err := e.Store.Grants(ctx, uid)
	if err != nil {
		return nil, err
	}
	for _, g := range grants {
		covering, err := e.Store.Covering(ctx, g.Key, now)
		if err != nil {
			return nil, err
		}
		want, until := Wanted(covering, now)
		switch {
		case want:
			state := "active"
			if !g.Present {
				state = "pending"
			}
			id.Active = append(id.Active, ActiveGrant{Account: g.Account, PermissionSet: g.PermissionSet, Expires: until, Left: until.Sub(now), State: state, LastError: g.LastError})
		case g.Present:
			id.Removing = append(id.Removing, g)
		}
	}
	return id, nil
}
