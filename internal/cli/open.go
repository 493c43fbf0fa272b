package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/hub/hubclient"
	"github.com/berth-dev/berth/store/s3store"
)

// multiRegionConcurrency is the default parts in flight per region when
// there are several regions.
const multiRegionConcurrency = 2

// storeFlags are the settings artifact commands accept on top of the file.
type storeFlags struct {
	stores      []string
	prefix      string
	pointers    string
	partSize    string
	concurrency int
	trustedKeys []string // --trusted-key, on the commands that check signatures
}

func (f *storeFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.stores, "store", nil, "region store as NAME=URL, repeatable; replaces the configured regions (env BERTH_STORES, comma-separated)")
	fl.StringVar(&f.prefix, "prefix", "", "key prefix in every store (env BERTH_PREFIX)")
	fl.StringVar(&f.pointers, "pointers", "", "where latest pointers live: store or ssm:/PARAM/PREFIX (env BERTH_POINTERS)")
	fl.StringVar(&f.partSize, "part-size", "", "S3 multipart part and download range size, such as 16MiB (env BERTH_PART_SIZE; default 8MiB)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "S3 parts in flight per region (env BERTH_CONCURRENCY; default 4 with one region, 2 per region with several)")
}

// client builds the artifact client for the resolved configuration.
func (g *Globals) client(ctx context.Context, cmd *cobra.Command, f *storeFlags) (*artifact.Client, error) {
	c, _, err := g.clientAndHub(ctx, cmd, f)
	return c, err
}

// clientAndHub is client that also returns the hub the credentials come
// from, nil when the regions are configured, so a command that changes a
// version can tell the hub.
func (g *Globals) clientAndHub(ctx context.Context, cmd *cobra.Command, f *storeFlags) (*artifact.Client, *hubclient.Client, error) {
	hub, err := g.defaultHub()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := g.loadConfig(cmd, f, hub)
	if err != nil {
		return nil, nil, err
	}
	if len(cfg.Regions) == 0 {
		return g.hubClient(ctx, cmd, f, hub)
	}
	opts, err := g.s3Options(f)
	if err != nil {
		return nil, nil, err
	}
	if opts.Concurrency == 0 && len(cfg.Regions) > 1 {
		// Every region holds its own part buffers while a stage fans out;
		// fewer parts in flight per region keep the total flat (3 regions:
		// 3 x 3 x 8 MiB) while the regions together still fill the links.
		opts.Concurrency = multiRegionConcurrency
	}
	g.limitMemory(opts, len(cfg.Regions))
	c := &artifact.Client{Identity: g.identity(), Logger: g.log,
		Journal: artifact.FileJournal{Path: filepath.Join(config.DefaultStateDir(g.Env), "uploads.json")}}
	if c.TrustedKeys, err = trustedKeys(f.trustedKeys, cfg.TrustedKeys); err != nil {
		return nil, nil, err
	}
	g.warnPlainHTTP(cfg.Regions)
	if c.Regions, err = cfg.Open(ctx, config.OpenOptions{Profile: g.Profile, S3: opts}); err != nil {
		return nil, nil, err
	}
	return c, nil, nil
}

// tellHub asks the hub (nil: none) to index a version this command
// changed. The bytes are in the stores either way, so a failure is a
// warning: the hub's listing finds the version later.
func (g *Globals) tellHub(ctx context.Context, hub *hubclient.Client, project, version string) {
	if hub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := hub.RefreshVersion(ctx, project, version); err != nil {
		g.info("berth: warning: could not tell hub %s about %s %s (its versions page shows it after its next listing): %s",
			hub.URL, project, printable(version), printable(g.brief(err)))
	}
}

// loadConfig applies the precedence flags > env > file > hub > embedded default,
// and says on stderr which file it read.
//
// With no regions configured anywhere and a hub logged in to (berth login),
// the regions come from the hub: hub is then the login, else nil.
func (g *Globals) loadConfig(cmd *cobra.Command, f *storeFlags, hub *hubLogin) (*config.Config, error) {
	base, err := g.readConfigFile()
	if err != nil {
		return nil, err
	}
	o := config.Overrides{Stores: f.stores, Pointers: f.pointers}
	if cmd.Flags().Changed("prefix") {
		o.Prefix = &f.prefix
	}
	cfg, err := config.Resolve(base, g.Env, o)
	if err != nil {
		return nil, err
	}
	if len(cfg.Regions) == 0 && hub != nil {
		return cfg, nil // the hub names the regions
	}
	if len(cfg.Regions) == 0 {
		dir := config.DefaultDataDir(g.Env)
		if g.Verbose || g.firstNotice("no-config") {
			g.info("berth: no configuration found; using the local store %s (run \"berth init\" to configure regions; said once, -v repeats it)", dir)
		}
		cfg.Regions = []config.Region{{Name: "local", Store: "file://" + dir}}
	}
	return cfg, nil
}

