package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// IndexedVersion is one row of a project's version index, the hub's copy
// of what the stores list.
type IndexedVersion struct {
	Version string
	// SortKey is artifact.SortKey of Version: the index orders by it.
	SortKey    []byte
	Created    time.Time
	Regions    []string // the regions holding the version
	Prerelease bool
	// StagedBy is known only from a manifest; "" (a listing) keeps the
	// stored value.
	StagedBy string
}

// insertBatch rows go in one INSERT: 8 parameters each stays far below
// both engines' limits on parameters per statement.
const insertBatch = 200

// insertVersions inserts vs, rows already indexed are left alone (ignore)
// or updated from vs (a newer read from the stores).
func (d *DB) insertVersions(ctx context.Context, tx *sql.Tx, projectID int64, vs []IndexedVersion, at time.Time, update bool) error {
	for len(vs) > 0 {
		n := min(len(vs), insertBatch)
		var q strings.Builder
		q.WriteString(`INSERT INTO project_versions (project_id, version, sort_key, created, regions, prerelease, staged_by, indexed) VALUES `)
		args := make([]any, 0, 8*n)
		for i, v := range vs[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
			regions, err := json.Marshal(v.Regions)
			if err != nil {
				return err
			}
			args = append(args, projectID, v.Version, v.SortKey, v.Created.UnixMilli(), string(regions), boolInt(v.Prerelease), v.StagedBy, at.UnixMilli())
		}
		if update {
			q.WriteString(` ON CONFLICT (project_id, version) DO UPDATE SET created = excluded.created, regions = excluded.regions,
				staged_by = CASE WHEN excluded.staged_by = '' THEN project_versions.staged_by ELSE excluded.staged_by END, indexed = excluded.indexed`)
		} else {
			q.WriteString(` ON CONFLICT (project_id, version) DO NOTHING`)
		}
		if _, err := tx.ExecContext(ctx, d.Rebind(q.String()), args...); err != nil {
			return err
		}
		vs = vs[n:]
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// IndexVersions adds versions to a project's index, or updates them, from
// what was read in the stores at time at (their manifests).
func (d *DB) IndexVersions(ctx context.Context, projectID int64, vs []IndexedVersion, at time.Time) error {
	return d.changeIndex(ctx, "index versions", projectID, func(tx *sql.Tx) error {
		return d.insertVersions(ctx, tx, projectID, vs, at, true)
	})
}

// AddListedVersions adds the versions a partial listing (some regions did
// not answer) found that the index lacks. It changes and deletes nothing:
// what the silent regions hold is unknown.
func (d *DB) AddListedVersions(ctx context.Context, projectID int64, vs []IndexedVersion, at time.Time) error {
	return d.changeIndex(ctx, "index versions", projectID, func(tx *sql.Tx) error {
		return d.insertVersions(ctx, tx, projectID, vs, at, false)
	})
}

// UnindexVersion removes a version no region holds any more.
func (d *DB) UnindexVersion(ctx context.Context, projectID int64, version string) error {
	return d.changeIndex(ctx, "unindex version "+version, projectID, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, d.Rebind(`DELETE FROM project_versions WHERE project_id = ? AND version = ?`), projectID, version)
		return err
	})
}

