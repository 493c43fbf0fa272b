package cli

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/artifact"
)

type gcOptions struct {
	grace  time.Duration
	delete bool
	yes    bool
}

func newGCCommand(g *Globals) *cobra.Command {
	var f storeFlags
	var o gcOptions
	cmd := &cobra.Command{
		Use:   "gc [--grace DURATION] [--delete] [--yes]",
		Short: "Find and remove what lost or interrupted stages left behind (dry run unless --delete)",
		Long: `gc looks in every region for data objects no manifest points at (left by
stagers that lost a race or failed before committing), temporary files killed
writers left in a local store, both older than the grace period, and with
--delete removes them and aborts incomplete multipart uploads older than a day.
A data object is deleted only after its version's manifest is read again and
does not point at it, so a stage that commits meanwhile keeps its data.

Without --delete nothing changes. --delete asks for confirmation on a
terminal; without one it needs --yes. Deleting needs credentials that may
delete (an operator's, not the artifact writer's).`,
		Example: "  berth gc\n  berth gc --grace 72h --delete --yes --output json",
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return usageErr(fmt.Errorf("gc takes no arguments, got %q", a[0]))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			if o.grace < artifact.MinGCGrace {
				return usageErr(fmt.Errorf("--grace %s is too short: data of a stage in progress could be deleted; use at least %s", o.grace, artifact.MinGCGrace))
			}
			c, err := g.client(cmd.Context(), cmd, &f)
			if err != nil {
				return err
			}
			if o.delete && !o.yes {
				if !g.StdinTerminal {
					return usageErr(errors.New("nothing deleted: pass --yes to delete without a terminal"))
				}
				// Show what would go before asking.
				res, err := c.GC(cmd.Context(), artifact.GCOptions{Grace: o.grace})
				if res == nil {
					return err
				}
				preview := g.Stdout
				if g.json() {
					preview = g.Stderr // stdout holds only the one JSON document
				}
				printGC(g, preview, res)
				if ok, err := g.confirm(false, fmt.Sprintf("delete these, and incomplete uploads older than a day, in %d region(s)?", len(c.Regions))); err != nil || !ok {
					return err
				}
			}
			res, err := c.GC(cmd.Context(), artifact.GCOptions{Grace: o.grace, Delete: o.delete})
			if res == nil {
				return err
			}
			if g.json() {
				return g.jsonResult(res, err)
			}
			printGC(g, g.Stdout, res)
			if !o.delete {
				g.info("berth: dry run, nothing deleted; incomplete uploads are aborted only with --delete")
			}
			return err
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.DurationVar(&o.grace, "grace", artifact.DefaultGCGrace, "leave data objects and temporary files younger than this (stages in progress); at least 1h")
	fl.BoolVar(&o.delete, "delete", false, "remove what gc finds (default: only report)")
	fl.BoolVar(&o.yes, "yes", false, "delete without asking")
	return explainErrors(g, cmd)
}

func printGC(g *Globals, out io.Writer, res *artifact.GCResult) {
	verb := "would free"
	if res.Delete {
		verb = "freed"
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, r := range res.Regions {
		freed := r.OrphanBytes + r.TempBytes
		if res.Delete {
			freed = r.FreedBytes
		}
		line := fmt.Sprintf("%d orphaned data object(s) (%s), %d temporary file(s) (%s); %s %s",
			len(r.Orphans), humanSize(r.OrphanBytes), len(r.TempFiles), humanSize(r.TempBytes), verb, humanSize(freed))
		if res.Delete {
			line += fmt.Sprintf("; %d incomplete upload(s) aborted", r.UploadsAborted)
		}
		if len(r.Kept) > 0 {
			line += fmt.Sprintf("; %d kept (committed during the run)", len(r.Kept))
		}
		if r.Err() != nil {
			line += "; " + g.brief(r.Err())
		}
		fmt.Fprintf(w, "%s\t%s\n", printable(r.Region), printable(line))
	}
	w.Flush()
	for _, r := range res.Regions {
		for _, o := range append(r.Orphans, r.TempFiles...) {
			state := "found"
			if o.Removed {
				state = "removed"
			}
			fmt.Fprintf(out, "  %s %s %s (%s, %s)\n", printable(r.Region), state, printable(o.Key), humanSize(o.Size), o.Modified.UTC().Format(time.RFC3339))
		}
	}
}
