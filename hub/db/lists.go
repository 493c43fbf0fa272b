package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ProjectListing is a project as a list shows it, with the asking user's
// role in it ("" when the user is no member but may see it as an
// organisation admin).
type ProjectListing struct {
	Name      string
	DataPlane string
	Prefix    string
	Role      string
	Created   time.Time
}

// ListProjects returns the organisation's projects that userID is a member
// of, or all of them when all is set (organisation admins), by name.
func (d *DB) ListProjects(ctx context.Context, orgID, userID int64, all bool) ([]ProjectListing, error) {
	q := `SELECT p.name, dp.name, p.prefix, COALESCE(m.role, ''), p.created FROM projects p
		JOIN dataplanes dp ON dp.id = p.dataplane_id
		LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?
		WHERE p.org_id = ?`
	if !all {
		q += ` AND m.role IS NOT NULL`
	}
	rows, err := d.SQL.QueryContext(ctx, d.Rebind(q+` ORDER BY p.name`), userID, orgID)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []ProjectListing
	for rows.Next() {
		var p ProjectListing
		var created int64
		if err := rows.Scan(&p.Name, &p.DataPlane, &p.Prefix, &p.Role, &created); err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		p.Created = time.UnixMilli(created)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ProjectMember is a user's role in a project.
type ProjectMember struct {
	Email string
	Name  string
	Role  string
}

// ProjectMembers returns a project's members by e-mail.
func (d *DB) ProjectMembers(ctx context.Context, projectID int64) ([]ProjectMember, error) {
	rows, err := d.SQL.QueryContext(ctx, d.Rebind(`SELECT u.email, u.name, m.role FROM project_members m JOIN users u ON u.id = m.user_id
		WHERE m.project_id = ? ORDER BY u.email`), projectID)
	if err != nil {
		return nil, fmt.Errorf("list project members: %w", err)
	}
	defer rows.Close()
	var out []ProjectMember
	for rows.Next() {
		var m ProjectMember
		if err := rows.Scan(&m.Email, &m.Name, &m.Role); err != nil {
			return nil, fmt.Errorf("list project members: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ListTokens returns a user's tokens, newest first, without their hashes.
func (d *DB) ListTokens(ctx context.Context, userID int64) ([]Token, error) {
	rows, err := d.SQL.QueryContext(ctx, d.Rebind(`SELECT id, user_id, name, created, expires, last_used, revoked FROM tokens WHERE user_id = ? ORDER BY id DESC`), userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var created, expires int64
		var lastUsed, revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.UserID, &t.Name, &created, &expires, &lastUsed, &revoked); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		t.Created, t.Expires = time.UnixMilli(created), time.UnixMilli(expires)
		if lastUsed.Valid {
			t.LastUsed = time.UnixMilli(lastUsed.Int64)
		}
		if revoked.Valid {
			t.Revoked = time.UnixMilli(revoked.Int64)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
