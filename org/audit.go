package org

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// Finding kinds of an audit.
const (
	FindingIAMUser      = "iam-user"         // an IAM user in a production account
	FindingStaleKey     = "stale-access-key" // an access key unused for StaleKeyAge
	FindingNoBudget     = "no-budget"
	FindingBudgetAbove  = "budget-above-catalog"
	FindingNotInCatalog = "not-in-catalog"
	FindingAuditFailed  = "not-audited" // the account could not be read
	StaleKeyAge         = 90 * 24 * time.Hour
	defaultAuditRole    = DefaultAccessRole
)

// Finding is one problem an audit found.
type Finding struct {
	Kind      string `json:"kind"`
	Account   string `json:"account"`
	AccountID string `json:"account_id"`
	// Subject is the user or key concerned, when there is one.
	Subject string `json:"subject,omitempty"`
	Detail  string `json:"detail"`
}

// AuditOptions tune an audit.
type AuditOptions struct {
	// Role is assumed in each production account, with a session policy
	// that only allows reading users and keys; empty means
	// DefaultAccessRole.
	Role string
	Now  time.Time
}

// Audit checks the organisation against cat: IAM users and stale keys in
// production-class accounts, budgets missing or above the catalog's, and
// accounts missing from the catalog. An account that cannot be read is a
// finding, not the end of the audit.
func (ap *Runner) Audit(ctx context.Context, cat *Catalog, o AuditOptions) ([]Finding, error) {
	c, p := ap.Clients, ap.api()
	if o.Role == "" {
		o.Role = defaultAuditRole
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	accounts, err := c.listAccounts(ctx, p)
	if err != nil {
		return nil, err
	}
	w := &World{Budgets: map[string]RemoteBudget{}}
	if err := c.readBudgets(ctx, w, p); err != nil {
		return nil, err
	}
	inCatalog := map[string]Account{}
	for _, a := range cat.Accounts {
		inCatalog[strings.ToLower(a.Email)] = a
	}
	var out []Finding
	for _, r := range accounts {
		if r.State != "ACTIVE" {
			continue
		}
		a, ok := inCatalog[strings.ToLower(r.Email)]
		if !ok {
			out = append(out, Finding{Kind: FindingNotInCatalog, Account: r.Name, AccountID: r.ID,
				Detail: fmt.Sprintf("%s is in the organisation but not in the catalog: add it, or close it", r.Email)})
			continue
		}
		if a.Close {
			continue
		}
		out = append(out, budgetFindings(a, r, w.Budgets)...)
		if Production(a.Class) {
			fs, err := c.auditIAM(ctx, a, r.ID, o, p)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				fs = []Finding{{Kind: FindingAuditFailed, Account: a.Name, AccountID: r.ID, Detail: err.Error()}}
			}
			out = append(out, fs...)
		}
	}
	return out, nil
}

func budgetFindings(a Account, r RemoteAccount, all map[string]RemoteBudget) []Finding {
	var out []Finding
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	found := false
	for _, n := range names {
		b := all[n]
		if !contains(b.Linked, r.ID) && n != BudgetName(a.Name) {
			continue
		}
		found = true
		if b.Amount > float64(a.Budget.Amount) {
			out = append(out, Finding{Kind: FindingBudgetAbove, Account: a.Name, AccountID: r.ID, Subject: n,
				Detail: fmt.Sprintf("budget %s is %g %s a month; the catalog says %d USD", n, b.Amount, b.Unit, a.Budget.Amount)})
		}
	}
	if !found {
		out = append(out, Finding{Kind: FindingNoBudget, Account: a.Name, AccountID: r.ID,
			Detail: "no budget covers this account: run berth accounts plan and apply"})
	}
	return out
}

func (c *Clients) auditIAM(ctx context.Context, a Account, id string, o AuditOptions, p pacer) ([]Finding, error) {
	client, err := c.IAMIn(ctx, id, o.Role)
	if err != nil {
		return nil, err
	}
	var out []Finding
	var marker *string
	for {
		var users *iam.ListUsersOutput
		if err := p.retry(ctx, func() (err error) {
			users, err = client.ListUsers(ctx, &iam.ListUsersInput{Marker: marker})
			return err
		}); err != nil {
			return nil, fmt.Errorf("list IAM users: %w", err)
		}
		for _, u := range users.Users {
			name := aws.ToString(u.UserName)
			out = append(out, Finding{Kind: FindingIAMUser, Account: a.Name, AccountID: id, Subject: name,
				Detail: fmt.Sprintf("IAM user %s in a %s account: people use Identity Center, automation uses roles", name, a.Class)})
			keys, err := c.staleKeys(ctx, client, a, id, name, o.Now, p)
			if err != nil {
				return nil, err
			}
			out = append(out, keys...)
		}
		if !users.IsTruncated {
			return out, nil
		}
		marker = users.Marker
	}
}

func (c *Clients) staleKeys(ctx context.Context, client IAM, a Account, id, user string, now time.Time, p pacer) ([]Finding, error) {
	var out []Finding
	var marker *string
	for {
		var keys *iam.ListAccessKeysOutput
		if err := p.retry(ctx, func() (err error) {
			keys, err = client.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user), Marker: marker})
			return err
		}); err != nil {
			return nil, fmt.Errorf("list access keys of %s: %w", user, err)
		}
		for _, k := range keys.AccessKeyMetadata {
			if k.Status != "Active" {
				continue
			}
			kid := aws.ToString(k.AccessKeyId)
			var used *iam.GetAccessKeyLastUsedOutput
			if err := p.retry(ctx, func() (err error) {
				used, err = client.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(kid)})
				return err
			}); err != nil {
				return nil, fmt.Errorf("read last use of key %s: %w", kid, err)
			}
			last, what := aws.ToTime(k.CreateDate), "created"
			if used.AccessKeyLastUsed != nil && used.AccessKeyLastUsed.LastUsedDate != nil {
				last, what = *used.AccessKeyLastUsed.LastUsedDate, "last used"
			}
			if now.Sub(last) >= StaleKeyAge {
				if what == "created" {
					what = "never used, created"
				}
				out = append(out, Finding{Kind: FindingStaleKey, Account: a.Name, AccountID: id, Subject: user + "/" + kid,
					Detail: fmt.Sprintf("access key %s of %s %s %s (%d days ago): deactivate and delete it", kid, user, what, last.UTC().Format(time.DateOnly), int(now.Sub(last).Hours()/24))})
			}
		}
		if !keys.IsTruncated {
			return out, nil
		}
		marker = keys.Marker
	}
}

// FormatFindings writes findings as a table.
func FormatFindings(w io.Writer, fs []Finding) error {
	if len(fs) == 0 {
		_, err := io.WriteString(w, "no findings\n")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tACCOUNT\tID\tDETAIL")
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Kind, f.Account, f.AccountID, f.Detail)
	}
	return tw.Flush()
}
