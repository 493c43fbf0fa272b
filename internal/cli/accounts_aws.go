package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/org"
	"github.com/berth-dev/berth/store"
)

// orgRunner loads AWS credentials for the organisation's management
// account. Organizations and Budgets are global, so no region is needed;
// Identity Center is called in ssoRegion (empty: the configured region).
func (g *Globals) orgRunner(ctx context.Context, ssoRegion, accessRole string) (*org.Runner, error) {
	cfg, err := awsx.Load(ctx, awsx.Options{Profile: g.Profile})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, store.ErrPermissionDenied)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	id, err := awsx.Identity(ctx, cfg, awsx.CredentialSource(g.Env, g.Profile))
	if err != nil {
		return nil, err
	}
	g.log.Debug("caller", "arn", id.ARN, "account", id.Account)
	r := &org.Runner{Clients: org.NewClients(cfg, id.Account, ssoRegion), AccessRole: accessRole}
	if !g.Quiet {
		r.Progress = g.Stderr
	}
	return r, nil
}

func readCatalog(path string) ([]byte, *org.Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, usageErr(fmt.Errorf("read catalog: %w", err))
	}
	c, err := org.Parse(path, data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w\nfix the catalog first: berth accounts validate --catalog %s", err, path)
	}
	return data, c, nil
}

type planFlags struct {
	catalog, notify, ssoRegion string
}

func (f *planFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.catalog, "catalog", "accounts.yaml", "the account catalog")
	cmd.Flags().StringVar(&f.notify, "notify", org.DefaultNotify, "where budget alerts go; {owner} is the owner team, {domain} the domain of the account's e-mail")
	cmd.Flags().StringVar(&f.ssoRegion, "sso-region", "", "IAM Identity Center's home region (default: the configured region)")
}

func (g *Globals) makePlan(ctx context.Context, f planFlags, r *org.Runner) (*org.Plan, *org.Catalog, error) {
	if err := org.CheckNotify(f.notify); err != nil {
		return nil, nil, usageErr(fmt.Errorf("--notify: %w", err))
	}
	text, cat, err := readCatalog(f.catalog)
	if err != nil {
		return nil, nil, err
	}
	if r == nil {
		if r, err = g.orgRunner(ctx, f.ssoRegion, ""); err != nil {
			return nil, nil, err
		}
	}
	p, err := r.Plan(ctx, filepath.Base(f.catalog), text, cat, org.PlanOptions{Notify: f.notify})
	if err != nil {
		return nil, nil, err
	}
	p.SSORegion = f.ssoRegion
	return p, cat, nil
}

func newAccountsPlanCommand(g *Globals) *cobra.Command {
	var f planFlags
	var format, out string
	cmd := &cobra.Command{
		Use:   "plan [--catalog accounts.yaml] [--format text|json|markdown] [-o PLAN]",
		Short: "Show what apply would change in AWS to match the catalog",
		Long: `plan reads AWS Organizations, Budgets and IAM Identity Center from the
organisation's management account and lists the steps that would make them
match the catalog: create OUs and accounts, move accounts to their OU, set
and remove tags, create or change budgets (berth-ACCOUNT in the management
account, alerts on actual and forecast spend above 100%), assign standing
access, and close accounts marked close: true. It changes nothing.

--format markdown prints a pull-request comment. -o PLAN saves the plan
with the catalog and a fingerprint of what was read, for berth accounts
apply PLAN. Accounts are matched by e-mail, never by name.`,
		Example: "  berth accounts plan\n  berth accounts plan --format markdown -o accounts.plan > comment.md",
		Args:    args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.json() {
				format = "json"
			}
			if format != "text" && format != "json" && format != "markdown" {
				return usageErr(fmt.Errorf("--format %q: use text, json or markdown", format))
			}
			p, _, err := g.makePlan(cmd.Context(), f, nil)
			if err != nil {
				return err
			}
			if out != "" {
				var b bytes.Buffer
				if err := org.WritePlan(&b, p); err != nil {
					return err
				}
				if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
					return fmt.Errorf("save plan: %w", err)
				}
				g.info("berth: plan saved to %s; apply it with berth accounts apply %s", out, out)
			}
			switch format {
			case "json":
				return org.WritePlan(g.Stdout, p)
			case "markdown":
				return org.FormatMarkdown(g.Stdout, p)
			}
			return org.FormatPlan(g.Stdout, p)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "text, json or markdown (a pull-request comment)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "save the plan to this file for apply")
	return explainErrors(g, cmd)
}

