package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// User is a person or automation account of the hub.
type User struct {
	ID      int64
	Email   string
	Name    string
	Created time.Time
}

// CreateUser adds a user; an e-mail already taken is a conflict.
func (d *DB) CreateUser(ctx context.Context, email, name string) (*User, error) {
	now := time.Now()
	var id int64
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`INSERT INTO users (email, name, created) VALUES (?, ?, ?) RETURNING id`),
		email, name, now.UnixMilli()).Scan(&id)
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("create user %s: the e-mail is taken: %w", email, errkind.Conflict)
	}
	if err != nil {
		return nil, fmt.Errorf("create user %s: %w", email, err)
	}
	return &User{ID: id, Email: email, Name: name, Created: time.UnixMilli(now.UnixMilli())}, nil
}

// CountUsers returns how many users exist; zero means first start.
func (d *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := d.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// UserByID returns one user.
func (d *DB) UserByID(ctx context.Context, id int64) (*User, error) {
	u := &User{}
	var created int64
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT id, email, name, created FROM users WHERE id = ?`), id).Scan(&u.ID, &u.Email, &u.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %d: %w", id, errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read user %d: %w", id, err)
	}
	u.Created = time.UnixMilli(created)
	return u, nil
}

// isUniqueViolation recognises a UNIQUE constraint failure in either
// engine (SQLite: "UNIQUE constraint failed"; PostgreSQL: SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "SQLSTATE 23505")
}

// CreateFirstUser creates the hub's first user and its organisation, as
// its admin, only while there are no users: replicas answering two setup
// requests at once create one (an advisory lock in PostgreSQL, the write
// lock in SQLite).
func (d *DB) CreateFirstUser(ctx context.Context, email, name, org string) (*User, error) {
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("create first user: %w", err)
	}
	defer tx.Rollback()
	if d.Dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(84200003)`); err != nil {
			return nil, fmt.Errorf("create first user: lock: %w", err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return nil, fmt.Errorf("create first user: %w", err)
	}
	if n > 0 {
		return nil, fmt.Errorf("the hub already has users; sign in instead: %w", errkind.Conflict)
	}
	now := time.Now().UnixMilli()
	var uid, oid int64
	if err := tx.QueryRowContext(ctx, d.Rebind(`INSERT INTO users (email, name, created) VALUES (?, ?, ?) RETURNING id`), email, name, now).Scan(&uid); err != nil {
		return nil, fmt.Errorf("create first user: %w", err)
	}
	if err := tx.QueryRowContext(ctx, d.Rebind(`INSERT INTO organisations (name, created) VALUES (?, ?) RETURNING id`), org, now).Scan(&oid); err != nil {
		return nil, fmt.Errorf("create first user: organisation: %w", err)
	}
	if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO org_members (org_id, user_id, role) VALUES (?, ?, 'admin')`), oid, uid); err != nil {
		return nil, fmt.Errorf("create first user: membership: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("create first user: %w", err)
	}
	return &User{ID: uid, Email: email, Name: name, Created: time.UnixMilli(now)}, nil
}
