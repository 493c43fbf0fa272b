package hub

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

var errAccessOff = errkind.New("just-in-time access is not configured on this hub: start berth server with --catalog, --sso-instance-arn and --identity-store-id", errkind.Unavailable)

func (s *Server) accessEngine() (*access.Engine, error) {
	if s.Access == nil {
		return nil, errAccessOff
	}
	return s.Access, nil
}

// AccessRequestOut is a request as the API shows it.
type AccessRequestOut struct {
	ID             int64        `json:"id"`
	Requester      string       `json:"requester"`
	Account        string       `json:"account"`
	AccountID      string       `json:"account_id"`
	PermissionSet  string       `json:"permission_set"`
	Duration       string       `json:"duration"`
	Reason         string       `json:"reason"`
	Status         string       `json:"status"`
	Created        time.Time    `json:"created"`
	Approvers      string       `json:"approvers"`
	DecidedBy      string       `json:"decided_by,omitempty"`
	Decided        *time.Time   `json:"decided,omitempty"`
	DecisionReason string       `json:"decision_reason,omitempty"`
	Expires        *time.Time   `json:"expires,omitempty"`
	Grant          *AccessGrant `json:"grant,omitempty"`
}

// AccessGrant is the state of the assignment behind a request, when a
// decision just worked on it.
type AccessGrant struct {
	Present     bool       `json:"present"`
	Pending     bool       `json:"pending"` // Identity Center does not match yet; retried
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
}

func requestOut(r *access.Request, g *access.Grant) AccessRequestOut {
	o := AccessRequestOut{ID: r.ID, Requester: r.Requester, Account: r.Account, AccountID: r.Key.AccountID, PermissionSet: r.PermissionSet,
		Duration: r.Duration.String(), Reason: r.Reason, Status: string(r.Status), Created: r.Created.UTC(), Approvers: r.Approvers,
		DecidedBy: r.DecidedBy, DecisionReason: r.DecisionReason}
	if !r.Decided.IsZero() {
		t := r.Decided.UTC()
		o.Decided = &t
	}
	if !r.Expires.IsZero() {
		t := r.Expires.UTC()
		o.Expires = &t
	}
	if g != nil {
		o.Grant = &AccessGrant{Present: g.Present, Pending: g.Due, Attempts: g.Attempts, LastError: g.LastError}
		if g.Due {
			t := g.NextAttempt.UTC()
			o.Grant.NextAttempt = &t
		}
	}
	return o
}

func (s *Server) createAccessRequest(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Account       string `json:"account"`
		PermissionSet string `json:"permission_set"`
		Duration      string `json:"duration"`
		Reason        string `json:"reason"`
	}
	object := "access"
	defer func() { s.audit(r, u, "access.request", object, err) }()
	e, err := s.accessEngine()
	if err != nil {
		return err
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	object = "access/" + truncate(in.Account, 64) + "/" + truncate(in.PermissionSet, 64)
	d, err := time.ParseDuration(in.Duration)
	if err != nil {
		return fmt.Errorf("duration %q: write it like 1h or 30m: %w", truncate(in.Duration, 32), errkind.Invalid)
	}
	req, err := e.Ask(r.Context(), u.Email, in.Account, in.PermissionSet, d, in.Reason)
	if err != nil {
		return err
	}
	object = fmt.Sprintf("access/%d %s/%s for %s", req.ID, req.Account, req.PermissionSet, req.Duration)
	writeJSON(w, http.StatusCreated, requestOut(req, nil))
	return nil
}

func (s *Server) listAccessRequests(w http.ResponseWriter, r *http.Request, u *db.User) error {
	e, err := s.accessEngine()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	mine, pending := q.Get("mine") == "1", q.Get("pending") == "1"
	if mine && pending {
		return fmt.Errorf("mine=1 and pending=1: choose one: %w", errkind.Invalid)
	}
	var reqs []access.Request
	if !pending {
		if reqs, err = e.Store.Requests(r.Context(), access.Filter{Requester: u.Email, Limit: 200}); err != nil {
			return err
		}
	}
	if !mine {
		p, err := e.Store.Requests(r.Context(), access.Filter{Status: access.Pending, Limit: 1000})
		if err != nil {
			return err
		}
		decidable, err := e.Decidable(r.Context(), u.Email, p)
		if err != nil {
			return err
		}
		for _, d := range decidable {
			if d.Requester != u.Email || pending {
				reqs = append(reqs, d)
			}
		}
	}
	out := make([]AccessRequestOut, 0, len(reqs))
	for i := range reqs {
		out = append(out, requestOut(&reqs[i], nil))
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": out})
	return nil
}

func decideAccess(action string) func(*Server, http.ResponseWriter, *http.Request, *db.User) error {
	return func(s *Server, w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
		object := "access/" + truncate(r.PathValue("id"), 32)
		var g *access.Grant
		defer func() {
			detail := ""
			if g != nil && g.Due {
				detail = fmt.Sprintf("identity center not updated yet (attempt %d): %s", g.Attempts, g.LastError)
			}
			s.auditDetail(r, u, "access."+action, object, detail, err)
		}()
		e, err := s.accessEngine()
		if err != nil {
			return err
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id < 1 {
			return fmt.Errorf("request id %q: want a number from berth access list: %w", truncate(r.PathValue("id"), 32), errkind.Invalid)
		}
		var in struct {
			Reason string `json:"reason"`
		}
		if r.ContentLength != 0 {
			if err := decode(r, &in); err != nil {
				return err
			}
		}
		if len(in.Reason) > 1000 {
			return fmt.Errorf("reason: at most 1000 characters: %w", errkind.Invalid)
		}
		var req *access.Request
		switch action {
		case "approve":
			req, g, err = e.Approve(r.Context(), u.Email, id, in.Reason)
		case "deny":
			req, err = e.Deny(r.Context(), u.Email, id, in.Reason)
		case "revoke":
			req, g, err = e.Revoke(r.Context(), u.Email, id, in.Reason)
		}
		if err != nil {
			return err
		}
		object = fmt.Sprintf("access/%d %s/%s of %s", req.ID, req.Account, req.PermissionSet, req.Requester)
		writeJSON(w, http.StatusOK, requestOut(req, g))
		return nil
	}
}

func (s *Server) accessWhoAmI(w http.ResponseWriter, r *http.Request, u *db.User) error {
	e, err := s.accessEngine()
	if err != nil {
		return err
	}
	id, err := e.WhoAmI(r.Context(), u.Email)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, id)
	return nil
}

// auditDetail is audit with a detail line.
func (s *Server) auditDetail(r *http.Request, u *db.User, action, object, detail string, err error) {
	s.appendAudit(context.WithoutCancel(r.Context()), auditOf(r, u, action, object, err), detail)
}

func (s *Server) appendAudit(ctx context.Context, e *db.AuditEntry, detail string) {
	e.Detail = detail
	if s.Now != nil {
		e.Time = s.now()
	}
	if aerr := s.DB.AppendAudit(ctx, e); aerr != nil {
		s.log().Error("audit log append failed", "action", e.Action, "object", e.Object, "err", aerr)
	}
}

// outcome is the audit outcome of err.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	if k := errkind.Of(err); k != nil {
		return "error: " + k.Error()
	}
	return "error"
}

func auditOf(r *http.Request, u *db.User, action, object string, err error) *db.AuditEntry {
	e := &db.AuditEntry{Actor: "anonymous", RequestID: requestID(r), Action: action, Object: object, Outcome: outcome(err)}
	if u != nil {
		e.Actor = u.Email
	}
	e.SourceIP = clientIP(r)
	return e
}