func newAccountsApplyCommand(g *Globals) *cobra.Command {
	var f planFlags
	var yes bool
	var role string
	cmd := &cobra.Command{
		Use:   "apply [PLAN] [--yes]",
		Short: "Make AWS match the catalog, step by step",
		Long: `apply runs the steps of a plan saved with berth accounts plan -o PLAN, or,
without PLAN, of a plan it makes from --catalog and shows first. It reads
AWS again before the first step and refuses (exit 3, nothing changed) when
AWS changed in a way the plan does not explain; changes made by an earlier,
interrupted apply of the same plan are recognised, and only the remaining
steps run.

New accounts are matched by e-mail (and a creation in progress by name)
before CreateAccount, so a re-run never opens a second account; apply waits
until the new account's access role can be assumed. Throttling and
concurrent changes are retried with backoff. Closing an account (only when
the catalog says close: true) waits until it is SUSPENDED and prints the
last day it can be reopened (90 days later).

Progress goes to stderr, the outcome of each step to stdout. A failed step
stops the apply with a non-zero exit naming the step; run apply again once
the cause is fixed.`,
		Example: "  berth accounts plan -o accounts.plan && berth accounts apply accounts.plan --yes",
		Args:    rangeArgs(0, 1, "at most one plan file"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			var p *org.Plan
			var cat *org.Catalog
			if len(argv) == 1 {
				file, err := os.Open(argv[0])
				if err != nil {
					return usageErr(fmt.Errorf("read plan: %w", err))
				}
				p, cat, err = org.ReadPlan(file)
				file.Close()
				if err != nil {
					return err
				}
			}
			if p != nil && !cmd.Flags().Changed("sso-region") {
				f.ssoRegion = p.SSORegion
			}
			r, err := g.orgRunner(ctx, f.ssoRegion, role)
			if err != nil {
				return err
			}
			if p == nil {
				if p, cat, err = g.makePlan(ctx, f, r); err != nil {
					return err
				}
			}
			if len(p.Steps) == 0 {
				g.info("berth: %s: no changes", p.Catalog)
				if g.json() {
					return g.printJSON(&org.Result{Steps: []org.StepResult{}})
				}
				return nil
			}
			if !g.Quiet {
				if err := org.FormatPlan(g.Stderr, p); err != nil {
					return err
				}
			}
			ok, err := g.confirm(yes, fmt.Sprintf("Apply these %d step(s)?", len(p.Steps)))
			if err != nil || !ok {
				return err
			}
			res, err := r.Apply(ctx, p, cat)
			return g.reportApply(res, err)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&yes, "yes", false, "apply without asking (required without a terminal)")
	cmd.Flags().StringVar(&role, "access-role", org.DefaultAccessRole, "the role Organizations creates in new accounts, which apply waits for")
	return explainErrors(g, cmd)
}

// applyReport is apply's JSON document.
type applyReport struct {
	*org.Result
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func (g *Globals) reportApply(res *org.Result, err error) error {
	if res == nil && !g.json() {
		return err
	}
	if g.json() {
		if res == nil {
			res = &org.Result{Steps: []org.StepResult{}}
		}
		rep := applyReport{Result: res, OK: err == nil}
		if err != nil {
			rep.Error = g.brief(err)
		}
		return g.jsonResult(rep, err)
	}
	w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "#\tACTION\tACCOUNT\tSTATUS\tDETAIL")
	for i, s := range res.Steps {
		acct := s.Account
		if s.AccountID != "" {
			acct += " (" + s.AccountID + ")"
		}
		detail := s.Detail
		if s.Error != "" {
			detail = s.Error
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", i+1, s.Action, printable(orDash(acct)), s.Status, printable(orDash(detail)))
	}
	w.Flush()
	if err == nil {
		g.info("berth: applied %d step(s)", len(res.Steps))
	}
	return err
}

func newAccountsAuditCommand(g *Globals) *cobra.Command {
	var catalog, role string
	cmd := &cobra.Command{
		Use:   "audit [--catalog accounts.yaml] [--role NAME]",
		Short: "Find IAM users, old keys, missing budgets and unknown accounts",
		Long: `audit checks the organisation against the catalog: IAM users and their
access keys in production-class accounts (team-prod, customer-prod,
management), keys not used for 90 days, accounts without a budget or with
one above the catalog's, and accounts of the organisation that the catalog
does not list. It enters each production account through --role with a
session policy that only allows iam:ListUsers, iam:ListAccessKeys and
iam:GetAccessKeyLastUsed, whatever the role itself allows.

Exit 0 without findings, 1 with findings. An account it cannot enter is a
finding (not-audited).`,
		Example: "  berth accounts audit\n  berth accounts audit --role berth-audit --output json",
		Args:    args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, cat, err := readCatalog(catalog)
			if err != nil {
				return err
			}
			r, err := g.orgRunner(cmd.Context(), "", "")
			if err != nil {
				return err
			}
			fs, err := r.Audit(cmd.Context(), cat, org.AuditOptions{Role: role})
			if err != nil {
				return err
			}
			if g.json() {
				if fs == nil {
					fs = []org.Finding{}
				}
				if err := g.printJSON(fs); err != nil {
					return err
				}
			} else if err := org.FormatFindings(g.Stdout, fs); err != nil {
				return err
			}
			if len(fs) > 0 {
				g.info("berth: %d finding(s)", len(fs))
				return errNo
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&catalog, "catalog", "accounts.yaml", "the account catalog")
	cmd.Flags().StringVar(&role, "role", org.DefaultAccessRole, "the role to assume in each production account (read-only for the session)")
	return explainErrors(g, cmd)
}
