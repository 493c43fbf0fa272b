package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/errkind"
)

// AccessStore keeps just-in-time access requests, decisions and grants;
// it implements access.Store. Claims on grants and expiries run once
// across replicas: PostgreSQL skips rows another transaction holds (FOR
// UPDATE SKIP LOCKED), SQLite has one writer at a time.
type AccessStore struct{ d *DB }

// Access returns the database's access store.
func (d *DB) Access() *AccessStore { return &AccessStore{d: d} }

var _ access.Store = (*AccessStore)(nil)

const requestCols = `id, requester, account, permission_set, duration_ms, reason, status, created, principal_id, account_id, permission_set_arn, approvers, decided_by, decided, decision_reason, expires`

// querier is a *sql.DB or a *sql.Tx; in SQLite, code holding a
// transaction must query through it (one connection).
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

type scanner interface{ Scan(dest ...any) error }

func scanRequest(s scanner) (*access.Request, error) {
	r := &access.Request{}
	var dur, created int64
	var status string
	var decided, expires sql.NullInt64
	if err := s.Scan(&r.ID, &r.Requester, &r.Account, &r.PermissionSet, &dur, &r.Reason, &status, &created,
		&r.Key.PrincipalID, &r.Key.AccountID, &r.Key.PermissionSetARN, &r.Approvers, &r.DecidedBy, &decided, &r.DecisionReason, &expires); err != nil {
		return nil, err
	}
	r.Duration, r.Status, r.Created = time.Duration(dur)*time.Millisecond, access.Status(status), time.UnixMilli(created)
	if decided.Valid {
		r.Decided = time.UnixMilli(decided.Int64)
	}
	if expires.Valid {
		r.Expires = time.UnixMilli(expires.Int64)
	}
	return r, nil
}

