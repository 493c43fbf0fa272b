package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/hub/secrets"
)

type serverOpts struct {
	listen   string
	database string
	dataDir  string
}

func newServerCommand(g *Globals) *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "server [--listen ADDR] [--database sqlite:PATH|postgres://...] [--data-dir DIR]",
		Short: "Run the hub: the API for projects, tokens and short-lived credentials",
		Long: `server runs berth's hub, the control plane that teams share: users and API
tokens, S3-compatible data planes, projects with members and roles, short-lived
credentials narrowed to one project (STS AssumeRole with a session policy), and
a hash-chained audit log.

Secrets the hub stores (data plane identities) are sealed with a key in
DIR/secrets.key (mode 0600, created on first start); replicas need the same
file. The database is SQLite in the data directory by default, so the hub runs with no
flags; --database postgres://USER@HOST/DB lets several replicas share one
PostgreSQL. Migrations are applied at start; a database migrated by a newer
berth is refused.

On first start (no users yet) server prints a one-time setup link; open it, or
POST /api/v1/setup with its code, to create the first user and its API token.

GET /healthz, /readyz and /metrics (Prometheus) answer without authentication; everything under
/api/v1 needs "Authorization: Bearer berth_..." (the OpenAPI document at
/api/v1/openapi.json is public). Ctrl-C or SIGTERM stops it gracefully.`,
		Example: `  berth server
  berth server --listen 0.0.0.0:8420 --database postgres://berth@db.internal/berth`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.runServer(cmd.Context(), o)
		},
	}
	cmd.AddCommand(newServerAuditCommand(g, &o), newServerMigrateCommand(g, &o))
	fl := cmd.PersistentFlags()
	fl.StringVar(&o.listen, "listen", "127.0.0.1:8420", "address to listen on")
	fl.StringVar(&o.database, "database", "", "sqlite:PATH or postgres://... (default: sqlite in --data-dir)")
	fl.StringVar(&o.dataDir, "data-dir", "", "directory of the hub's own files (default $XDG_DATA_HOME/berth/.hub)")
	return cmd
}

func newServerAuditCommand(g *Globals, o *serverOpts) *cobra.Command {
	audit := &cobra.Command{Use: "audit", Short: "Work with the hub's audit log"}
	audit.AddCommand(&cobra.Command{
		Use:   "verify [--database URL]",
		Short: "Check that no row of the audit log was changed, removed or inserted",
		Long: `verify walks the hash chain of the audit log: every row carries the hash of the
row before it, so a row edited, deleted or inserted outside the hub breaks the
chain at that row. Exit 0 when the chain holds, 3 when it is broken.`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			d, _, err := g.openHubDB(ctx, *o)
			if err != nil {
				return err
			}
			defer d.Close()
			n, err := d.VerifyAudit(ctx)
			if err != nil {
				return fmt.Errorf("audit log: %d entries verified before the break: %w", n, err)
			}
			if g.json() {
				return g.printJSON(map[string]any{"ok": true, "entries": n})
			}
			fmt.Fprintf(g.Stdout, "audit log intact: %d entries\n", n)
			return nil
		},
	})
	return audit
}

func newServerMigrateCommand(g *Globals, o *serverOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate [--database URL]",
		Short: "Apply the database migrations this berth has, then exit",
		Long: `migrate brings the hub's database to this berth's schema and exits, for
deployments that migrate in a separate step before rolling out replicas
(berth server also migrates at start). A database migrated by a newer berth is
refused (exit 3).`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			d, _, err := g.openHubDB(ctx, *o)
			if err != nil {
				return err
			}
			defer d.Close()
			n, err := d.Migrate(ctx)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]any{"applied": n, "schema_version": db.LatestVersion()})
			}
			fmt.Fprintf(g.Stdout, "applied %d migration(s); the schema is at version %d\n", n, db.LatestVersion())
			return nil
		},
	}
}

// openHubDB opens the hub's database as the flags say and returns it with
// the data directory.
func (g *Globals) openHubDB(ctx context.Context, o serverOpts) (*db.DB, string, error) {
	dir := o.dataDir
	if dir == "" {
		// Inside the local store's directory, under a name no project can
		// have, so the two never collide.
		dir = filepath.Join(config.DefaultDataDir(g.Env), ".hub")
	}
	dbURL := o.database
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(dir, "hub.db")
	}
	d, err := db.Open(ctx, dbURL)
	return d, dir, err
}

func (g *Globals) runServer(ctx context.Context, o serverOpts) error {
	d, dir, err := g.openHubDB(ctx, o)
	if err != nil {
		return err
	}
	defer d.Close()
	n, err := d.Migrate(ctx)
	if err != nil {
		return err
	}
	g.log.Info("database ready", "engine", d.Dialect.String(), "migrations_applied", n, "schema_version", db.LatestVersion())

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	// The key that seals stored secrets; replicas sharing a PostgreSQL
	// need the same key file (or, later, a KMS key).
	kek, err := secrets.LoadOrCreateKeyFile(filepath.Join(dir, "secrets.key"))
	if err != nil {
		return err
	}
	s := &hub.Server{DB: d, Log: g.log, Secrets: &secrets.Box{KEKs: []secrets.KEK{kek}}}
	users, err := d.CountUsers(ctx)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return usageErr(fmt.Errorf("--listen %s: %w", o.listen, err))
	}
	if users == 0 {
		if s.SetupCode, err = hub.NewSetupCode(); err != nil {
			return err
		}
		// On the terminal only, never in the log: the code creates an admin.
		fmt.Fprintf(g.Stderr, "berth: first start: create the first user with\n  curl -X POST http://%s/api/v1/setup -d '{\"code\":\"%s\",\"email\":\"you@example.com\"}'\n",
			l.Addr(), s.SetupCode)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	g.info("berth: hub listening on http://%s (database %s)", l.Addr(), d.Dialect)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	g.info("berth: hub stopped")
	return nil
}
