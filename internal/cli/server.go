package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/hub/secrets"
	"github.com/berth-dev/berth/internal/awsx"
)

type serverOpts struct {
	kmsKey    string // --kms-key: the KMS key that seals secrets
	listen    string
	database  string
	dataDir   string
	publicURL string
	tlsCert   string
	tlsKey    string

	oidcIssuer, oidcClientID, oidcSecretFile string

	awsPrincipal, templateURL string
	trustedProxies            []string // --trusted-proxy CIDR|IP
	access                    accessServerOpts
}

func newServerCommand(g *Globals) *cobra.Command {
	var o serverOpts
	cmd := &cobra.Command{
		Use:   "server [--listen ADDR] [--database sqlite:PATH|postgres://...] [--data-dir DIR] [--public-url URL] [--tls-cert FILE --tls-key FILE]",
		Short: "Run the hub: the API for projects, tokens and short-lived credentials",
		Long: `server runs berth's hub, the control plane that teams share: users and API
tokens, S3-compatible data planes, projects with members and roles, short-lived
credentials narrowed to one project (STS AssumeRole with a session policy), and
a hash-chained audit log.

Secrets the hub stores (data plane identities) are sealed with a key in
DIR/secrets.key (mode 0600, created on first start); replicas need the same
file. With --kms-key ARN an AWS KMS key wraps them instead (the key file, if
any, still opens older secrets; "berth server rotate-key --kms-key ARN" moves
them all to KMS). The database is SQLite in the data directory by default, so the hub runs with no
flags; --database postgres://USER@HOST/DB lets several replicas share one
PostgreSQL. Migrations are applied at start; a database migrated by a newer
berth is refused.

On first start (no users yet) server prints a one-time setup link; open it to
create the first user and sign in (or POST /api/v1/setup with its code for an
API token).

AWS data planes trust the principal named by --aws-principal, whose credentials
the hub takes from the usual AWS chain (--profile, AWS_* variables, an instance
or task role). Every replica runs a background worker for data plane jobs
(check, plan, deploy after approval, status, drift); replicas sharing one
PostgreSQL run each job once.

GET /healthz, /readyz and /metrics (Prometheus) answer without authentication;
everything under /api/v1 needs "Authorization: Bearer berth_..." or a browser
session (the OpenAPI document at
/api/v1/openapi.json is public). Ctrl-C or SIGTERM stops it gracefully.

Sign-in: --oidc-issuer and --oidc-client-id let people sign in with an OpenID
Connect provider (client secret in BERTH_OIDC_CLIENT_SECRET or
--oidc-client-secret-file; redirect URL PUBLIC_URL/auth/oidc/callback). A
first sign-in is linked to the user an admin added with the same e-mail, when
the provider has verified it; nobody else gets in.

TLS: --tls-cert and --tls-key serve HTTPS directly. Behind a reverse proxy that
ends TLS, pass --public-url https://... so cookies are Secure and links right,
and --trusted-proxy with the proxy's addresses so rate limits and the audit log
see the client's address from X-Forwarded-For (the right-most entry that is not
a trusted proxy); without it that header is ignored, since any client can
send it.`,
		Example: `  berth server
  berth server --listen 0.0.0.0:8420 --database postgres://berth@db.internal/berth
  BERTH_OIDC_CLIENT_SECRET=... berth server --public-url https://berth.example.com \
    --oidc-issuer https://example.okta.com --oidc-client-id 0oa1b2c3`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.runServer(cmd.Context(), o)
		},
	}
	cmd.AddCommand(newServerAuditCommand(g, &o), newServerMigrateCommand(g, &o), newServerRotateKeyCommand(g, &o))
	fl := cmd.PersistentFlags()
	fl.StringVar(&o.listen, "listen", "127.0.0.1:8420", "address to listen on")
	fl.StringVar(&o.database, "database", "", "sqlite:PATH or postgres://... (default: sqlite in --data-dir)")
	fl.StringVar(&o.dataDir, "data-dir", "", "directory of the hub's own files (default $XDG_DATA_HOME/berth/.hub)")
	fl.StringVar(&o.kmsKey, "kms-key", os.Getenv("BERTH_KMS_KEY"), "seal stored secrets with this AWS KMS key (ARN; env BERTH_KMS_KEY) instead of DIR/secrets.key; rotate-key moves existing secrets to it")
	f := cmd.Flags()
	f.StringVar(&o.publicURL, "public-url", "", "the address people reach the hub at, such as https://berth.example.com (links, OIDC redirect; https makes cookies Secure)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	f.StringVar(&o.tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	f.StringVar(&o.oidcIssuer, "oidc-issuer", "", "sign people in with this OpenID Connect provider, such as https://example.okta.com")
	f.StringVar(&o.oidcClientID, "oidc-client-id", "", "the hub's client ID at the OIDC provider")
	f.StringVar(&o.oidcSecretFile, "oidc-client-secret-file", "", "file holding the OIDC client secret (default: env BERTH_OIDC_CLIENT_SECRET)")
	f.StringVar(&o.awsPrincipal, "aws-principal", "", "ARN of the IAM role or user the hub's AWS credentials belong to, which AWS data planes trust")
	f.StringVar(&o.templateURL, "template-url", "", "https URL of this berth's bootstrap template on S3, for CloudFormation quick-create links")
	f.StringSliceVar(&o.trustedProxies, "trusted-proxy", nil, "a reverse proxy's address or CIDR (repeatable, or comma-separated) whose X-Forwarded-For names the client")
	addAccessServerFlags(f, &o.access)
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

// loadKeys returns the box of the hub's key files in dir: secrets.key
// seals, and retired keys (secrets.key.*.retired) still open what a
// rotation has not rewrapped. Replicas sharing a PostgreSQL need the same
// files. With kmsKey, the KMS key seals and the key files, if any, only
// open what was sealed before the hub moved to KMS.
func (g *Globals) loadKeys(ctx context.Context, dir string, create bool, kmsKey string) (*secrets.Box, error) {
	if _, err := os.Stat(filepath.Join(dir, "secrets.key")); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, "secrets.key.next")); err == nil {
			return nil, fmt.Errorf("a key rotation stopped half-way in %s: run berth server rotate-key again: %w", dir, errkind.Conflict)
		}
	}
	box := &secrets.Box{}
	if kmsKey != "" {
		cfg, err := awsx.Load(ctx, awsx.Options{Profile: g.Profile})
		if err != nil {
			return nil, err
		}
		if a, err := arn.Parse(kmsKey); err == nil {
			cfg.Region = a.Region // the key's region, whatever the default
		}
		k, err := secrets.NewKMSKEK(kms.NewFromConfig(cfg), kmsKey)
		if err != nil {
			return nil, err
		}
		box.KEKs = append(box.KEKs, k)
		create = false
	}
	load := secrets.LoadKeyFile
	if create {
		load = secrets.LoadOrCreateKeyFile
	}
	primary, err := load(filepath.Join(dir, "secrets.key"))
	switch {
	case err == nil:
		box.KEKs = append(box.KEKs, primary)
	case kmsKey == "" || !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	retired, _ := filepath.Glob(filepath.Join(dir, "secrets.key.*.retired"))
	if _, err := os.Stat(filepath.Join(dir, "secrets.key.next")); err == nil {
		retired = append(retired, filepath.Join(dir, "secrets.key.next")) // a rotation in progress
	}
	for _, p := range retired {
		k, err := secrets.LoadKeyFile(p)
		if err != nil {
			return nil, err
		}
		box.KEKs = append(box.KEKs, k)
	}
	return box, nil
}

