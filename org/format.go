package org

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Describe says what a step does, in one line without its action and
// account.
func (s Step) Describe() string {
	switch s.Action {
	case ActionCreateOU:
		return s.OU
	case ActionCreateAccount:
		return s.Email
	case ActionMoveAccount:
		return s.From + " -> " + s.OU
	case ActionTagAccount:
		var parts []string
		keys := make([]string, 0, len(s.Tags))
		for k := range s.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("+%s=%s", k, s.Tags[k]))
		}
		for _, k := range s.Untag {
			parts = append(parts, "-"+k)
		}
		return strings.Join(parts, " ")
	case ActionCreateBudget, ActionUpdateBudget:
		d := fmt.Sprintf("%d USD a month", s.Amount)
		if s.Previous != "" {
			d = fmt.Sprintf("%s -> %s", s.Previous, d)
		}
		if s.Notify != "" {
			d += ", alerts (actual and forecast above 100%) to " + s.Notify
		}
		if s.ApprovedBy != "" {
			d += fmt.Sprintf(", approved by %s (%s)", s.ApprovedBy, s.ApprovalRef)
		}
		return d
	case ActionAssign:
		return fmt.Sprintf("group %s gets %s", s.Group, s.PermissionSet)
	case ActionCloseAccount:
		return "close; it can be reopened for 90 days, then never"
	}
	return ""
}

func (s Step) target() string {
	if s.Action == ActionCreateOU {
		return "-"
	}
	if s.AccountID != "" {
		return s.Account + " (" + s.AccountID + ")"
	}
	return s.Account
}

// FormatPlan writes p for a terminal: a summary line, then one line a step.
func FormatPlan(w io.Writer, p *Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", p.Catalog, p.Summary())
	if len(p.Steps) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tACTION\tACCOUNT\tCHANGE")
		for i, s := range p.Steps {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", i+1, s.Action, s.target(), s.Describe())
		}
		tw.Flush()
	}
	if len(p.Notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range p.Notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatMarkdown writes p as a pull-request comment.
func FormatMarkdown(w io.Writer, p *Plan) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### berth accounts plan: %s\n\n%s.\n", mdEscape(p.Catalog), p.Summary())
	if len(p.Steps) > 0 {
		b.WriteString("\n| # | Action | Account | Change |\n|---|---|---|---|\n")
		for i, s := range p.Steps {
			fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", i+1, s.Action, mdEscape(s.target()), mdEscape(s.Describe()))
		}
	}
	var closing []string
	for _, s := range p.Steps {
		if s.Action == ActionCloseAccount {
			closing = append(closing, mdEscape(s.Account))
		}
	}
	if len(closing) > 0 {
		fmt.Fprintf(&b, "\n> [!WARNING]\n> Closes %s. A closed account can be reopened for 90 days, then never.\n", strings.Join(closing, ", "))
	}
	if len(p.Notes) > 0 {
		b.WriteString("\n**Notes**\n\n")
		for _, n := range p.Notes {
			fmt.Fprintf(&b, "- %s\n", mdEscape(n))
		}
	}
	fmt.Fprintf(&b, "\n<sub>AWS state fingerprint `%s`</sub>\n", p.Fingerprint[:min(12, len(p.Fingerprint))])
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape escapes what would break a Markdown table cell or start markup; the
// catalog's values come from pull requests.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;", "`", "'", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`)
	return r.Replace(s)
}
