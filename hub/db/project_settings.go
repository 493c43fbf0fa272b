package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/errkind"
)

// ProjectSettings are what a project's admins may change after creating it.
type ProjectSettings struct {
	Description string
	// TrustedKeys are minisign public keys in their one-line text form
	// (RWQ...), checked by the caller before they are stored.
	TrustedKeys []string
}

// ProjectSettingsChange names the settings to change; nil leaves one as it is.
type ProjectSettingsChange struct {
	Description *string
	TrustedKeys *[]string
}

// ProjectSettings returns a project's settings.
func (d *DB) ProjectSettings(ctx context.Context, projectID int64) (*ProjectSettings, error) {
	var desc, keys string
	err := d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT description, trusted_keys FROM projects WHERE id = ?`), projectID).Scan(&desc, &keys)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("project %d: %w", projectID, errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read project settings: %w", err)
	}
	return &ProjectSettings{Description: desc, TrustedKeys: strings.Fields(keys)}, nil
}

// SetProjectSettings changes the settings ch names, in one statement.
func (d *DB) SetProjectSettings(ctx context.Context, projectID int64, ch ProjectSettingsChange) error {
	var sets []string
	var args []any
	if ch.Description != nil {
		sets, args = append(sets, "description = ?"), append(args, *ch.Description)
	}
	if ch.TrustedKeys != nil {
		sets, args = append(sets, "trusted_keys = ?"), append(args, strings.Join(*ch.TrustedKeys, "\n"))
	}
	if len(sets) == 0 {
		return nil
	}
	res, err := d.SQL.ExecContext(ctx, d.Rebind(`UPDATE projects SET `+strings.Join(sets, ", ")+` WHERE id = ?`), append(args, projectID)...)
	if err != nil {
		return fmt.Errorf("change project settings: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("project %d: %w", projectID, errkind.NotFound)
	}
	return nil
}
