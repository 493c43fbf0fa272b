package cli

import (
	"errors"
	"fmt"
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
			if o.delete {
				ok, err := g.confirm(o.yes, fmt.Sprintf("delete unreferenced data and temporary files older than %s in %d region(s)?", o.grace, len(c.Regions)))
				if err != nil {
					return usageErr(errors.New("nothing deleted: pass --yes to delete without a terminal"))
				}
				if !ok {
					return nil
				}
			}
			res, err := c.GC(cmd.Context(), artifact.GCOptions{Grace: o.grace, Delete: o.delete})
			if res == nil {
				return err
			}
			if g.json() {
				return g.jsonResult(res, err)
			}
			printGC(g, res)
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

func printGC(g *Globals, res *artifact.GCResult) {
	verb := "would free"
	if res.Delete {
		verb = "freed"
	}
	w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
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
			fmt.Fprintf(g.Stdout, "  %s %s %s (%s, %s)\n", printable(r.Region), state, printable(o.Key), humanSize(o.Size), o.Modified.UTC().Format(time.RFC3339))
		}
	}
	if !res.Delete {
		g.info("berth: dry run, nothing deleted; incomplete uploads are aborted only with --delete")
	}
}
