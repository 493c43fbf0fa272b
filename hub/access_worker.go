package hub

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/hub/db"
)

// RunAccessWorker expires access requests and brings due grants in line
// with Identity Center every interval until ctx ends. Every replica runs
// one; the database's claims make each expiry and each grant's work happen
// once.
func (s *Server) RunAccessWorker(ctx context.Context, interval time.Duration) {
	if s.Access == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.AccessPass(ctx); err != nil && ctx.Err() == nil {
			s.log().Error("access worker", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// AccessPass runs one pass of the access worker and writes what it did in
// the audit log: each expiry, and each assignment created, deleted or
// failed (a failure is retried on a later pass after a backoff).
func (s *Server) AccessPass(ctx context.Context) (*access.Outcome, error) {
	e, err := s.accessEngine()
	if err != nil {
		return nil, err
	}
	out, err := e.Reconcile(ctx, e.ID+"/worker")
	audit := func(action, object, outcome, detail string) {
		s.appendAudit(context.WithoutCancel(ctx), &db.AuditEntry{Actor: "berth", RequestID: "access-worker", Action: action, Object: object, Outcome: outcome}, detail)
	}
	for _, r := range out.Expired {
		audit("access.expire", fmt.Sprintf("access/%d %s/%s of %s", r.ID, r.Account, r.PermissionSet, r.Requester), "ok", "")
	}
	for _, g := range out.Worked {
		object := fmt.Sprintf("grant %s/%s of %s", g.Account, g.PermissionSet, g.User)
		switch {
		case g.Call == access.CallNone:
			// Another request still covers it, or it already matched.
		case g.Due:
			audit("access.grant."+g.Call, object, "error: unavailable", fmt.Sprintf("attempt %d failed, next at %s: %s", g.Attempts, g.NextAttempt.UTC().Format(time.RFC3339), g.LastError))
		default:
			audit("access.grant."+g.Call, object, "ok", "")
		}
	}
	return out, err
}
