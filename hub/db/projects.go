package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// Organisation owns data planes and projects.
type Organisation struct {
	ID   int64
	Name string
	// EnforceOwnDataPlanes refuses projects on anything but the
	// organisation's own data planes.
	EnforceOwnDataPlanes bool
	// Role is the user's role in it (admin or member) when it was read
	// through a membership; empty otherwise.
	Role string
}

// CreateOrganisation adds an organisation with admin as its first admin.
func (d *DB) CreateOrganisation(ctx context.Context, name string, admin int64) (*Organisation, error) {
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("create organisation %s: %w", name, err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, d.Rebind(`INSERT INTO organisations (name, created) VALUES (?, ?) RETURNING id`), name, time.Now().UnixMilli()).Scan(&id)
	if isUniqueViolation(err) {
		return nil, fmt.Errorf("create organisation %s: the name is taken: %w", name, errkind.Conflict)
	}
	if err != nil {
		return nil, fmt.Errorf("create organisation %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO org_members (org_id, user_id, role) VALUES (?, ?, 'admin')`), id, admin); err != nil {
		return nil, fmt.Errorf("create organisation %s: add admin: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("create organisation %s: %w", name, err)
	}
	return &Organisation{ID: id, Name: name, Role: "admin"}, nil
}

// UserOrganisation returns the first organisation the user belongs to,
// with the user's role in it.
func (d *DB) UserOrganisation(ctx context.Context, userID int64) (*Organisation, error) {
	return d.MemberOrganisation(ctx, userID, "")
}

// MemberOrganisation returns the organisation of that name with the user's
// role in it, or errkind.NotFound when the user is not a member (whether or
// not it exists: its existence is not the caller's business). An empty
// name means the user's first organisation.
func (d *DB) MemberOrganisation(ctx context.Context, userID int64, name string) (*Organisation, error) {
	where, args := `m.user_id = ?`, []any{userID}
	if name != "" {
		where, args = where+` AND o.name = ?`, append(args, name)
	}
	list, err := d.memberOrganisations(ctx, where+` ORDER BY o.id LIMIT 1`, args...)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		if name == "" {
			return nil, fmt.Errorf("the user belongs to no organisation: %w", errkind.NotFound)
		}
		return nil, fmt.Errorf("organisation %s: %w", name, errkind.NotFound)
	}
	return &list[0], nil
}

// MemberOrganisationByID is MemberOrganisation by the organisation's id.
func (d *DB) MemberOrganisationByID(ctx context.Context, userID, orgID int64) (*Organisation, error) {
	list, err := d.memberOrganisations(ctx, `m.user_id = ? AND o.id = ?`, userID, orgID)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("organisation %d: %w", orgID, errkind.NotFound)
	}
	return &list[0], nil
}

// UserOrganisations lists the organisations the user belongs to, with its
// role in each, oldest first (the first is the default selection).
func (d *DB) UserOrganisations(ctx context.Context, userID int64) ([]Organisation, error) {
	return d.memberOrganisations(ctx, `m.user_id = ? ORDER BY o.id`, userID)
}

func (d *DB) memberOrganisations(ctx context.Context, where string, args ...any) ([]Organisation, error) {
	rows, err := d.SQL.QueryContext(ctx, d.Rebind(`SELECT o.id, o.name, o.enforce_own_dataplanes, m.role FROM organisations o JOIN org_members m ON m.org_id = o.id WHERE `+where), args...)
	if err != nil {
		return nil, fmt.Errorf("read organisations: %w", err)
	}
	defer rows.Close()
	var out []Organisation
	for rows.Next() {
		var o Organisation
		var enforce int
		if err := rows.Scan(&o.ID, &o.Name, &enforce, &o.Role); err != nil {
			return nil, fmt.Errorf("read organisations: %w", err)
		}
		o.EnforceOwnDataPlanes = enforce == 1
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read organisations: %w", err)
	}
	return out, nil
}

// DataPlane is a set of regional buckets the hub vends credentials for.
// Settings is JSON the hub package defines; Secrets is a JSON object of
// sealed values (hub/secrets), never clear text.
type DataPlane struct {
	ID       int64
	OrgID    int64
	Name     string
	Kind     string // aws or s3compat
	Settings string
	Secrets  string
}

// CreateDataPlane stores a data plane.
func (d *DB) CreateDataPlane(ctx context.Context, p *DataPlane) error {
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`INSERT INTO dataplanes (org_id, name, kind, settings, sealed_secrets, created) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		p.OrgID, p.Name, p.Kind, p.Settings, p.Secrets, time.Now().UnixMilli()).Scan(&p.ID)
	if isUniqueViolation(err) {
		return fmt.Errorf("create data plane %s: the name is taken: %w", p.Name, errkind.Conflict)
	}
	if err != nil {
		return fmt.Errorf("create data plane %s: %w", p.Name, err)
	}
	return nil
}

// DataPlaneByName returns one of the organisation's data planes.
func (d *DB) DataPlaneByName(ctx context.Context, orgID int64, name string) (*DataPlane, error) {
	return d.dataPlane(ctx, `org_id = ? AND name = ?`, orgID, name)
}

// DataPlaneByID returns a data plane.
func (d *DB) DataPlaneByID(ctx context.Context, id int64) (*DataPlane, error) {
	return d.dataPlane(ctx, `id = ?`, id)
}

func (d *DB) dataPlane(ctx context.Context, where string, args ...any) (*DataPlane, error) {
	p := &DataPlane{}
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT id, org_id, name, kind, settings, sealed_secrets FROM dataplanes WHERE `+where), args...).
		Scan(&p.ID, &p.OrgID, &p.Name, &p.Kind, &p.Settings, &p.Secrets)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("data plane: %w", errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read data plane: %w", err)
	}
	return p, nil
}

