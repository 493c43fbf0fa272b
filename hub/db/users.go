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
