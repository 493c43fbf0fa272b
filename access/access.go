// Package access decides just-in-time access to AWS accounts: who may ask
// for an escalation (the account catalog's access classes and Identity
// Store group membership), who may approve it, for how long, and when the
// IAM Identity Center account assignment behind it is created and deleted.
//
// Grants are reference-counted: the assignment of one user, account and
// permission set exists while any approved, unexpired, unrevoked request
// covers it. It is created at the first approval and deleted when the last
// covering request ends, so two overlapping requests never revoke each
// other (AWS TEAM's issue 279). Work on a grant is level-based: a decision
// marks the grant due, and whoever claims it (the approving request or the
// expiry worker of any hub replica) makes Identity Center match what the
// requests want. A failed call is retried with backoff and stays visible
// until it succeeds.
//
// The package holds decisions only; the hub stores requests and grants
// (Store) and runs the expiry worker.
package access

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/org"
)

// Status is where a request is in its life.
type Status string

const (
	Pending  Status = "pending"
	Approved Status = "approved"
	Denied   Status = "denied"
	Revoked  Status = "revoked"
	Expired  Status = "expired"
)

// Error kinds of access decisions.
var (
	ErrIneligible   = errkind.New("not eligible for this access", errkind.PermissionDenied)
	ErrNotApprover  = errkind.New("not an approver of this access", errkind.PermissionDenied)
	ErrSelfApproval = errkind.New("self-approval is forbidden for this access", errkind.PermissionDenied)
	ErrNoEscalation = errkind.New("no such escalation", errkind.NotFound)
	ErrNotPending   = errkind.New("the request is no longer pending", errkind.Conflict)
	// ErrNothingDue: no grant is due for work (Store.ClaimGrant).
	ErrNothingDue = errkind.New("no grant is due", errkind.NotFound)
)

// GrantKey names one Identity Center account assignment: a user, an
// account and a permission set.
type GrantKey struct {
	PrincipalID      string `json:"principal_id"`
	AccountID        string `json:"account_id"`
	PermissionSetARN string `json:"permission_set_arn"`
}

func (k GrantKey) String() string {
	return k.PrincipalID + "/" + k.AccountID + "/" + k.PermissionSetARN
}

// Request is one ask for an escalation.
type Request struct {
	ID            int64         `json:"id"`
	Requester     string        `json:"requester"` // the hub user's e-mail
	Account       string        `json:"account"`
	PermissionSet string        `json:"permission_set"`
	Duration      time.Duration `json:"duration"`
	Reason        string        `json:"reason"`
	Status        Status        `json:"status"`
	Created       time.Time     `json:"created"`
	// Key is resolved when the request is made, so a wrong account or
	// permission set fails then, not at approval.
	Key GrantKey `json:"key"`
	// Approvers is the escalation's approver group, for notices and lists.
	Approvers string `json:"approvers"`
	// DecidedBy, Decided and DecisionReason are the last decision's.
	DecidedBy      string    `json:"decided_by,omitempty"`
	Decided        time.Time `json:"decided,omitzero"`
	DecisionReason string    `json:"decision_reason,omitempty"`
	// Expires is set at approval: the decision's time plus Duration.
	Expires time.Time `json:"expires,omitzero"`
}

// Active reports whether the request covers its grant at now.
func (r *Request) Active(now time.Time) bool {
	return r.Status == Approved && now.Before(r.Expires)
}

// Decision is one change of a request's status, by a person or by expiry.
type Decision struct {
	RequestID int64
	Actor     string
	Status    Status
	Reason    string
	Time      time.Time
}

