package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// Job is a background task (a data plane deploy, a drift check) that
// exactly one replica runs at a time.
type Job struct {
	ID       int64
	Kind     string
	Payload  string
	Status   string
	Worker   string
	Attempts int
}

// ErrNoJob: nothing to claim.
var ErrNoJob = errkind.New("no job to claim", errkind.NotFound)

// Enqueue adds a queued job.
func (d *DB) Enqueue(ctx context.Context, kind, payload string) (int64, error) {
	now := time.Now().UnixMilli()
	q := `INSERT INTO jobs (kind, payload, status, created, updated) VALUES (?, ?, 'queued', ?, ?) RETURNING id`
	var id int64
	if err := d.SQL.QueryRowContext(ctx, d.Rebind(q), kind, payload, now, now).Scan(&id); err != nil {
		return 0, fmt.Errorf("enqueue job %s: %w", kind, err)
	}
	return id, nil
}

// Claim takes the oldest queued job, or a running one whose lease ran out
// (its replica died), for worker until lease from now. Two replicas
// claiming at once never get the same job: PostgreSQL skips rows another
// transaction holds (FOR UPDATE SKIP LOCKED); SQLite has one writer at a
// time.
func (d *DB) Claim(ctx context.Context, worker string, lease time.Duration) (*Job, error) {
	now := time.Now()
	lock := ""
	if d.Dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	q := `UPDATE jobs SET status = 'running', worker = ?, lease_until = ?, attempts = attempts + 1, updated = ?
		WHERE id = (SELECT id FROM jobs WHERE status = 'queued' OR (status = 'running' AND lease_until < ?) ORDER BY id LIMIT 1` + lock + `)
		RETURNING id, kind, payload, status, worker, attempts`
	j := &Job{}
	err := d.SQL.QueryRowContext(ctx, d.Rebind(q), worker, now.Add(lease).UnixMilli(), now.UnixMilli(), now.UnixMilli()).
		Scan(&j.ID, &j.Kind, &j.Payload, &j.Status, &j.Worker, &j.Attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoJob
	}
	if err != nil {
		return nil, fmt.Errorf("claim job: %w", err)
	}
	return j, nil
}

// Finish records a claimed job's outcome. A worker that lost its lease to
// another replica gets a conflict and must not report its result.
func (d *DB) Finish(ctx context.Context, id int64, worker string, succeeded bool, result string) error {
	status := "failed"
	if succeeded {
		status = "succeeded"
	}
	q := `UPDATE jobs SET status = ?, result = ?, lease_until = NULL, updated = ? WHERE id = ? AND worker = ? AND status = 'running'`
	res, err := d.SQL.ExecContext(ctx, d.Rebind(q), status, result, time.Now().UnixMilli(), id, worker)
	if err != nil {
		return fmt.Errorf("finish job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("finish job %d: %s no longer holds it: %w", id, worker, errkind.Conflict)
	}
	return nil
}
