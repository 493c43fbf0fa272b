package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cache"
	"github.com/berth-dev/berth/config"
)

func newCacheCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Save and restore CI caches (tar+zstd) in every region",
		Long: `cache keeps build caches the way GitHub's actions/cache does: save packs
paths under an immutable key in every region (a second save of a key is a
no-op); restore unpacks the exact key, or else the newest entry whose key
starts with the first --restore-key prefix that matches, from the first
region that answers, after checking its SHA-256. restore exits 1 on a miss.

Paths are stored relative to the working directory and restored there (or
under --dir), with permission bits, times and symlinks; restore refuses
entries that would reach outside that directory. A region's cache store is
its "cache:" store URL, else its artifact store under _cache/; with no
configuration, the local store.`,
		Example: `  export GOMODCACHE=$PWD/.gomod GOCACHE=$PWD/.gocache
  berth cache restore go-$(sha256sum go.sum | cut -c1-16) --restore-key go- || echo "cold cache"
  berth cache save go-$(sha256sum go.sum | cut -c1-16) .gomod .gocache`,
	}
	cmd.AddCommand(newCacheSaveCommand(g), newCacheRestoreCommand(g))
	return cmd
}

func newCacheSaveCommand(g *Globals) *cobra.Command {
	var f storeFlags
	var region string
	cmd := &cobra.Command{
		Use:   "save KEY PATH...",
		Short: "Pack paths under KEY in every region (a no-op where KEY exists)",
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) < 2 {
				return usageErr(fmt.Errorf("save takes KEY PATH... (at least 2 arguments), got %d", len(a)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.cacheClient(cmd.Context(), cmd, &f, region)
			if err != nil {
				return err
			}
			dir, err := os.Getwd()
			if err != nil {
				return fmt.Errorf("find working directory: %w", err)
			}
			results, err := c.Save(cmd.Context(), a[0], dir, a[1:])
			if results == nil && err != nil {
				return err
			}
			if g.json() {
				out := []map[string]any{}
				for _, r := range results {
					m := map[string]any{"region": r.Region, "saved": r.Saved}
					if r.Err != nil {
						m["error"] = r.Err.Error()
					}
					out = append(out, m)
				}
				if jerr := g.printJSON(map[string]any{"key": a[0], "regions": out}); jerr != nil {
					return jerr
				}
			} else if !g.Quiet {
				for _, r := range results {
					switch {
					case r.Err != nil:
						fmt.Fprintf(g.Stdout, "%s: failed\n", r.Region)
					case r.Saved:
						fmt.Fprintf(g.Stdout, "saved %s in %s\n", a[0], r.Region)
					default:
						fmt.Fprintf(g.Stdout, "%s already saved in %s; kept as it is\n", a[0], r.Region)
					}
				}
			}
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().MarkHidden("pointers") // the cache has no latest pointers
	cmd.Flags().StringVar(&region, "region", "", "save in this region only")
	return explainErrors(g, cmd)
}

func newCacheRestoreCommand(g *Globals) *cobra.Command {
	var f storeFlags
	var prefixes []string
	var dir string
	cmd := &cobra.Command{
		Use:   "restore KEY [--restore-key PREFIX]... [--dir D]",
		Short: "Restore KEY, or the newest entry matching a prefix; exit 1 on a miss",
		Args:  args(1, "KEY"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.cacheClient(cmd.Context(), cmd, &f, "")
			if err != nil {
				return err
			}
			if dir == "" {
				if dir, err = os.Getwd(); err != nil {
					return fmt.Errorf("find working directory: %w", err)
				}
			}
			r, err := c.Restore(cmd.Context(), a[0], prefixes, dir)
			if errors.Is(err, cache.ErrMiss) {
				if g.json() {
					if jerr := g.printJSON(map[string]any{"key": a[0], "hit": false}); jerr != nil {
						return jerr
					}
				} else if !g.Quiet {
					fmt.Fprintf(g.Stdout, "cache miss for %s\n", a[0])
				}
				return errNo
			}
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]any{"key": a[0], "hit": true, "restored_key": r.Key, "exact": r.Exact, "region": r.Region, "size": r.Size})
			}
			if !g.Quiet {
				fmt.Fprintf(g.Stdout, "restored %s from %s (%d bytes)\n", r.Key, r.Region, r.Size)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().MarkHidden("pointers") // the cache has no latest pointers
	cmd.Flags().StringArrayVar(&prefixes, "restore-key", nil, "key prefix to fall back on, in order; repeatable")
	cmd.Flags().StringVar(&dir, "dir", "", "restore under this directory (default: the working directory)")
	return explainErrors(g, cmd)
}

// cacheClient opens the cache stores of the configured regions (the
// embedded default without a configuration); region narrows them to one.
func (g *Globals) cacheClient(ctx context.Context, cmd *cobra.Command, f *storeFlags, region string) (*cache.Client, error) {
	// No hub here: the hub hands out artifact credentials, not cache
	// stores, so without configured regions the local default is used.
	cfg, err := g.loadConfig(cmd, f, nil)
	if err != nil {
		return nil, err
	}
	if region != "" {
		var only []config.Region
		for _, r := range cfg.Regions {
			if r.Name == region {
				only = append(only, r)
			}
		}
		if only == nil {
			return nil, usageErr(fmt.Errorf("--region %q is not configured", region))
		}
		cfg.Regions = only
	}
	opts, err := g.s3Options(f)
	if err != nil {
		return nil, err
	}
	g.warnPlainHTTP(cfg.Regions)
	stores, err := cfg.OpenCache(ctx, config.OpenOptions{Profile: g.Profile, S3: opts})
	if err != nil {
		return nil, err
	}
	c := &cache.Client{Logger: g.log}
	for _, s := range stores {
		c.Regions = append(c.Regions, cache.Region{Name: s.Name, Store: s.Store})
	}
	return c, nil
}