// Grant is what berth knows of one assignment.
type Grant struct {
	Key GrantKey `json:"key"`
	// User, Account and PermissionSet name the key for people.
	User          string `json:"user"`
	Account       string `json:"account"`
	PermissionSet string `json:"permission_set"`
	// Present: the assignment exists in Identity Center as far as berth
	// has seen it succeed.
	Present bool `json:"present"`
	// Due: the grant needs work at NextAttempt (a decision since the
	// last work, or a failed call to retry).
	Due         bool      `json:"due"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// Attempts counts failed calls since the last success; LastError is
	// the latest failure.
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// Version counts the marks; a worker's outcome clears Due only if no
	// decision marked the grant while it worked.
	Version int64 `json:"-"`
}

// Filter selects requests; empty fields match all.
type Filter struct {
	Requester string
	Status    Status
	Limit     int
}

// Store keeps requests, decisions and grants. The hub's database
// implements it; claims make each grant's work run once across replicas.
type Store interface {
	// CreateRequest stores r (Pending) and sets its ID.
	CreateRequest(ctx context.Context, r *Request) error
	// Request returns one request or errkind.NotFound.
	Request(ctx context.Context, id int64) (*Request, error)
	// Requests lists requests, newest first.
	Requests(ctx context.Context, f Filter) ([]Request, error)
	// Decide records d, moves request r from status from to d.Status
	// (with r.Expires when approving) and marks its grant due at d.Time.
	// It returns ErrNotPending (a conflict) when the request is no longer
	// in status from.
	Decide(ctx context.Context, r *Request, from Status, d Decision) error
	// ExpireDue moves approved requests whose expiry is at or before now
	// to Expired, marks their grants due and returns them; each request
	// is returned to one caller only.
	ExpireDue(ctx context.Context, now time.Time) ([]Request, error)
	// ClaimGrant claims a grant due at now (the one of key, when key is
	// not nil) for worker until now+lease; ErrNothingDue when none is.
	ClaimGrant(ctx context.Context, worker string, key *GrantKey, now time.Time, lease time.Duration) (*Grant, error)
	// Covering returns the approved requests of key that expire after now.
	Covering(ctx context.Context, key GrantKey, now time.Time) ([]Request, error)
	// FinishGrant stores the outcome of worker's work on g and releases
	// the claim; g stays due if it was marked since it was claimed.
	FinishGrant(ctx context.Context, worker string, g *Grant) error
	// Grants returns the grants of a user (principal id), or all when
	// principal is empty.
	Grants(ctx context.Context, principal string) ([]Grant, error)
}

// Directory answers who a person is in the Identity Store and which
// groups they are in.
type Directory interface {
	// UserID returns the Identity Store user id of an e-mail address,
	// errkind.NotFound when there is none.
	UserID(ctx context.Context, email string) (string, error)
	// GroupID returns the id of a group by display name.
	GroupID(ctx context.Context, name string) (string, error)
	// GroupIDs returns the ids of the groups a user is a member of.
	GroupIDs(ctx context.Context, userID string) (map[string]bool, error)
}

// Assigner creates and deletes account assignments (IAM Identity Center).
type Assigner interface {
	Assign(ctx context.Context, k GrantKey) error
	Unassign(ctx context.Context, k GrantKey) error
	// PermissionSetARN resolves a permission set's name.
	PermissionSetARN(ctx context.Context, name string) (string, error)
}

// Accounts resolves a catalog account to its AWS account id.
type Accounts interface {
	AccountID(ctx context.Context, a org.Account) (string, error)
}

// Notifier announces requests to approvers.
type Notifier interface {
	Notify(ctx context.Context, r *Request) error
}

// Backoff is the wait before the next attempt after attempt failed
// attempts: 30s, 1m, 2m ... at most 30m, so a failed revoke keeps being
// retried without hammering Identity Center.
func Backoff(attempt int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < attempt && d < 30*time.Minute; i++ {
		d *= 2
	}
	return min(d, 30*time.Minute)
}

// Escalation returns the catalog account and the escalation of its class
// that grants permission set ps.
func Escalation(c *org.Catalog, account, ps string) (org.Account, org.Escalation, error) {
	for _, a := range c.Accounts {
		if a.Name != account {
			continue
		}
		if a.Close {
			return a, org.Escalation{}, fmt.Errorf("account %s is marked to be closed: %w", account, ErrNoEscalation)
		}
		for _, e := range c.AccessClasses[a.Class].Escalations {
			if e.PermissionSet == ps {
				// Groups may name the owner team, as standing groups do.
				e.Eligible = strings.ReplaceAll(e.Eligible, org.OwnerPlaceholder, a.Owner)
				e.Approvers = strings.ReplaceAll(e.Approvers, org.OwnerPlaceholder, a.Owner)
				return a, e, nil
			}
		}
		return a, org.Escalation{}, fmt.Errorf("account %s (class %s) has no escalation to permission set %s; berth access whoami lists what you may ask for: %w", account, a.Class, ps, ErrNoEscalation)
	}
	return org.Account{}, org.Escalation{}, fmt.Errorf("account %s is not in the catalog: %w", account, ErrNoEscalation)
}

// CheckDuration refuses a duration that is not positive or longer than the
// escalation allows.
func CheckDuration(e org.Escalation, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("duration %s: give a positive duration such as 1h: %w", d, errkind.Invalid)
	}
	if d > e.MaxDuration {
		return fmt.Errorf("duration %s is longer than the %s that permission set %s allows: %w", d, e.MaxDuration, e.PermissionSet, errkind.Invalid)
	}
	return nil
}

// CheckApprover says whether approver may approve r: a member of the
// escalation's approver group (memberOfApprovers), and not the requester
// when the escalation forbids self-approval.
func CheckApprover(e org.Escalation, r *Request, approver string, memberOfApprovers bool) error {
	if approver == r.Requester && e.ForbidSelfApproval {
		return fmt.Errorf("request %d is yours, and %s on %s needs someone else in %s: %w", r.ID, r.PermissionSet, r.Account, e.Approvers, ErrSelfApproval)
	}
	if !memberOfApprovers {
		return fmt.Errorf("request %d: approving %s on %s needs membership of group %s: %w", r.ID, r.PermissionSet, r.Account, e.Approvers, ErrNotApprover)
	}
	return nil
}

// Wanted reports whether the assignment of a key should exist at now,
// given the requests that name it, and until when: the latest expiry of
// the active ones. This is the reference count.
func Wanted(reqs []Request, now time.Time) (bool, time.Time) {
	var until time.Time
	for i := range reqs {
		if reqs[i].Active(now) && reqs[i].Expires.After(until) {
			until = reqs[i].Expires
		}
	}
	return !until.IsZero(), until
}
