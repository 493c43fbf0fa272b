package deploy

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// FormatPlan writes p as a table of changes, the details of each modified
// resource, and a closing list of what will be replaced or deleted: the lines
// to read before saying yes.
func FormatPlan(w io.Writer, p *Plan) error {
	if p.NoChanges {
		_, err := fmt.Fprintf(w, "%s: no changes\n", where(p.Stack, p.Region))
		return err
	}
	verb := "update"
	if p.Type == "CREATE" {
		verb = "create"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s, %s\n", where(p.Stack, p.Region), verb, plural(len(p.Changes), "change"))
	if len(p.Changes) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTION\tRESOURCE\tTYPE\tPHYSICAL ID\tREPLACEMENT")
		for _, c := range p.Changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Action, c.LogicalID, c.Type, orDash(c.PhysicalID), orDash(c.Replacement))
		}
		tw.Flush()
	}
	for _, c := range p.Changes {
		if len(c.Details) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s (%s", c.LogicalID, c.Action)
		if c.Replacement != "" {
			fmt.Fprintf(&b, ", replacement %s", c.Replacement)
		}
		b.WriteString("):\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, dt := range c.Details {
			name := dt.Attribute
			if dt.Name != "" {
				name += "." + dt.Name
			}
			cause := dt.Source
			if dt.CausingEntity != "" {
				cause += " " + dt.CausingEntity
			}
			line := fmt.Sprintf("  %s\trecreation %s\t%s", name, orDash(dt.RequiresRecreation), orDash(cause))
			if dt.Before != "" || dt.After != "" {
				line += fmt.Sprintf("\t%s -> %s", clip(dt.Before), clip(dt.After))
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
	}
	var replaced, deleted, kept []string
	for _, c := range p.Changes {
		switch {
		case c.Action == "Modify" && c.Replacement == "True":
			replaced = append(replaced, c.LogicalID)
		case c.Action == "Modify" && c.Replacement == "Conditional":
			replaced = append(replaced, c.LogicalID+" (maybe)")
		case c.Action == "Remove" && (c.PolicyAction == "Retain" || c.PolicyAction == "Snapshot"):
			kept = append(kept, c.LogicalID)
		case c.Action == "Remove":
			deleted = append(deleted, c.LogicalID)
		}
	}
	if len(replaced)+len(deleted)+len(kept) > 0 {
		b.WriteString("\n")
	}
	if len(replaced) > 0 {
		fmt.Fprintf(&b, "Replaced (deleted and created again, with a new physical id): %s\n", strings.Join(replaced, ", "))
	}
	if len(deleted) > 0 {
		fmt.Fprintf(&b, "Deleted: %s\n", strings.Join(deleted, ", "))
	}
	if len(kept) > 0 {
		fmt.Fprintf(&b, "Removed from the stack but kept by their DeletionPolicy: %s\n", strings.Join(kept, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatDrift writes r as a table of resources followed by the property
// differences of each drifted one.
func FormatDrift(w io.Writer, r *DriftReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s, %d of %s drifted\n", where(r.Stack, r.Region), orDash(r.Status), r.Drifted, plural(len(r.Resources), "resource"))
	if r.DetectionStatus == "DETECTION_FAILED" {
		fmt.Fprintf(&b, "Detection did not check every resource: %s\n", orDash(r.Reason))
	}
	if len(r.Resources) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RESOURCE\tTYPE\tPHYSICAL ID\tDRIFT")
		for _, rd := range r.Resources {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", rd.LogicalID, rd.Type, orDash(rd.PhysicalID), rd.Status)
		}
		tw.Flush()
	}
	for _, rd := range r.Resources {
		switch {
		case rd.Status == "DELETED":
			fmt.Fprintf(&b, "\n%s (%s) DELETED: deleted outside CloudFormation, which still expects it\n", rd.LogicalID, rd.Type)
		case len(rd.Differences) > 0:
			fmt.Fprintf(&b, "\n%s (%s) %s:\n", rd.LogicalID, rd.Type, rd.Status)
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  PROPERTY\tDIFFERENCE\tEXPECTED\tACTUAL")
			for _, pd := range rd.Differences {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", pd.Path, pd.Type, orDash(clip(pd.Expected)), orDash(clip(pd.Actual)))
			}
			tw.Flush()
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip keeps table rows readable when a value is a whole JSON document; the
// JSON output has the full values.
func clip(s string) string {
	const max = 60
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) <= max {
		return s
	}
	return string([]rune(s)[:max-3]) + "..."
}