// Project binds a name in an organisation to a data plane and a key prefix.
type Project struct {
	ID          int64
	OrgID       int64
	Name        string
	DataPlaneID int64
	Prefix      string
}

// CreateProject stores a project; its creator becomes its admin.
func (d *DB) CreateProject(ctx context.Context, p *Project, creator int64) error {
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create project %s: %w", p.Name, err)
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, d.Rebind(`INSERT INTO projects (org_id, name, dataplane_id, prefix, created) VALUES (?, ?, ?, ?, ?) RETURNING id`),
		p.OrgID, p.Name, p.DataPlaneID, p.Prefix, time.Now().UnixMilli()).Scan(&p.ID)
	if isUniqueViolation(err) {
		return fmt.Errorf("create project %s: the name is taken: %w", p.Name, errkind.Conflict)
	}
	if err != nil {
		return fmt.Errorf("create project %s: %w", p.Name, err)
	}
	if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO project_members (project_id, user_id, role) VALUES (?, ?, 'admin')`), p.ID, creator); err != nil {
		return fmt.Errorf("create project %s: add admin: %w", p.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create project %s: %w", p.Name, err)
	}
	return nil
}

// ProjectByName returns one of the organisation's projects.
func (d *DB) ProjectByName(ctx context.Context, orgID int64, name string) (*Project, error) {
	p := &Project{}
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT id, org_id, name, dataplane_id, prefix FROM projects WHERE org_id = ? AND name = ?`), orgID, name).
		Scan(&p.ID, &p.OrgID, &p.Name, &p.DataPlaneID, &p.Prefix)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("project %s: %w", name, errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read project %s: %w", name, err)
	}
	return p, nil
}

// SetProjectMember gives a user a role in a project (admin, writer,
// reader), replacing any earlier role.
func (d *DB) SetProjectMember(ctx context.Context, projectID, userID int64, role string) error {
	q := `INSERT INTO project_members (project_id, user_id, role) VALUES (?, ?, ?) ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role`
	if _, err := d.SQL.ExecContext(ctx, d.Rebind(q), projectID, userID, role); err != nil {
		return fmt.Errorf("set project member: %w", err)
	}
	return nil
}

// ProjectRole returns the user's role in the project, or errkind.NotFound.
func (d *DB) ProjectRole(ctx context.Context, projectID, userID int64) (string, error) {
	var role string
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT role FROM project_members WHERE project_id = ? AND user_id = ?`), projectID, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("project membership: %w", errkind.NotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read project role: %w", err)
	}
	return role, nil
}

// UserByEmail returns the user with that e-mail.
func (d *DB) UserByEmail(ctx context.Context, email string) (*User, error) {
	var id int64
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT id FROM users WHERE email = ?`), email).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %s: %w", email, errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read user %s: %w", email, err)
	}
	return d.UserByID(ctx, id)
}

// AddOrgMember puts a user in an organisation with role admin or member.
func (d *DB) AddOrgMember(ctx context.Context, orgID, userID int64, role string) error {
	if _, err := d.SQL.ExecContext(ctx, d.Rebind(`INSERT INTO org_members (org_id, user_id, role) VALUES (?, ?, ?)`), orgID, userID, role); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("add organisation member: already a member: %w", errkind.Conflict)
		}
		return fmt.Errorf("add organisation member: %w", err)
	}
	return nil
}

// DataPlaneSecrets lists every data plane's id and sealed secrets, for key
// rotation.
func (d *DB) DataPlaneSecrets(ctx context.Context) (map[int64]string, error) {
	rows, err := d.SQL.QueryContext(ctx, `SELECT id, sealed_secrets FROM dataplanes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read data plane secrets: %w", err)
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var id int64
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			return nil, fmt.Errorf("read data plane secrets: %w", err)
		}
		out[id] = s
	}
	return out, rows.Err()
}

// ReplaceDataPlaneSecrets stores a data plane's secrets resealed, only if
// they are still old (another rotation or edit wins, and is reported).
func (d *DB) ReplaceDataPlaneSecrets(ctx context.Context, id int64, old, resealed string) error {
	res, err := d.SQL.ExecContext(ctx, d.Rebind(`UPDATE dataplanes SET sealed_secrets = ? WHERE id = ? AND sealed_secrets = ?`), resealed, id, old)
	if err != nil {
		return fmt.Errorf("store resealed secrets of data plane %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("data plane %d changed during the rotation; run it again: %w", id, errkind.Conflict)
	}
	return nil
}