func (a *AccessStore) queryRequests(ctx context.Context, q querier, query string, args ...any) ([]access.Request, error) {
	rows, err := q.QueryContext(ctx, a.d.Rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []access.Request{}
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// CreateRequest implements access.Store.
func (a *AccessStore) CreateRequest(ctx context.Context, r *access.Request) error {
	// Times are kept in milliseconds; the caller sees what was stored.
	r.Created = time.UnixMilli(r.Created.UnixMilli())
	err := a.d.SQL.QueryRowContext(ctx, a.d.Rebind(`INSERT INTO access_requests (requester, account, permission_set, duration_ms, reason, status, created, principal_id, account_id, permission_set_arn, approvers)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		r.Requester, r.Account, r.PermissionSet, r.Duration.Milliseconds(), r.Reason, string(r.Status), r.Created.UnixMilli(),
		r.Key.PrincipalID, r.Key.AccountID, r.Key.PermissionSetARN, r.Approvers).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("store access request: %w", err)
	}
	return nil
}

// Request implements access.Store.
func (a *AccessStore) Request(ctx context.Context, id int64) (*access.Request, error) {
	return a.request(ctx, a.d.SQL, id)
}

func (a *AccessStore) request(ctx context.Context, q querier, id int64) (*access.Request, error) {
	r, err := scanRequest(q.QueryRowContext(ctx, a.d.Rebind(`SELECT `+requestCols+` FROM access_requests WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("access request %d: %w", id, errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read access request %d: %w", id, err)
	}
	return r, nil
}

// Requests implements access.Store.
func (a *AccessStore) Requests(ctx context.Context, f access.Filter) ([]access.Request, error) {
	q := `SELECT ` + requestCols + ` FROM access_requests WHERE 1 = 1`
	var args []any
	if f.Requester != "" {
		q += ` AND requester = ?`
		args = append(args, f.Requester)
	}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	out, err := a.queryRequests(ctx, a.d.SQL, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list access requests: %w", err)
	}
	return out, nil
}

// Decisions returns a request's decisions, oldest first.
func (a *AccessStore) Decisions(ctx context.Context, id int64) ([]access.Decision, error) {
	rows, err := a.d.SQL.QueryContext(ctx, a.d.Rebind(`SELECT request_id, actor, status, reason, time FROM access_decisions WHERE request_id = ? ORDER BY id`), id)
	if err != nil {
		return nil, fmt.Errorf("read decisions of access request %d: %w", id, err)
	}
	defer rows.Close()
	var out []access.Decision
	for rows.Next() {
		var d access.Decision
		var status string
		var t int64
		if err := rows.Scan(&d.RequestID, &d.Actor, &status, &d.Reason, &t); err != nil {
			return nil, fmt.Errorf("read decisions of access request %d: %w", id, err)
		}
		d.Status, d.Time = access.Status(status), time.UnixMilli(t)
		out = append(out, d)
	}
	return out, rows.Err()
}

func (a *AccessStore) decide(ctx context.Context, tx *sql.Tx, d access.Decision) error {
	_, err := tx.ExecContext(ctx, a.d.Rebind(`INSERT INTO access_decisions (request_id, actor, status, reason, time) VALUES (?, ?, ?, ?, ?)`),
		d.RequestID, d.Actor, string(d.Status), d.Reason, d.Time.UnixMilli())
	return err
}

// mark makes the grant of r due at now, creating it at its first request.
func (a *AccessStore) mark(ctx context.Context, tx *sql.Tx, r *access.Request, now time.Time) error {
	_, err := tx.ExecContext(ctx, a.d.Rebind(`INSERT INTO access_grants (principal_id, account_id, permission_set_arn, user_email, account, permission_set, next_attempt)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (principal_id, account_id, permission_set_arn) DO UPDATE SET due = 1, version = access_grants.version + 1, next_attempt = excluded.next_attempt`),
		r.Key.PrincipalID, r.Key.AccountID, r.Key.PermissionSetARN, r.Requester, r.Account, r.PermissionSet, now.UnixMilli())
	return err
}

// Decide implements access.Store.
func (a *AccessStore) Decide(ctx context.Context, r *access.Request, from access.Status, d access.Decision) error {
	tx, err := a.d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("decide access request %d: %w", r.ID, err)
	}
	defer tx.Rollback()
	var expires any
	if d.Status == access.Approved {
		expires = r.Expires.UnixMilli()
	}
	res, err := tx.ExecContext(ctx, a.d.Rebind(`UPDATE access_requests SET status = ?, decided_by = ?, decided = ?, decision_reason = ?, expires = COALESCE(?, expires) WHERE id = ? AND status = ?`),
		string(d.Status), d.Actor, d.Time.UnixMilli(), d.Reason, expires, r.ID, string(from))
	if err != nil {
		return fmt.Errorf("decide access request %d: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		cur, err := a.request(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		return fmt.Errorf("access request %d is %s: %w", r.ID, cur.Status, access.ErrNotPending)
	}
	if err := a.decide(ctx, tx, d); err != nil {
		return fmt.Errorf("decide access request %d: %w", r.ID, err)
	}
	if err := a.mark(ctx, tx, r, d.Time); err != nil {
		return fmt.Errorf("decide access request %d: mark grant: %w", r.ID, err)
	}
	stored, err := a.request(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("decide access request %d: %w", r.ID, err)
	}
	*r = *stored
	return nil
}

func (a *AccessStore) lock() string {
	if a.d.Dialect == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// ExpireDue implements access.Store, in batches of at most 100.
func (a *AccessStore) ExpireDue(ctx context.Context, now time.Time) ([]access.Request, error) {
	tx, err := a.d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("expire access requests: %w", err)
	}
	defer tx.Rollback()
	due, err := a.queryRequests(ctx, tx, `SELECT `+requestCols+` FROM access_requests WHERE status = 'approved' AND expires <= ? ORDER BY id LIMIT 100`+a.lock(), now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("expire access requests: %w", err)
	}
	for i := range due {
		r := &due[i]
		if _, err := tx.ExecContext(ctx, a.d.Rebind(`UPDATE access_requests SET status = 'expired', decided_by = 'berth', decided = ?, decision_reason = 'expired' WHERE id = ?`), now.UnixMilli(), r.ID); err != nil {
			return nil, fmt.Errorf("expire access request %d: %w", r.ID, err)
		}
		if err := a.decide(ctx, tx, access.Decision{RequestID: r.ID, Actor: "berth", Status: access.Expired, Reason: "expired", Time: now}); err != nil {
			return nil, fmt.Errorf("expire access request %d: %w", r.ID, err)
		}
		if err := a.mark(ctx, tx, r, now); err != nil {
			return nil, fmt.Errorf("expire access request %d: mark grant: %w", r.ID, err)
		}
		r.Status, r.DecidedBy, r.Decided, r.DecisionReason = access.Expired, "berth", time.UnixMilli(now.UnixMilli()), "expired"
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("expire access requests: %w", err)
	}
	return due, nil
}

const grantCols = `principal_id, account_id, permission_set_arn, user_email, account, permission_set, present, due, version, next_attempt, attempts, last_error`

func scanGrant(s scanner) (*access.Grant, error) {
	g := &access.Grant{}
	var present, due int
	var next int64
	if err := s.Scan(&g.Key.PrincipalID, &g.Key.AccountID, &g.Key.PermissionSetARN, &g.User, &g.Account, &g.PermissionSet,
		&present, &due, &g.Version, &next, &g.Attempts, &g.LastError); err != nil {
		return nil, err
	}
	g.Present, g.Due, g.NextAttempt = present == 1, due == 1, time.UnixMilli(next)
	return g, nil
}

// ClaimGrant implements access.Store.
func (a *AccessStore) ClaimGrant(ctx context.Context, worker string, key *access.GrantKey, now time.Time, lease time.Duration) (*access.Grant, error) {
	cond := ""
	args := []any{worker, now.Add(lease).UnixMilli(), now.UnixMilli(), now.UnixMilli()}
	if key != nil {
		cond = ` AND principal_id = ? AND account_id = ? AND permission_set_arn = ?`
		args = append(args, key.PrincipalID, key.AccountID, key.PermissionSetARN)
	}
	q := `UPDATE access_grants SET worker = ?, lease_until = ?
		WHERE id = (SELECT id FROM access_grants WHERE due = 1 AND next_attempt <= ? AND (lease_until IS NULL OR lease_until < ?)` + cond + `
		ORDER BY next_attempt, id LIMIT 1` + a.lock() + `)
		RETURNING ` + grantCols
	g, err := scanGrant(a.d.SQL.QueryRowContext(ctx, a.d.Rebind(q), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, access.ErrNothingDue
	}
	if err != nil {
		return nil, fmt.Errorf("claim access grant: %w", err)
	}
	return g, nil
}

// Covering implements access.Store.
func (a *AccessStore) Covering(ctx context.Context, key access.GrantKey, now time.Time) ([]access.Request, error) {
	out, err := a.queryRequests(ctx, a.d.SQL, `SELECT `+requestCols+` FROM access_requests
		WHERE principal_id = ? AND account_id = ? AND permission_set_arn = ? AND status = 'approved' AND expires > ? ORDER BY id`,
		key.PrincipalID, key.AccountID, key.PermissionSetARN, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read requests covering grant %s: %w", key, err)
	}
	return out, nil
}

// FinishGrant implements access.Store.
func (a *AccessStore) FinishGrant(ctx context.Context, worker string, g *access.Grant) error {
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	res, err := a.d.SQL.ExecContext(ctx, a.d.Rebind(`UPDATE access_grants SET present = ?, attempts = ?, last_error = ?, worker = NULL, lease_until = NULL,
		due = CASE WHEN version = ? THEN ? ELSE 1 END,
		next_attempt = CASE WHEN version = ? THEN ? ELSE next_attempt END
		WHERE principal_id = ? AND account_id = ? AND permission_set_arn = ? AND worker = ?`),
		b(g.Present), g.Attempts, g.LastError, g.Version, b(g.Due), g.Version, g.NextAttempt.UnixMilli(),
		g.Key.PrincipalID, g.Key.AccountID, g.Key.PermissionSetARN, worker)
	if err != nil {
		return fmt.Errorf("record access grant %s: %w", g.Key, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("record access grant %s: %s no longer holds it: %w", g.Key, worker, errkind.Conflict)
	}
	return nil
}

// Grants implements access.Store.
func (a *AccessStore) Grants(ctx context.Context, principal string) ([]access.Grant, error) {
	q := `SELECT ` + grantCols + ` FROM access_grants`
	var args []any
	if principal != "" {
		q += ` WHERE principal_id = ?`
		args = append(args, principal)
	}
	rows, err := a.d.SQL.QueryContext(ctx, a.d.Rebind(q+` ORDER BY id`), args...)
	if err != nil {
		return nil, fmt.Errorf("list access grants: %w", err)
	}
	defer rows.Close()
	out := []access.Grant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("list access grants: %w", err)
		}
		out = append(out, *g)
	}
	return out, rows.Err()
}