func newServerRotateKeyCommand(g *Globals, o *serverOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key [--data-dir DIR] [--database URL]",
		Short: "Seal every stored secret under a new key",
		Long: `rotate-key creates a new key in DIR/secrets.key, rewraps the data key of every
stored secret with it, and keeps the old key as DIR/secrets.key.ID.retired so
that a hub still running on it, or a rotation stopped half-way, loses nothing.
Copy the new files to every replica, restart them, then delete the retired key
once no backup you may restore needs it. Running it again resumes a stopped
rotation.`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			d, dir, err := g.openHubDB(ctx, *o)
			if err != nil {
				return err
			}
			defer d.Close()
			current, next := filepath.Join(dir, "secrets.key"), filepath.Join(dir, "secrets.key.next")
			if _, err := os.Stat(current); errors.Is(err, fs.ErrNotExist) {
				if _, err := os.Stat(next); err == nil {
					// Stopped between retiring the old key and installing the
					// new one: everything is sealed under the new key.
					if err := os.Rename(next, current); err != nil {
						return fmt.Errorf("install the new key: %w", err)
					}
					fmt.Fprintln(g.Stdout, "finished a rotation that stopped half-way")
					return nil
				}
			}
			if o.kmsKey != "" {
				box, err := g.loadKeys(ctx, dir, false, o.kmsKey)
				if err != nil {
					return err
				}
				n, err := hub.Reseal(ctx, d, box)
				if err != nil {
					return fmt.Errorf("rotate key (run it again to resume): %w", err)
				}
				// The key file stays as a retired key: a backup sealed under
				// it still opens.
				if fk, err := secrets.LoadKeyFile(current); err == nil {
					if err := os.Rename(current, filepath.Join(dir, "secrets.key."+fk.ID()+".retired")); err != nil {
						return fmt.Errorf("retire the key file: %w", err)
					}
				}
				fmt.Fprintf(g.Stdout, "rewrapped %d secret(s) under KMS key %s\n", n, o.kmsKey)
				return nil
			}
			old, err := g.loadKeys(ctx, dir, false, "")
			if err != nil {
				return err
			}
			nk, err := secrets.LoadOrCreateKeyFile(next) // a stopped rotation's key is reused
			if err != nil {
				return err
			}
			box := &secrets.Box{KEKs: append([]secrets.KEK{nk}, old.KEKs...)}
			n, err := hub.Reseal(ctx, d, box)
			if err != nil {
				return fmt.Errorf("rotate key (run it again to resume): %w", err)
			}
			if err := os.Rename(current, filepath.Join(dir, "secrets.key."+old.KEKs[0].ID()+".retired")); err != nil {
				return fmt.Errorf("retire the old key: %w", err)
			}
			if err := os.Rename(next, current); err != nil {
				return fmt.Errorf("install the new key: %w", err)
			}
			fmt.Fprintf(g.Stdout, "rewrapped %d secret(s) under key %s; the old key %s is retired\n", n, nk.ID(), old.KEKs[0].ID())
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
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return usageErr(errors.New("--tls-cert and --tls-key go together: give both, or neither and put a TLS proxy in front"))
	}
	proxies, err := parseTrustedProxies(o.trustedProxies)
	if err != nil {
		return err
	}
	if o.publicURL != "" {
		u, err := url.Parse(o.publicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return usageErr(fmt.Errorf("--public-url %q: want the hub's address, such as https://berth.example.com", truncateValue(o.publicURL)))
		}
	}
	oidcConfig, err := g.oidcConfig(o)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if o.tlsCert != "" {
		// Loaded before anything else, so a wrong file stops the start.
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return usageErr(fmt.Errorf("--tls-cert/--tls-key: %w", err))
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
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
	box, err := g.loadKeys(ctx, dir, true, o.kmsKey)
	if err != nil {
		return err
	}
	if o.templateURL != "" {
		if err := hub.CheckTemplateURL(o.templateURL); err != nil {
			return err
		}
	}
	s := &hub.Server{DB: d, Log: g.log, Secrets: box, PublicURL: o.publicURL, OIDC: oidcConfig, AWSPrincipal: o.awsPrincipal, TemplateURL: o.templateURL, TrustedProxies: proxies}
	if s.Access, err = g.accessEngine(ctx, o.access); err != nil {
		return err
	}
	if o.awsPrincipal != "" {
		if err := cfn.CheckHubPrincipal(o.awsPrincipal); err != nil {
			return usageErr(fmt.Errorf("--aws-principal: %w", err))
		}
		if s.AWS, err = awsx.Load(ctx, awsx.Options{Profile: g.Profile}); err != nil {
			return err
		}
		if warning, err := hub.CheckAWSPrincipal(ctx, s.AWS, o.awsPrincipal); err != nil || warning != "" {
			g.log.Warn("AWS principal", "warning", warning, "err", err)
		}
	}
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); (&hub.Worker{Server: s, ID: hub.NewWorkerID()}).Run(wctx) }()
	defer func() { stopWorker(); <-workerDone }()
	users, err := d.CountUsers(ctx)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return usageErr(fmt.Errorf("--listen %s: %w", o.listen, err))
	}
	scheme := "http"
	if tlsConfig != nil {
		l, scheme = tls.NewListener(l, tlsConfig), "https"
	}
	if users == 0 {
		if s.SetupCode, err = hub.NewSetupCode(); err != nil {
			return err
		}
		// On the terminal only, never in the log: the code creates an admin.
		base := strings.TrimSuffix(o.publicURL, "/")
		if base == "" {
			base = scheme + "://" + l.Addr().String()
		}
		fmt.Fprintf(g.Stderr, "berth: first start: create the first user at\n  %s/setup?code=%s\nor with\n  curl -X POST %s/api/v1/setup -d '{\"code\":\"%s\",\"email\":\"you@example.com\"}'\n",
			base, s.SetupCode, base, s.SetupCode)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)} // TLS handshake failures and the like
	g.info("berth: hub listening on %s://%s (database %s)", scheme, l.Addr(), d.Dialect)
	if oidcConfig != nil {
		g.info("berth: sign-in with %s; register the redirect URL %s/auth/oidc/callback there", oidcConfig.Issuer, orDefault(o.publicURL, scheme+"://"+l.Addr().String()))
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	accessCtx, stopAccess := context.WithCancel(ctx)
	defer startAccessWorker(accessCtx, s)()
	defer stopAccess()
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

// oidcConfig reads the OIDC flags; the client secret comes from a file or
// the environment, never from a flag that the process list shows.
func (g *Globals) oidcConfig(o serverOpts) (*hub.OIDCConfig, error) {
	if o.oidcIssuer == "" && o.oidcClientID == "" {
		if o.oidcSecretFile != "" {
			return nil, usageErr(errors.New("--oidc-client-secret-file needs --oidc-issuer and --oidc-client-id"))
		}
		return nil, nil
	}
	if o.oidcIssuer == "" || o.oidcClientID == "" {
		return nil, usageErr(errors.New("--oidc-issuer and --oidc-client-id go together"))
	}
	u, err := url.Parse(o.oidcIssuer)
	if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil, usageErr(fmt.Errorf("--oidc-issuer %q: want the provider's https address, such as https://example.okta.com", truncateValue(o.oidcIssuer)))
	}
	secret := g.Env("BERTH_OIDC_CLIENT_SECRET")
	if o.oidcSecretFile != "" {
		data, err := os.ReadFile(o.oidcSecretFile)
		if err != nil {
			return nil, usageErr(fmt.Errorf("--oidc-client-secret-file: %w", err))
		}
		secret = strings.TrimSpace(string(data))
	}
	return &hub.OIDCConfig{Issuer: o.oidcIssuer, ClientID: o.oidcClientID, ClientSecret: secret}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// parseTrustedProxies reads --trusted-proxy values: CIDRs, or addresses
// standing for themselves alone.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range list {
		v = strings.TrimSpace(v)
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, usageErr(fmt.Errorf("--trusted-proxy %q: want an address or CIDR, such as 10.0.0.5 or 10.0.0.0/16", truncateValue(v)))
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