// readConfigFile reads the file --config or BERTH_CONFIG names, else the
// one config.Find chooses; nil when there is none.
func (g *Globals) readConfigFile() (*config.Config, error) {
	if g.ConfigPath != "" {
		c, err := config.Load(g.ConfigPath)
		if err != nil {
			return nil, err
		}
		g.info("berth: using config %s (%s)", g.ConfigPath, g.configFrom)
		return c, nil
	}
	cwd, _ := os.Getwd() // without it, no ./berth.yaml is considered
	found, err := config.Find(g.Env, cwd)
	if err != nil {
		return nil, err
	}
	if found.Ignored != "" {
		g.info("berth: ignored %s: this directory is not trusted; use it with --config %s or BERTH_CONFIG, or trust the directory with \"trusted_dirs: [%s]\" in %s",
			found.Ignored, found.Ignored, cwd, config.DefaultPath(g.Env))
	}
	switch {
	case found.Local:
		g.info("berth: using config %s (trusted directory)", found.Path)
	case found.Path != "":
		g.info("berth: using config %s", found.Path)
	}
	return found.Config, nil
}

// firstNotice reports whether the notice name was never shown on this
// machine, and records it as shown. Quiet runs show nothing and record
// nothing; a state directory that cannot be written shows it every time.
func (g *Globals) firstNotice(name string) bool {
	if g.Quiet {
		return false
	}
	if g.Env("XDG_STATE_HOME") == "" {
		// Never create a home directory that does not exist (HOME=/no-home
		// in sandboxes and tests): just say it every time.
		if _, err := os.Stat(g.Env("HOME")); err != nil {
			return true
		}
	}
	dir := config.DefaultStateDir(g.Env)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, "notice-"+name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return !errors.Is(err, os.ErrExist)
	}
	f.Close()
	return true
}

func (g *Globals) s3Options(f *storeFlags) (s3store.Options, error) {
	var o s3store.Options
	ps := f.partSize
	if ps == "" {
		ps = g.Env("BERTH_PART_SIZE")
	}
	if ps != "" {
		n, err := parseSize(ps)
		if err != nil {
			return o, usageErr(fmt.Errorf("--part-size %q: %w", ps, err))
		}
		if n < s3store.MinPartSize {
			return o, usageErr(fmt.Errorf("--part-size %q: S3 needs parts of at least 5MiB", ps))
		}
		o.PartSize = n
	}
	o.Concurrency = f.concurrency
	if o.Concurrency == 0 && g.Env("BERTH_CONCURRENCY") != "" {
		n, err := strconv.Atoi(g.Env("BERTH_CONCURRENCY"))
		if err != nil || n < 1 || n > 64 {
			return o, usageErr(fmt.Errorf("BERTH_CONCURRENCY=%q: use a number from 1 to 64", g.Env("BERTH_CONCURRENCY")))
		}
		o.Concurrency = n
	}
	if o.Concurrency < 0 || o.Concurrency > 64 {
		return o, usageErr(fmt.Errorf("--concurrency %d: use a number from 1 to 64", o.Concurrency))
	}
	return o, nil
}

// parseSize reads sizes such as 8MiB, 16MB, 5242880.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (5<<30)/mult {
		return 0, errors.New("use a size such as 8MiB, 64MiB or 16777216")
	}
	return n * mult, nil
}

// identity is recorded as staged_by: BERTH_STAGED_BY, else user@host.
func (g *Globals) identity() string {
	if v := g.Env("BERTH_STAGED_BY"); v != "" {
		return v
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// limitMemory sets a soft memory limit just above what the transfer buffers
// need, so the collector returns garbage promptly instead of letting the
// heap double. GOMEMLIMIT, when set, wins.
func (g *Globals) limitMemory(o s3store.Options, regions int) {
	if g.Env("GOMEMLIMIT") != "" {
		return
	}
	part, conc := o.PartSize, int64(o.Concurrency)
	if part == 0 {
		part = s3store.DefaultPartSize
	}
	if conc == 0 {
		conc = s3store.DefaultConcurrency
	}
	debug.SetMemoryLimit(int64(regions)*(conc+1)*part + 64<<20)
}
