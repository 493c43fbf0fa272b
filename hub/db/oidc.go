package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/errkind"
)

// UserByOIDC returns the user linked to an OIDC provider's subject.
func (d *DB) UserByOIDC(ctx context.Context, issuer, subject string) (*User, error) {
	var id int64
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT id FROM users WHERE oidc_issuer = ? AND oidc_subject = ?`), issuer, subject).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user of this sign-in: %w", errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read user by sign-in: %w", err)
	}
	return d.UserByID(ctx, id)
}

// LinkOIDC links the user with e-mail (compared without case) to an OIDC
// subject, only when that user has no sign-in linked yet: a user an admin
// added signs in for the first time. Otherwise it is errkind.NotFound.
func (d *DB) LinkOIDC(ctx context.Context, email, issuer, subject string) (*User, error) {
	var id int64
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`UPDATE users SET oidc_issuer = ?, oidc_subject = ? WHERE lower(email) = lower(?) AND oidc_subject IS NULL RETURNING id`),
		issuer, subject, email).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %s without a linked sign-in: %w", email, errkind.NotFound)
	}
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("link sign-in: the subject is linked to another user: %w", errkind.Conflict)
	}
	if err != nil {
		return nil, fmt.Errorf("link sign-in to user %s: %w", email, err)
	}
	return d.UserByID(ctx, id)
}
