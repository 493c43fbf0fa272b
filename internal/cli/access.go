package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/org"
)

// accessServerOpts are berth server's flags for just-in-time access.
type accessServerOpts struct {
	catalog, instanceARN, storeID, webhook string
}

func addAccessServerFlags(fl *pflag.FlagSet, o *accessServerOpts) {
	fl.StringVar(&o.catalog, "catalog", "", "account catalog (accounts.yaml) for just-in-time access; needs --sso-instance-arn and --identity-store-id")
	fl.StringVar(&o.instanceARN, "sso-instance-arn", "", "IAM Identity Center instance ARN (arn:aws:sso:::instance/ssoins-...) for access grants")
	fl.StringVar(&o.storeID, "identity-store-id", "", "Identity Store id (d-...) whose groups decide eligibility and approvers")
	fl.StringVar(&o.webhook, "access-webhook", "", "Slack-compatible webhook URL that announces access requests to approvers (env BERTH_ACCESS_WEBHOOK)")
}

var (
	instanceARNRe = regexp.MustCompile(`^arn:aws[a-z-]*:sso:::instance/(sso)?ins-[a-zA-Z0-9-.]{16}$`)
	storeIDRe     = regexp.MustCompile(`^d-[0-9a-f]{10}$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// accessEngine builds the hub's access engine from the flags, or nil when
// access is not configured.
func (g *Globals) accessEngine(ctx context.Context, o accessServerOpts) (*access.Engine, error) {
	if o.webhook == "" {
		o.webhook = g.Env("BERTH_ACCESS_WEBHOOK")
	}
	if o.catalog == "" && o.instanceARN == "" && o.storeID == "" {
		if o.webhook != "" {
			return nil, usageErr(errors.New("--access-webhook needs --catalog, --sso-instance-arn and --identity-store-id"))
		}
		return nil, nil
	}
	if o.catalog == "" || o.instanceARN == "" || o.storeID == "" {
		return nil, usageErr(errors.New("just-in-time access needs all of --catalog, --sso-instance-arn and --identity-store-id"))
	}
	if !instanceARNRe.MatchString(o.instanceARN) {
		return nil, usageErr(fmt.Errorf("--sso-instance-arn %q: want arn:aws:sso:::instance/ssoins-... (aws sso-admin list-instances)", truncateValue(o.instanceARN)))
	}
	if !storeIDRe.MatchString(o.storeID) {
		return nil, usageErr(fmt.Errorf("--identity-store-id %q: want d-1234567890 (aws sso-admin list-instances)", truncateValue(o.storeID)))
	}
	data, err := os.ReadFile(o.catalog)
	if err != nil {
		return nil, usageErr(fmt.Errorf("--catalog: %w", err))
	}
	c, err := org.Parse(o.catalog, data)
	if err != nil {
		return nil, fmt.Errorf("--catalog: %w; check it with berth accounts validate", err)
	}
	cfg, err := awsx.Load(ctx, awsx.Options{Profile: g.Profile})
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, usageErr(errors.New("just-in-time access: set AWS_REGION (or the profile's region) to the Identity Center instance's region"))
	}
	center, dir, accounts := access.NewAWS(cfg, o.instanceARN, o.storeID)
	e := &access.Engine{Catalog: c, Directory: dir, Accounts: accounts, Center: center,
		Warn: func(msg string, err error) { g.log.Warn(msg, "err", err) }}
	if o.webhook != "" {
		u, err := url.Parse(o.webhook)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			// The URL is a secret: not echoed.
			return nil, usageErr(errors.New("--access-webhook: want an https:// URL"))
		}
		e.Notify = &access.Webhook{URL: o.webhook}
	}
	host, _ := os.Hostname()
	e.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	return e, nil
}

// accessWorkerInterval is how often the expiry worker runs: an expiry is
// at most this late.
const accessWorkerInterval = 15 * time.Second

// startAccessWorker runs the hub's access worker until ctx ends; the
// returned function waits for it to stop.
func startAccessWorker(ctx context.Context, s *hub.Server) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.RunAccessWorker(ctx, accessWorkerInterval)
	}()
	return func() { <-done }
}

func newAccessCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Ask for, approve and revoke time-limited access to AWS accounts (through the hub)",
		Long: `access talks to the hub you logged in to (berth login). Escalations come from the
hub's account catalog: per account class, which Identity Store group may ask for
which permission set, which group approves, and for how long at most. An
approved request becomes an IAM Identity Center account assignment that the hub
deletes when it expires or is revoked; two overlapping requests for the same
account and permission set keep it until the later one ends. The hub finds you
in the Identity Store by your hub e-mail address.

Exit codes: 4 when refused (not eligible, not an approver, self-approval),
1 when the request does not exist, 2 for bad input, 3 when the request was
already decided.`,
	}
	cmd.AddCommand(newAccessRequestCommand(g), newAccessDecideCommand(g, "approve"), newAccessDecideCommand(g, "deny"),
		newAccessDecideCommand(g, "revoke"), newAccessListCommand(g), newAccessWhoAmICommand(g))
	return cmd
}

func newAccessRequestCommand(g *Globals) *cobra.Command {
	var dur time.Duration
	var reason string
	cmd := &cobra.Command{
		Use:   "request ACCOUNT PERMISSION_SET --for DURATION --reason TEXT",
		Short: "Ask for a permission set on an account for a while",
		Long: `request asks for an escalation; the approvers are notified. berth access whoami
lists what you may ask for and the longest duration of each.`,
		Example: `  berth access request payments-prod AdministratorAccess --for 2h --reason "INC-1234: failed deploy"`,
		Args:    args(2, "ACCOUNT and PERMISSION_SET"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if dur <= 0 {
				return usageErr(errors.New("--for: give how long you need the access, such as 2h"))
			}
			if strings.TrimSpace(reason) == "" {
				return usageErr(errors.New("--reason: say why you need the access"))
			}
			c, err := g.defaultHubAPI()
			if err != nil {
				return err
			}
			r, err := c.RequestAccess(cmd.Context(), a[0], a[1], dur, reason)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(r)
			}
			fmt.Fprintf(g.Stdout, "request %d: %s on %s for %s, waiting for approval by %s\n", r.ID, r.PermissionSet, r.Account, shortDur(r.Duration), r.Approvers)
			return nil
		},
	}
	cmd.Flags().DurationVar(&dur, "for", 0, "how long, such as 30m or 2h (at most the escalation's maximum)")
	cmd.Flags().StringVar(&reason, "reason", "", "why you need it (shown to approvers and kept in the audit log)")
	return cmd
}

func newAccessDecideCommand(g *Globals, action string) *cobra.Command {
	var reason string
	short := map[string]string{
		"approve": "Approve a pending request (approvers); the assignment is created now",
		"deny":    "Deny a pending request (approvers), or withdraw your own",
		"revoke":  "End a request before it expires (its requester or approvers)",
	}[action]
	cmd := &cobra.Command{
		Use:   action + " REQUEST_ID [--reason TEXT]",
		Short: short,
		Args:  args(1, "REQUEST_ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := strconv.ParseInt(a[0], 10, 64)
			if err != nil || id < 1 {
				return usageErr(fmt.Errorf("REQUEST_ID %q: want the number berth access list shows", truncateValue(a[0])))
			}
			c, err := g.defaultHubAPI()
			if err != nil {
				return err
			}
			r, err := c.DecideAccess(cmd.Context(), id, action, reason)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(r)
			}
			fmt.Fprintf(g.Stdout, "request %d %s: %s on %s for %s\n", r.ID, r.Status, r.PermissionSet, r.Account, r.Requester)
			if gr := r.Grant; gr != nil {
				switch {
				case gr.Pending:
					fmt.Fprintf(g.Stdout, "Identity Center is not updated yet (attempt %d failed: %s); the hub retries and berth access whoami shows it\n", gr.Attempts, gr.LastError)
				case gr.Present && action == "revoke":
					fmt.Fprintln(g.Stdout, "the assignment stays: another approved request covers it")
				case gr.Present && r.Expires != nil:
					fmt.Fprintf(g.Stdout, "assigned until %s\n", r.Expires.Local().Format("2006-01-02 15:04 MST"))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the audit log)")
	return cmd
}

func newAccessListCommand(g *Globals) *cobra.Command {
	var mine, pending bool
	cmd := &cobra.Command{
		Use:   "list [--mine|--pending]",
		Short: "List your requests and those waiting for your decision",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			which := ""
			switch {
			case mine && pending:
				return usageErr(errors.New("--mine and --pending: choose one"))
			case mine:
				which = "mine"
			case pending:
				which = "pending"
			}
			c, err := g.defaultHubAPI()
			if err != nil {
				return err
			}
			reqs, err := c.AccessRequests(cmd.Context(), which)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(reqs)
			}
			if len(reqs) == 0 {
				fmt.Fprintln(g.Stdout, "no requests")
				return nil
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tREQUESTER\tACCOUNT\tPERMISSION SET\tFOR\tEXPIRES\tREASON")
			for _, r := range reqs {
				exp := "-"
				if r.Expires != nil {
					exp = r.Expires.Local().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Requester, r.Account, r.PermissionSet, shortDur(r.Duration), exp, truncateValue(r.Reason))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&mine, "mine", false, "only your requests")
	cmd.Flags().BoolVar(&pending, "pending", false, "only pending requests you may approve")
	return cmd
}

func newAccessWhoAmICommand(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Your Identity Store user and groups, what you may ask for, and your grants with time left",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.defaultHubAPI()
			if err != nil {
				return err
			}
			id, err := c.AccessWhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(id)
			}
			fmt.Fprintf(g.Stdout, "%s (identity store user %s)\ngroups: %s\n", id.Email, id.UserID, strings.Join(id.Groups, ", "))
			fmt.Fprintln(g.Stdout, "may ask for:")
			for _, e := range id.Eligible {
				fmt.Fprintf(g.Stdout, "  %s on %s, up to %s, approved by %s\n", e.PermissionSet, e.Account, shortDur(e.MaxDuration.String()), e.Approvers)
			}
			fmt.Fprintln(g.Stdout, "active:")
			for _, a := range id.Active {
				state := ""
				if a.State != "active" {
					state = " (assignment pending: " + a.LastError + ")"
				}
				fmt.Fprintf(g.Stdout, "  %s on %s, %s left%s\n", a.PermissionSet, a.Account, shortDur(a.Left.Round(time.Minute).String()), state)
			}
			for _, r := range id.Removing {
				fmt.Fprintf(g.Stdout, "removal pending: %s on %s, attempt %d failed: %s\n", r.PermissionSet, r.Account, r.Attempts, r.LastError)
			}
			return nil
		},
	}
}

// shortDur drops zero units: "2h0m0s" becomes "2h".
func shortDur(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
