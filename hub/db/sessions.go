package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// Session is a browser session's stored record. Hash is the SHA-256 of the
// cookie value; the value itself is never stored.
type Session struct {
	ID          int64
	UserID      int64
	Hash        string
	Created     time.Time
	Expires     time.Time     // the absolute end
	IdleTimeout time.Duration // how long it may go unused
	IdleExpires time.Time     // the end unless it is used before
	OrgID       int64         // the organisation it selected; 0: none
}

// CreateSession stores a session, and removes sessions that have ended so
// the table holds live ones only.
func (d *DB) CreateSession(ctx context.Context, s *Session) error {
	now := s.Created.UnixMilli()
	if _, err := d.SQL.ExecContext(ctx, d.Rebind(`DELETE FROM sessions WHERE expires <= ? OR idle_expires <= ?`), now, now); err != nil {
		return fmt.Errorf("remove ended sessions: %w", err)
	}
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`INSERT INTO sessions (hash, user_id, created, expires, idle_timeout_ms, idle_expires) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		s.Hash, s.UserID, now, s.Expires.UnixMilli(), s.IdleTimeout.Milliseconds(), s.IdleExpires.UnixMilli()).Scan(&s.ID)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByHash returns the session whose cookie hashes to hash, ended or
// not: the caller checks the times against its clock.
func (d *DB) SessionByHash(ctx context.Context, hash string) (*Session, error) {
	s := &Session{Hash: hash}
	var created, expires, idle, idleExpires int64
	var org sql.NullInt64
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT id, user_id, created, expires, idle_timeout_ms, idle_expires, org_id FROM sessions WHERE hash = ?`), hash).
		Scan(&s.ID, &s.UserID, &created, &expires, &idle, &idleExpires, &org)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session: %w", errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	s.Created, s.Expires, s.IdleExpires = time.UnixMilli(created), time.UnixMilli(expires), time.UnixMilli(idleExpires)
	s.IdleTimeout = time.Duration(idle) * time.Millisecond
	s.OrgID = org.Int64
	return s, nil
}

// SetSessionOrganisation records the organisation a session selected; the
// caller has checked that the session's user is a member.
func (d *DB) SetSessionOrganisation(ctx context.Context, id, orgID int64) error {
	if _, err := d.SQL.ExecContext(ctx, d.Rebind(`UPDATE sessions SET org_id = ? WHERE id = ?`), orgID, id); err != nil {
		return fmt.Errorf("select the session's organisation: %w", err)
	}
	return nil
}

// TouchSession pushes a session's idle end to idleExpires.
func (d *DB) TouchSession(ctx context.Context, id int64, idleExpires time.Time) error {
	if _, err := d.SQL.ExecContext(ctx, d.Rebind(`UPDATE sessions SET idle_expires = ? WHERE id = ? AND idle_expires < ?`), idleExpires.UnixMilli(), id, idleExpires.UnixMilli()); err != nil {
		return fmt.Errorf("record session use: %w", err)
	}
	return nil
}

// DeleteSession ends the session whose cookie hashes to hash; ending an
// unknown or ended session is not an error.
func (d *DB) DeleteSession(ctx context.Context, hash string) error {
	if _, err := d.SQL.ExecContext(ctx, d.Rebind(`DELETE FROM sessions WHERE hash = ?`), hash); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user (signed out everywhere).
func (d *DB) DeleteUserSessions(ctx context.Context, userID int64) error {
	if _, err := d.SQL.ExecContext(ctx, d.Rebind(`DELETE FROM sessions WHERE user_id = ?`), userID); err != nil {
		return fmt.Errorf("end sessions of user %d: %w", userID, err)
	}
	return nil
}
