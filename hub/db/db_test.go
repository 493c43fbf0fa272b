package db_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/internal/testenv"
)

// engines runs f once on a new SQLite file and once on a throw-away
// PostgreSQL cluster. open returns a new connection to the same database,
// standing in for another hub replica.
func engines(t *testing.T, f func(t *testing.T, open func() *db.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		url := "sqlite:" + filepath.Join(t.TempDir(), "hub.db")
		f(t, func() *db.DB { return mustOpen(t, url) })
	})
	t.Run("postgres", func(t *testing.T) {
		pg := testenv.StartPostgres(t)
		f(t, func() *db.DB { return mustOpen(t, pg.URL) })
	})
}

func mustOpen(t *testing.T, url string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestMigrate(t *testing.T) {
	engines(t, func(t *testing.T, open func() *db.DB) {
		ctx := context.Background()
		// Two replicas starting at once: the migrations run once.
		a, b := open(), open()
		var wg sync.WaitGroup
		var na, nb int
		var ea, eb error
		wg.Go(func() { na, ea = a.Migrate(ctx) })
		wg.Go(func() { nb, eb = b.Migrate(ctx) })
		wg.Wait()
		if ea != nil || eb != nil {
			t.Fatalf("migrate: %v, %v", ea, eb)
		}
		if na+nb != db.LatestVersion() {
			t.Errorf("applied %d + %d migrations, want %d in all", na, nb, db.LatestVersion())
		}
		if v, err := a.SchemaVersion(ctx); err != nil || v != db.LatestVersion() {
			t.Fatalf("schema version %d, %v", v, err)
		}
		if n, err := a.Migrate(ctx); n != 0 || err != nil {
			t.Errorf("second migrate applied %d, %v", n, err)
		}
		// A newer berth migrated this database: refuse it.
		if _, err := a.SQL.ExecContext(ctx, a.Rebind(`INSERT INTO schema_migrations (version, name, applied) VALUES (?, 'future', 0)`), db.LatestVersion()+1); err != nil {
			t.Fatal(err)
		}
		_, err := open().Migrate(ctx)
		if !errors.Is(err, db.ErrSchemaTooNew) || !errors.Is(err, errkind.Conflict) || !strings.Contains(err.Error(), "upgrade berth") {
			t.Errorf("migrate a newer schema = %v", err)
		}
	})
}

func TestClaimOnce(t *testing.T) {
	engines(t, func(t *testing.T, open func() *db.DB) {
		ctx := context.Background()
		d := open()
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		const jobs = 20
		for i := range jobs {
			if _, err := d.Enqueue(ctx, "deploy", fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		// Three replicas claim until nothing is left: every job once.
		var mu sync.Mutex
		claimed := map[int64]string{}
		var wg sync.WaitGroup
		for r := range 3 {
			replica := open()
			worker := fmt.Sprintf("replica-%d", r)
			wg.Go(func() {
				for {
					j, err := replica.Claim(ctx, worker, time.Minute)
					if errors.Is(err, db.ErrNoJob) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if prev, ok := claimed[j.ID]; ok {
						t.Errorf("job %d claimed by %s and %s", j.ID, prev, worker)
					}
					claimed[j.ID] = worker
					mu.Unlock()
					if err := replica.Finish(ctx, j.ID, worker, true, "ok"); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if len(claimed) != jobs {
			t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
		}
	})
}

func TestExpiredLease(t *testing.T) {
	engines(t, func(t *testing.T, open func() *db.DB) {
		ctx := context.Background()
		d := open()
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		id, err := d.Enqueue(ctx, "drift", "{}")
		if err != nil {
			t.Fatal(err)
		}
		first, err := d.Claim(ctx, "dead", -time.Second) // lease already over
		if err != nil || first.ID != id {
			t.Fatalf("claim = %+v, %v", first, err)
		}
		second, err := d.Claim(ctx, "alive", time.Minute)
		if err != nil || second.ID != id || second.Attempts != 2 {
			t.Fatalf("reclaim after the lease ran out = %+v, %v", second, err)
		}
		if _, err := d.Claim(ctx, "third", time.Minute); !errors.Is(err, db.ErrNoJob) {
			t.Errorf("a job under a live lease was claimed again: %v", err)
		}
		if err := d.Finish(ctx, id, "dead", true, ""); !errors.Is(err, errkind.Conflict) {
			t.Errorf("the replica that lost the lease finished the job: %v", err)
		}
		if err := d.Finish(ctx, id, "alive", false, "stack rolled back"); err != nil {
			t.Error(err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct{ url, want string }{
		{"mysql://root:hunter2@db/berth", `"mysql:..."`},
		{"sqlite:", "needs a file path"},
		{"hunter2", "(no scheme)"},
	} {
		_, err := db.Open(ctx, tt.url)
		if !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) = %v, want invalid, mentioning %s, without the password", tt.url, err, tt.want)
		}
	}
	// Nothing listens on port 1: unavailable, and the password stays out.
	_, err := db.Open(ctx, "postgres://berth:s3cret-pw@127.0.0.1:1/berth?sslmode=disable&connect_timeout=1")
	if !errors.Is(err, errkind.Unavailable) || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("Open(unreachable) = %v", err)
	}
}

func TestAuditChain(t *testing.T) {
	engines(t, func(t *testing.T, open func() *db.DB) {
		ctx := context.Background()
		d := open()
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		// Two replicas append at once: one chain, no fork.
		var wg sync.WaitGroup
		for r := range 2 {
			replica := open()
			wg.Go(func() {
				for i := range 10 {
					e := &db.AuditEntry{Actor: fmt.Sprint("user-", r), RequestID: "req", Action: "project.create", Object: fmt.Sprint("project/", i), Outcome: "ok", SourceIP: "127.0.0.1"}
					if err := replica.AppendAudit(ctx, e); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if n, err := d.VerifyAudit(ctx); err != nil || n != 20 {
			t.Fatalf("verify: %d entries, %v", n, err)
		}
		for _, tamper := range []struct{ name, sql, want string }{
			{"deleted", `DELETE FROM audit_log WHERE id = 12`, "entry 12 is missing"},
			{"edited", `UPDATE audit_log SET outcome = 'ok-edited' WHERE id = 7`, "entry 7 was changed"},
		} {
			if _, err := d.SQL.ExecContext(ctx, tamper.sql); err != nil {
				t.Fatal(err)
			}
			_, err := d.VerifyAudit(ctx)
			if !errors.Is(err, db.ErrAuditTampered) || !strings.Contains(err.Error(), tamper.want) {
				t.Errorf("%s row: verify = %v, want ErrAuditTampered", tamper.name, err)
			}
		}
	})
}