// ReplaceVersionIndex makes a project's index what a full listing of
// every region, begun at listedAt, found: in one transaction it adds what
// is new, updates the regions of what changed and deletes what is gone,
// and records listedAt as the project's last sync. A row written at or
// after listedAt (a version indexed while the listing ran) is newer than
// the listing and left alone. Rows that did not change are not written,
// so a sync of an unchanged project only reads.
func (d *DB) ReplaceVersionIndex(ctx context.Context, projectID int64, vs []IndexedVersion, listedAt time.Time) error {
	return d.changeIndex(ctx, "replace version index", projectID, func(tx *sql.Tx) error {
		type row struct {
			regions string
			indexed int64
		}
		have := map[string]row{}
		rows, err := tx.QueryContext(ctx, d.Rebind(`SELECT version, regions, indexed FROM project_versions WHERE project_id = ?`), projectID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v string
			var r row
			if err := rows.Scan(&v, &r.regions, &r.indexed); err != nil {
				rows.Close()
				return err
			}
			have[v] = r
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		at := listedAt.UnixMilli()
		var added []IndexedVersion
		listed := make(map[string]bool, len(vs))
		for _, v := range vs {
			listed[v.Version] = true
			r, ok := have[v.Version]
			if !ok {
				added = append(added, v)
				continue
			}
			regions, err := json.Marshal(v.Regions)
			if err != nil {
				return err
			}
			if r.indexed >= at || r.regions == string(regions) {
				continue
			}
			// created and staged_by stay: a manifest read set them, or
			// the first listing did.
			if _, err := tx.ExecContext(ctx, d.Rebind(`UPDATE project_versions SET regions = ?, indexed = ? WHERE project_id = ? AND version = ?`),
				string(regions), at, projectID, v.Version); err != nil {
				return err
			}
		}
		for v, r := range have {
			if listed[v] || r.indexed >= at {
				continue
			}
			if _, err := tx.ExecContext(ctx, d.Rebind(`DELETE FROM project_versions WHERE project_id = ? AND version = ?`), projectID, v); err != nil {
				return err
			}
		}
		if err := d.insertVersions(ctx, tx, projectID, added, listedAt, false); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, d.Rebind(`UPDATE projects SET versions_synced = ? WHERE id = ?`), at, projectID)
		return err
	})
}

// changeIndex runs f, a change of projectID's index, in a transaction, counts
// the index again and commits; what names the work in errors.
func (d *DB) changeIndex(ctx context.Context, what string, projectID int64, f func(*sql.Tx) error) error {
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.ExecContext(ctx, d.Rebind(`UPDATE projects SET versions_count = (SELECT COUNT(*) FROM project_versions WHERE project_id = ?) WHERE id = ?`),
		projectID, projectID); err != nil {
		return fmt.Errorf("%s: count: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// VersionPage returns up to limit indexed versions of a project in sort
// key order, newest (descending) or oldest first, strictly after the key
// after (none: from the start).
func (d *DB) VersionPage(ctx context.Context, projectID int64, after []byte, newest bool, limit int) ([]IndexedVersion, error) {
	q := `SELECT version, created, regions, prerelease, staged_by FROM project_versions WHERE project_id = ?`
	args := []any{projectID}
	op, order := ">", "ASC"
	if newest {
		op, order = "<", "DESC"
	}
	if after != nil {
		q += ` AND sort_key ` + op + ` ?`
		args = append(args, after)
	}
	q += ` ORDER BY sort_key ` + order + ` LIMIT ?`
	args = append(args, limit)
	rows, err := d.SQL.QueryContext(ctx, d.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("read version index: %w", err)
	}
	defer rows.Close()
	out := make([]IndexedVersion, 0, limit)
	for rows.Next() {
		var v IndexedVersion
		var created int64
		var regions string
		var pre int
		if err := rows.Scan(&v.Version, &created, &regions, &pre, &v.StagedBy); err != nil {
			return nil, fmt.Errorf("read version index: %w", err)
		}
		if err := json.Unmarshal([]byte(regions), &v.Regions); err != nil {
			return nil, fmt.Errorf("read version index: regions of %s: %w", v.Version, err)
		}
		v.Created, v.Prerelease = time.UnixMilli(created).UTC(), pre == 1
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read version index: %w", err)
	}
	return out, nil
}

// VersionIndexState is how much a project's index holds and how fresh
// it is.
type VersionIndexState struct {
	Count int
	// Synced is the start of the last full listing; zero: never synced.
	Synced time.Time
}

// VersionIndex returns the state of a project's index.
func (d *DB) VersionIndex(ctx context.Context, projectID int64) (VersionIndexState, error) {
	var st VersionIndexState
	var synced sql.NullInt64
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT versions_count, versions_synced FROM projects WHERE id = ?`),
		projectID).Scan(&st.Count, &synced)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("project %d: %w", projectID, errkind.NotFound)
	}
	if err != nil {
		return st, fmt.Errorf("read version index state: %w", err)
	}
	if synced.Valid {
		st.Synced = time.UnixMilli(synced.Int64).UTC()
	}
	return st, nil
}
