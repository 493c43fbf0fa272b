package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// LoginRequest is a berth login waiting for a browser's approval. Only the
// hash of its poll secret is stored.
type LoginRequest struct {
	ID         int64
	PublicID   string // in the approval page's address
	PollHash   string
	UserCode   string // shown by the CLI and the page, to compare
	Host       string // the CLI's machine, as it says
	ClientName string
	SourceIP   string
	Status     string // pending, approved, denied, collected
	UserID     int64  // who approved or denied; 0 while pending
	Created    time.Time
	Expires    time.Time
	Decided    time.Time
}

// CreateLoginRequest stores a pending request, and removes requests that
// ended more than a day ago.
func (d *DB) CreateLoginRequest(ctx context.Context, l *LoginRequest) error {
	if _, err := d.SQL.ExecContext(ctx, d.Rebind(`DELETE FROM login_requests WHERE expires < ?`), l.Created.Add(-24*time.Hour).UnixMilli()); err != nil {
		return fmt.Errorf("remove old login requests: %w", err)
	}
	l.Status = "pending"
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`INSERT INTO login_requests (public_id, poll_hash, user_code, host, client_name, source_ip, status, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		l.PublicID, l.PollHash, l.UserCode, l.Host, l.ClientName, l.SourceIP, l.Status, l.Created.UnixMilli(), l.Expires.UnixMilli()).Scan(&l.ID)
	if isUniqueViolation(err) {
		return fmt.Errorf("create login request: id taken: %w", errkind.Conflict)
	}
	if err != nil {
		return fmt.Errorf("create login request: %w", err)
	}
	return nil
}

// LoginRequestByPublicID returns a login request.
func (d *DB) LoginRequestByPublicID(ctx context.Context, publicID string) (*LoginRequest, error) {
	l := &LoginRequest{}
	var created, expires int64
	var userID, decided sql.NullInt64
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT id, public_id, poll_hash, user_code, host, client_name, source_ip, status, user_id, created, expires, decided FROM login_requests WHERE public_id = ?`), publicID).
		Scan(&l.ID, &l.PublicID, &l.PollHash, &l.UserCode, &l.Host, &l.ClientName, &l.SourceIP, &l.Status, &userID, &created, &expires, &decided)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("login request: %w", errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read login request: %w", err)
	}
	l.UserID = userID.Int64
	l.Created, l.Expires = time.UnixMilli(created), time.UnixMilli(expires)
	if decided.Valid {
		l.Decided = time.UnixMilli(decided.Int64)
	}
	return l, nil
}

// DecideLoginRequest records a user's approval (status "approved") or
// denial ("denied") of a request still pending and not expired at at;
// otherwise it changes nothing and is errkind.Conflict.
func (d *DB) DecideLoginRequest(ctx context.Context, id, userID int64, status string, at time.Time) error {
	if status != "approved" && status != "denied" {
		return fmt.Errorf("decide login request: status %q: %w", status, errkind.Invalid)
	}
	res, err := d.SQL.ExecContext(ctx, d.Rebind(`UPDATE login_requests SET status = ?, user_id = ?, decided = ? WHERE id = ? AND status = 'pending' AND expires > ?`),
		status, userID, at.UnixMilli(), id, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("decide login request: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("the login request was already decided or has expired: %w", errkind.Conflict)
	}
	return nil
}

// CollectLoginRequest marks an approved request collected, once: of two
// polls at the same time, one wins and the other is errkind.Conflict.
func (d *DB) CollectLoginRequest(ctx context.Context, id int64, at time.Time) error {
	res, err := d.SQL.ExecContext(ctx, d.Rebind(`UPDATE login_requests SET status = 'collected' WHERE id = ? AND status = 'approved' AND expires > ?`), id, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("collect login request: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("the login request's token was already collected or it has expired: %w", errkind.Conflict)
	}
	return nil
}
