package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// Token is an API token's stored record; the secret itself is never
// stored, only its hash.
type Token struct {
	ID       int64
	UserID   int64
	LookupID string
	Hash     string
	Name     string
	Created  time.Time
	Expires  time.Time
	LastUsed time.Time // zero when never used
	Revoked  time.Time // zero when live
}

// CreateToken stores a token record.
func (d *DB) CreateToken(ctx context.Context, t *Token) error {
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`INSERT INTO tokens (user_id, lookup_id, hash, name, created, expires) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		t.UserID, t.LookupID, t.Hash, t.Name, t.Created.UnixMilli(), t.Expires.UnixMilli()).Scan(&t.ID)
	if isUniqueViolation(err) {
		return fmt.Errorf("create token: lookup id taken: %w", errkind.Conflict)
	}
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// TokenByLookupID returns the token record with that public lookup id.
func (d *DB) TokenByLookupID(ctx context.Context, lookupID string) (*Token, error) {
	t := &Token{}
	var created, expires int64
	var lastUsed, revoked sql.NullInt64
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT id, user_id, lookup_id, hash, name, created, expires, last_used, revoked FROM tokens WHERE lookup_id = ?`), lookupID).
		Scan(&t.ID, &t.UserID, &t.LookupID, &t.Hash, &t.Name, &created, &expires, &lastUsed, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	t.Created, t.Expires = time.UnixMilli(created), time.UnixMilli(expires)
	if lastUsed.Valid {
		t.LastUsed = time.UnixMilli(lastUsed.Int64)
	}
	if revoked.Valid {
		t.Revoked = time.UnixMilli(revoked.Int64)
	}
	return t, nil
}

// TouchToken records a use of the token.
func (d *DB) TouchToken(ctx context.Context, id int64, at time.Time) error {
	if _, err := d.SQL.ExecContext(ctx, d.Rebind(`UPDATE tokens SET last_used = ? WHERE id = ?`), at.UnixMilli(), id); err != nil {
		return fmt.Errorf("record token use: %w", err)
	}
	return nil
}

// RevokeToken revokes a user's token; revoking twice is not an error.
func (d *DB) RevokeToken(ctx context.Context, userID, id int64) error {
	res, err := d.SQL.ExecContext(ctx, d.Rebind(`UPDATE tokens SET revoked = COALESCE(revoked, ?) WHERE id = ? AND user_id = ?`), time.Now().UnixMilli(), id, userID)
	if err != nil {
		return fmt.Errorf("revoke token %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke token %d: %w", id, errkind.NotFound)
	}
	return nil
}
