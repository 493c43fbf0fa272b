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
	ID          int64
	Kind        string
	Payload     string
	Status      string // queued, running, succeeded, failed
	Worker      string
	Attempts    int
	OrgID       int64
	DataPlaneID int64
	Result      string
	Created     time.Time
	Updated     time.Time
	ApprovedBy  int64 // a plan job: the admin who approved it
	Approved    time.Time
	DeployJob   int64 // a plan job: the deploy job its approval queued
}

// NewJob is a job to queue.
type NewJob struct {
	Kind        string
	Payload     string
	OrgID       int64
	DataPlaneID int64
}

// ErrNoJob: nothing to claim.
var ErrNoJob = errkind.New("no job to claim", errkind.NotFound)

// Enqueue adds a queued job.
func (d *DB) Enqueue(ctx context.Context, kind, payload string) (int64, error) {
	return d.EnqueueJob(ctx, NewJob{Kind: kind, Payload: payload})
}

// EnqueueJob adds a queued job of an organisation's data plane.
func (d *DB) EnqueueJob(ctx context.Context, j NewJob) (int64, error) {
	now := time.Now().UnixMilli()
	q := `INSERT INTO jobs (kind, payload, status, org_id, dataplane_id, created, updated) VALUES (?, ?, 'queued', ?, ?, ?, ?) RETURNING id`
	var id int64
	if err := d.SQL.QueryRowContext(ctx, d.Rebind(q), j.Kind, j.Payload, nullID(j.OrgID), nullID(j.DataPlaneID), now, now).Scan(&id); err != nil {
		return 0, fmt.Errorf("enqueue job %s: %w", j.Kind, err)
	}
	return id, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

const jobColumns = `id, kind, payload, status, COALESCE(worker, ''), attempts, COALESCE(org_id, 0), COALESCE(dataplane_id, 0),
	COALESCE(result, ''), created, updated, COALESCE(approved_by, 0), COALESCE(approved, 0), COALESCE(deploy_job, 0)`

func scanJob(row interface{ Scan(...any) error }) (*Job, error) {
	j := &Job{}
	var created, updated, approved int64
	err := row.Scan(&j.ID, &j.Kind, &j.Payload, &j.Status, &j.Worker, &j.Attempts, &j.OrgID, &j.DataPlaneID,
		&j.Result, &created, &updated, &j.ApprovedBy, &approved, &j.DeployJob)
	if err != nil {
		return nil, err
	}
	j.Created, j.Updated = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	if approved != 0 {
		j.Approved = time.UnixMilli(approved).UTC()
	}
	return j, nil
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
		RETURNING ` + jobColumns
	j, err := scanJob(d.SQL.QueryRowContext(ctx, d.Rebind(q), worker, now.Add(lease).UnixMilli(), now.UnixMilli(), now.UnixMilli()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoJob
	}
	if err != nil {
		return nil, fmt.Errorf("claim job: %w", err)
	}
	return j, nil
}

// Renew extends a claimed job's lease; a conflict means another replica
// took the job over after the lease ran out, and worker must stop.
func (d *DB) Renew(ctx context.Context, id int64, worker string, lease time.Duration) error {
	now := time.Now()
	q := `UPDATE jobs SET lease_until = ?, updated = ? WHERE id = ? AND worker = ? AND status = 'running'`
	res, err := d.SQL.ExecContext(ctx, d.Rebind(q), now.Add(lease).UnixMilli(), now.UnixMilli(), id, worker)
	if err != nil {
		return fmt.Errorf("renew lease of job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("renew lease of job %d: %s no longer holds it: %w", id, worker, errkind.Conflict)
	}
	return nil
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

// JobByID returns one of the organisation's jobs.
func (d *DB) JobByID(ctx context.Context, orgID, id int64) (*Job, error) {
	j, err := scanJob(d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT `+jobColumns+` FROM jobs WHERE id = ? AND org_id = ?`), id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, errkind.NotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %d: %w", id, err)
	}
	return j, nil
}

