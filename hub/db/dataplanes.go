package db

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// DataPlaneSummary is a data plane without its secrets, for listings.
type DataPlaneSummary struct {
	ID       int64
	Name     string
	Kind     string
	Settings string
	Created  time.Time
	Deployed time.Time // zero: the hub never deployed it
}

// ListDataPlanes returns the organisation's data planes by name.
func (d *DB) ListDataPlanes(ctx context.Context, orgID int64) ([]DataPlaneSummary, error) {
	rows, err := d.SQL.QueryContext(ctx, d.Rebind(`SELECT id, name, kind, settings, created, COALESCE(deployed, 0) FROM dataplanes WHERE org_id = ? ORDER BY name`), orgID)
	if err != nil {
		return nil, fmt.Errorf("list data planes: %w", err)
	}
	defer rows.Close()
	out := []DataPlaneSummary{}
	for rows.Next() {
		var p DataPlaneSummary
		var created, deployed int64
		if err := rows.Scan(&p.ID, &p.Name, &p.Kind, &p.Settings, &created, &deployed); err != nil {
			return nil, fmt.Errorf("list data planes: %w", err)
		}
		p.Created = time.UnixMilli(created).UTC()
		if deployed != 0 {
			p.Deployed = time.UnixMilli(deployed).UTC()
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// DataPlaneDeployed reports when a deploy job of the hub last succeeded
// for the data plane (zero: never).
func (d *DB) DataPlaneDeployed(ctx context.Context, id int64) (time.Time, error) {
	var ms int64
	if err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT COALESCE(deployed, 0) FROM dataplanes WHERE id = ?`), id).Scan(&ms); err != nil {
		return time.Time{}, fmt.Errorf("read data plane %d: %w", id, err)
	}
	if ms == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(ms).UTC(), nil
}

// MarkDataPlaneDeployed records a successful deploy and the settings it
// produced (the buckets of each region).
func (d *DB) MarkDataPlaneDeployed(ctx context.Context, id int64, settings string) error {
	res, err := d.SQL.ExecContext(ctx, d.Rebind(`UPDATE dataplanes SET settings = ?, deployed = ? WHERE id = ?`), settings, time.Now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("record deploy of data plane %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("record deploy of data plane %d: %w", id, errkind.NotFound)
	}
	return nil
}

// SetEnforceOwnDataPlanes turns the organisation's enforced usage on or off.
func (d *DB) SetEnforceOwnDataPlanes(ctx context.Context, orgID int64, on bool) error {
	v := 0
	if on {
		v = 1
	}
	if _, err := d.SQL.ExecContext(ctx, d.Rebind(`UPDATE organisations SET enforce_own_dataplanes = ? WHERE id = ?`), v, orgID); err != nil {
		return fmt.Errorf("store organisation settings: %w", err)
	}
	return nil
}
