package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// AuditEntry is one row of the append-only audit log.
type AuditEntry struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	RequestID string    `json:"request_id"`
	Action    string    `json:"action"`
	Object    string    `json:"object"`
	Outcome   string    `json:"outcome"`
	SourceIP  string    `json:"source_ip"`
	Detail    string    `json:"detail,omitempty"`
	OrgID     int64     `json:"-"` // the actor's organisation; 0 for none
	PrevHash  string    `json:"-"`
	Hash      string    `json:"-"`
}

// ErrAuditTampered: a row of the audit log was changed, removed or
// inserted out of band.
var ErrAuditTampered = errkind.New("audit log tampered with", errkind.Conflict)

// entryHash chains a row to the one before it. The row is hashed as JSON
// of its fields in a fixed order, so no two different rows hash alike.
func entryHash(prev string, e *AuditEntry) string {
	fields := []any{e.ID, e.Time.UnixMilli(), e.Actor, e.RequestID, e.Action, e.Object, e.Outcome, e.SourceIP, e.Detail}
	if e.OrgID != 0 { // rows from before organisations were recorded hash as they did
		fields = append(fields, e.OrgID)
	}
	b, _ := json.Marshal(fields)
	sum := sha256.Sum256(append([]byte(prev+"\n"), b...))
	return hex.EncodeToString(sum[:])
}

// AppendAudit adds e to the log. Appends are serialised (an advisory lock
// in PostgreSQL, the write lock in SQLite), so the chain never forks.
func (d *DB) AppendAudit(ctx context.Context, e *AuditEntry) error {
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	defer tx.Rollback()
	if d.Dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(84200002)`); err != nil {
			return fmt.Errorf("append audit entry: lock: %w", err)
		}
	}
	var lastID int64
	var prev string
	err = tx.QueryRowContext(ctx, `SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&lastID, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("append audit entry: %w", err)
	}
	// The id is chosen here, not by the database, so that it is part of
	// the hash: a deleted row leaves a gap the chain shows.
	e.ID = lastID + 1
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = time.UnixMilli(e.Time.UnixMilli())
	e.PrevHash, e.Hash = prev, entryHash(prev, e)
	org := sql.NullInt64{Int64: e.OrgID, Valid: e.OrgID != 0}
	_, err = tx.ExecContext(ctx, d.Rebind(`INSERT INTO audit_log (id, time, actor, request_id, action, object, outcome, source_ip, detail, org_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		e.ID, e.Time.UnixMilli(), e.Actor, e.RequestID, e.Action, e.Object, e.Outcome, e.SourceIP, e.Detail, org, e.PrevHash, e.Hash)
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	return nil
}

// AuditLog returns the entries after id afterID, oldest first, at most limit.
func (d *DB) AuditLog(ctx context.Context, afterID int64, limit int) ([]AuditEntry, error) {
	return d.SearchAudit(ctx, AuditFilter{AfterID: afterID, Limit: limit})
}

// VerifyAudit walks the whole chain and returns how many entries it
// checked, or ErrAuditTampered naming the first entry that does not fit.
func (d *DB) VerifyAudit(ctx context.Context) (int, error) {
	prev, next, n := "", int64(1), 0
	for {
		batch, err := d.AuditLog(ctx, next-1, 1000)
		if err != nil {
			return n, err
		}
		if len(batch) == 0 {
			return n, nil
		}
		for i := range batch {
			e := &batch[i]
			switch {
			case e.ID != next:
				return n, fmt.Errorf("audit entry %d is missing (the next is %d): %w", next, e.ID, ErrAuditTampered)
			case e.PrevHash != prev || entryHash(prev, e) != e.Hash:
				return n, fmt.Errorf("audit entry %d was changed: %w", e.ID, ErrAuditTampered)
			}
			prev, next, n = e.Hash, next+1, n+1
		}
	}
}

// AuditFilter selects audit entries; empty fields match everything.
type AuditFilter struct {
	AfterID int64
	OrgID   int64 // entries of this organisation only

	Actor, Action string
	ObjectPrefix  string
	Outcome       string // "ok" or "error"
	Since, Until  time.Time
	Limit         int
}

// SearchAudit returns the entries matching f, oldest first.
func (d *DB) SearchAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	q := `SELECT id, time, actor, request_id, action, object, outcome, source_ip, detail, org_id, prev_hash, hash FROM audit_log WHERE id > ?`
	args := []any{f.AfterID}
	add := func(cond string, v any) { q += " AND " + cond; args = append(args, v) }
	if f.OrgID != 0 {
		add("org_id = ?", f.OrgID)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.ObjectPrefix != "" {
		add("substr(object, 1, ?) = ?", len(f.ObjectPrefix))
		args = append(args, f.ObjectPrefix)
	}
	switch f.Outcome {
	case "ok":
		add("outcome = ?", "ok")
	case "error":
		add("outcome <> ?", "ok")
	}
	if !f.Since.IsZero() {
		add("time >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("time < ?", f.Until.UnixMilli())
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	q += " ORDER BY id LIMIT ?"
	args = append(args, f.Limit)
	rows, err := d.SQL.QueryContext(ctx, d.Rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("search audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var t int64
		var org sql.NullInt64
		if err := rows.Scan(&e.ID, &t, &e.Actor, &e.RequestID, &e.Action, &e.Object, &e.Outcome, &e.SourceIP, &e.Detail, &org, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("search audit log: %w", err)
		}
		e.OrgID = org.Int64
		e.Time = time.UnixMilli(t)
		out = append(out, e)
	}
	return out, rows.Err()
}