// ApprovePlan marks a succeeded plan job approved by user and queues the
// deploy job that applies it, in one transaction; a plan is approved once.
func (d *DB) ApprovePlan(ctx context.Context, orgID, planID, userID int64, deployPayload string) (int64, error) {
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("approve job %d: %w", planID, err)
	}
	defer tx.Rollback()
	now := time.Now().UnixMilli()
	var dataplane int64
	err = tx.QueryRowContext(ctx, d.Rebind(`SELECT dataplane_id FROM jobs WHERE id = ? AND org_id = ? AND kind = 'plan' AND status = 'succeeded' AND approved IS NULL`),
		planID, orgID).Scan(&dataplane)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("approve job %d: only a plan job that succeeded and was not approved yet can be approved: %w", planID, errkind.Conflict)
	}
	if err != nil {
		return 0, fmt.Errorf("approve job %d: %w", planID, err)
	}
	// A newer plan of the data plane, queued, running or done, replaces
	// this one: its worker deletes this plan's change sets.
	var newer int64
	err = tx.QueryRowContext(ctx, d.Rebind(`SELECT id FROM jobs WHERE dataplane_id = ? AND kind = 'plan' AND id > ? AND status IN ('queued', 'running', 'succeeded') ORDER BY id DESC LIMIT 1`),
		dataplane, planID).Scan(&newer)
	if err == nil {
		return 0, fmt.Errorf("approve job %d: plan job %d replaces it; approve that one once it has succeeded: %w", planID, newer, errkind.Conflict)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("approve job %d: %w", planID, err)
	}
	var deployID int64
	err = tx.QueryRowContext(ctx, d.Rebind(`INSERT INTO jobs (kind, payload, status, org_id, dataplane_id, created, updated) VALUES ('deploy', ?, 'queued', ?, ?, ?, ?) RETURNING id`),
		deployPayload, orgID, dataplane, now, now).Scan(&deployID)
	if err != nil {
		return 0, fmt.Errorf("approve job %d: queue deploy: %w", planID, err)
	}
	res, err := tx.ExecContext(ctx, d.Rebind(`UPDATE jobs SET approved_by = ?, approved = ?, deploy_job = ?, updated = ? WHERE id = ? AND approved IS NULL`),
		userID, now, deployID, now, planID)
	if err != nil {
		return 0, fmt.Errorf("approve job %d: %w", planID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return 0, fmt.Errorf("approve job %d: approved meanwhile: %w", planID, errkind.Conflict)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("approve job %d: %w", planID, err)
	}
	return deployID, nil
}

// ReplacedPlan returns the data plane's latest plan job before job id
// that succeeded, when nobody approved it: the plan plan job id replaces.
// Plans before that one were replaced by it. Nil when there is none.
func (d *DB) ReplacedPlan(ctx context.Context, dataplaneID, id int64) (*Job, error) {
	j, err := scanJob(d.SQL.QueryRowContext(ctx, d.Rebind(`SELECT `+jobColumns+` FROM jobs WHERE dataplane_id = ? AND kind = 'plan' AND id < ? AND status = 'succeeded' ORDER BY id DESC LIMIT 1`), dataplaneID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the plan job %d replaces: %w", id, err)
	}
	if !j.Approved.IsZero() {
		return nil, nil
	}
	return j, nil
}

// JobEvent is one line of a job's progress.
type JobEvent struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// AddJobEvent appends to a job's progress.
func (d *DB) AddJobEvent(ctx context.Context, jobID int64, message string) error {
	_, err := d.SQL.ExecContext(ctx, d.Rebind(`INSERT INTO job_events (job_id, time, message) VALUES (?, ?, ?)`), jobID, time.Now().UnixMilli(), message)
	if err != nil {
		return fmt.Errorf("add event of job %d: %w", jobID, err)
	}
	return nil
}

// JobEvents returns a job's events, oldest first.
func (d *DB) JobEvents(ctx context.Context, jobID int64) ([]JobEvent, error) {
	rows, err := d.SQL.QueryContext(ctx, d.Rebind(`SELECT time, message FROM job_events WHERE job_id = ? ORDER BY id`), jobID)
	if err != nil {
		return nil, fmt.Errorf("read events of job %d: %w", jobID, err)
	}
	defer rows.Close()
	out := []JobEvent{}
	for rows.Next() {
		var ms int64
		var e JobEvent
		if err := rows.Scan(&ms, &e.Message); err != nil {
			return nil, fmt.Errorf("read events of job %d: %w", jobID, err)
		}
		e.Time = time.UnixMilli(ms).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// ListJobs returns a data plane's latest jobs, newest first.
func (d *DB) ListJobs(ctx context.Context, orgID, dataplaneID int64, limit int) ([]*Job, error) {
	rows, err := d.SQL.QueryContext(ctx, d.Rebind(`SELECT `+jobColumns+` FROM jobs WHERE org_id = ? AND dataplane_id = ? ORDER BY id DESC LIMIT ?`), orgID, dataplaneID, limit)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	out := []*Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}
