package org

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/budgets"
	btypes "github.com/aws/aws-sdk-go-v2/service/budgets/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	otypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	stypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/berth-dev/berth/errkind"
)

// ReopenWindow is how long a closed account can be reopened.
const ReopenWindow = 90 * 24 * time.Hour

// ErrChanged is the kind of a plan that AWS no longer matches.
var ErrChanged = errkind.New("AWS changed since the plan", errkind.Conflict)

// Runner makes plans, applies them and audits the organisation.
type Runner struct {
	Clients *Clients
	// Progress receives one line per step and state change; nil for none.
	Progress io.Writer
	// Sleep waits between polls and retries; nil means a real wait. Now is the
	// clock for reopening dates; nil means time.Now.
	Sleep func(context.Context, time.Duration) error
	Now   func() time.Time
	// AccessRole is the role Organizations creates in new accounts, which
	// apply waits to be able to assume; empty means DefaultAccessRole.
	AccessRole string
}

// Step states in a Result.
const (
	StatusDone       = "done"
	StatusFailed     = "failed"
	StatusNotStarted = "not-started"
)

// StepResult is what happened to one step.
type StepResult struct {
	Step
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
	// ReopenUntil is the last day a closed account can be reopened.
	ReopenUntil string `json:"reopen_until,omitempty"`
}

// Result is what an apply did, step by step.
type Result struct {
	// AlreadyDone counts the plan's steps that an earlier, interrupted
	// apply (or someone else) had already made.
	AlreadyDone int          `json:"already_done"`
	Steps       []StepResult `json:"steps"`
}

func (ap *Runner) pacer(first, max, limit time.Duration) pacer {
	sleep := ap.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	return pacer{sleep: sleep, first: first, max: max, limit: limit}
}

// api paces retries of throttled and concurrent calls.
func (ap *Runner) api() pacer { return ap.pacer(time.Second, 20*time.Second, 3*time.Minute) }

func (ap *Runner) say(format string, args ...any) {
	if ap.Progress != nil {
		fmt.Fprintf(ap.Progress, format+"\n", args...)
	}
}

// Plan reads AWS and compares it with cat.
func (ap *Runner) Plan(ctx context.Context, catalog string, text []byte, cat *Catalog, o PlanOptions) (*Plan, error) {
	w, err := ap.Clients.observe(ctx, cat, ap.api())
	if err != nil {
		return nil, err
	}
	return NewPlan(catalog, text, cat, w, o), nil
}

// Apply runs p. It reads AWS again first: when AWS changed since the plan
// only by steps of the plan itself (an interrupted apply), it runs the
// steps that remain; any other change refuses with ErrChanged, before
// anything is done. The Result lists every step, also on error.
func (ap *Runner) Apply(ctx context.Context, p *Plan, cat *Catalog) (*Result, error) {
	if err := p.Check(cat); err != nil {
		return nil, err
	}
	w, err := ap.Clients.observe(ctx, cat, ap.api())
	if err != nil {
		return nil, err
	}
	fresh := NewPlan(p.Catalog, []byte(p.CatalogText), cat, w, PlanOptions{Notify: p.Notify})
	if extra, ok := covered(fresh.Steps, p.Steps); !ok {
		return nil, fmt.Errorf("apply plan: AWS now needs %s %s (%s), which the plan does not have; nothing was changed: run berth accounts plan again: %w",
			extra.Action, extra.target(), extra.Describe(), ErrChanged)
	}
	if w.Fingerprint() == p.Fingerprint && len(fresh.Steps) != len(p.Steps) {
		return nil, fmt.Errorf("apply plan: its steps are not what its catalog gives for the AWS state it recorded; nothing was changed: run berth accounts plan again: %w", ErrChanged)
	}
	res := &Result{AlreadyDone: len(p.Steps) - len(fresh.Steps)}
	if res.AlreadyDone > 0 {
		ap.say("berth: %d of the plan's %d steps are already done (by an earlier, interrupted apply, or by hand); %d remain", res.AlreadyDone, len(p.Steps), len(fresh.Steps))
	}
	for _, s := range fresh.Steps {
		res.Steps = append(res.Steps, StepResult{Step: s, Status: StatusNotStarted})
	}
	run := &applyRun{ap: ap, w: w, ids: map[string]string{}, ous: w.OUs}
	for _, a := range cat.Accounts {
		if r, ok := w.Account(a.Email); ok {
			run.ids[a.Name] = r.ID
		}
	}
	for i := range res.Steps {
		sr := &res.Steps[i]
		ap.say("[%d/%d] %s %s: %s", i+1, len(res.Steps), sr.Action, sr.target(), sr.Describe())
		if err := run.step(ctx, sr); err != nil {
			sr.Status, sr.Error = StatusFailed, err.Error()
			ap.say("[%d/%d] %s %s: FAILED: %v", i+1, len(res.Steps), sr.Action, sr.target(), err)
			return res, fmt.Errorf("step %d of %d (%s %s): %w", i+1, len(res.Steps), sr.Action, sr.target(), err)
		}
		sr.Status = StatusDone
		if sr.AccountID == "" {
			sr.AccountID = run.ids[sr.Account]
		}
		ap.say("[%d/%d] %s %s: done%s", i+1, len(res.Steps), sr.Action, sr.target(), nonEmptyAfter(": ", sr.Detail))
	}
	return res, nil
}

func nonEmptyAfter(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// covered reports whether every step of fresh is in old, in old's order,
// or returns the first that is not. A tag step counts when it sets and
// removes a subset of the old one's tags (an apply stopped between the
// two calls).
func covered(fresh, old []Step) (Step, bool) {
	j := 0
	for _, f := range fresh {
		for j < len(old) && !coveredBy(f, old[j]) {
			j++
		}
		if j == len(old) {
			return f, false
		}
		j++
	}
	return Step{}, true
}

func coveredBy(f, o Step) bool {
	if f.key() == o.key() {
		return true
	}
	if f.Action != ActionTagAccount || o.Action != ActionTagAccount || f.Account != o.Account {
		return false
	}
	for k, v := range f.Tags {
		if ov, ok := o.Tags[k]; !ok || ov != v {
			return false
		}
	}
	for _, k := range f.Untag {
		if !contains(o.Untag, k) {
			return false
		}
	}
	return true
}

type applyRun struct {
	ap  *Runner
	w   *World
	ids map[string]string // account name -> ID
	ous map[string]string // OU path -> ID
}

func (r *applyRun) step(ctx context.Context, sr *StepResult) error {
	if sr.Action != ActionCreateOU && sr.Action != ActionCreateAccount && r.ids[sr.Account] == "" {
		return fmt.Errorf("account %s has no ID: its creation did not finish", sr.Account)
	}
	switch sr.Action {
	case ActionCreateOU:
		return r.createOU(ctx, sr)
	case ActionCreateAccount:
		return r.createAccount(ctx, sr)
	case ActionMoveAccount:
		return r.move(ctx, sr)
	case ActionTagAccount:
		return r.tag(ctx, sr)
	case ActionCreateBudget:
		return r.createBudget(ctx, sr)
	case ActionUpdateBudget:
		return r.updateBudget(ctx, sr)
	case ActionAssign:
		return r.assign(ctx, sr)
	case ActionCloseAccount:
		return r.close(ctx, sr)
	}
	return fmt.Errorf("unknown action %q", sr.Action)
}

func (r *applyRun) org() Organizations { return r.ap.Clients.Org }

func (r *applyRun) createOU(ctx context.Context, sr *StepResult) error {
	parent, name := RootOU, sr.OU
	if i := strings.LastIndexByte(sr.OU, '/'); i >= 0 {
		parent, name = sr.OU[:i], sr.OU[i+1:]
	}
	pid := r.ous[parent]
	if pid == "" {
		return fmt.Errorf("create OU %s: its parent %s does not exist", sr.OU, parent)
	}
	var out *organizations.CreateOrganizationalUnitOutput
	if err := r.ap.api().retry(ctx, func() (err error) {
		out, err = r.org().CreateOrganizationalUnit(ctx, &organizations.CreateOrganizationalUnitInput{ParentId: aws.String(pid), Name: aws.String(name)})
		return err
	}); err != nil {
		return fmt.Errorf("create OU %s: %w", sr.OU, err)
	}
	r.ous[sr.OU] = aws.ToString(out.OrganizationalUnit.Id)
	sr.Detail = r.ous[sr.OU]
	return nil
}

func (r *applyRun) createAccount(ctx context.Context, sr *StepResult) error {
	// Matched by e-mail first, then by a creation in flight, so that a
	// re-run never opens a second account.
	accounts, err := r.ap.Clients.listAccounts(ctx, r.ap.api())
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if strings.EqualFold(a.Email, sr.Email) {
			r.ids[sr.Account] = a.ID
			sr.Detail = "already exists as " + a.ID
			return r.waitRole(ctx, sr, a.ID)
		}
	}
	creating, err := r.ap.Clients.creating(ctx, r.ap.api())
	if err != nil {
		return err
	}
	req := creating[sr.Account]
	if req != "" {
		r.ap.say("  an earlier creation of %s is in progress (request %s): waiting for it", sr.Account, req)
	} else {
		var out *organizations.CreateAccountOutput
		if err := r.ap.api().retry(ctx, func() (err error) {
			out, err = r.org().CreateAccount(ctx, &organizations.CreateAccountInput{
				AccountName: aws.String(sr.Account), Email: aws.String(sr.Email), RoleName: aws.String(r.role())})
			return err
		}); err != nil {
			return fmt.Errorf("create account %s: %w", sr.Account, err)
		}
		req = aws.ToString(out.CreateAccountStatus.Id)
		r.ap.say("  creation requested (request %s)", req)
	}
	var id string
	err = r.ap.pacer(5*time.Second, 30*time.Second, 30*time.Minute).poll(ctx, func() (bool, error) {
		var out *organizations.DescribeCreateAccountStatusOutput
		if err := r.ap.api().retry(ctx, func() (err error) {
			out, err = r.org().DescribeCreateAccountStatus(ctx, &organizations.DescribeCreateAccountStatusInput{CreateAccountRequestId: aws.String(req)})
			return err
		}); err != nil {
			return false, fmt.Errorf("describe account creation %s: %w", req, err)
		}
		st := out.CreateAccountStatus
		switch st.State {
		case otypes.CreateAccountStateSucceeded:
			id = aws.ToString(st.AccountId)
			return true, nil
		case otypes.CreateAccountStateFailed:
			return false, creationFailed(sr, st.FailureReason)
		}
		r.ap.say("  %s: %s", sr.Account, st.State)
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("create account %s: %w", sr.Account, timedOut(err))
	}
	r.ids[sr.Account] = id
	sr.Detail = "created " + id
	return r.waitRole(ctx, sr, id)
}

func timedOut(err error) error {
	if errors.Is(err, errGaveUp) {
		return fmt.Errorf("%w: %w", err, errkind.Unavailable)
	}
	return err
}

func creationFailed(sr *StepResult, reason otypes.CreateAccountFailureReason) error {
	switch reason {
	case otypes.CreateAccountFailureReasonEmailAlreadyExists:
		return errkind.New(fmt.Sprintf("AWS refused the e-mail %s: another AWS account already uses it (outside this organisation, or closed): give %s another address in the catalog", sr.Email, sr.Account), errkind.Conflict)
	case otypes.CreateAccountFailureReasonAccountLimitExceeded:
		return errkind.New("the organisation has as many accounts as its quota allows: ask for more in Service Quotas (AWS Organizations, default maximum number of accounts)", errkind.Unavailable)
	case otypes.CreateAccountFailureReasonInvalidEmail, otypes.CreateAccountFailureReasonInvalidAddress:
		return errkind.New(fmt.Sprintf("AWS refused the request (%s): check the e-mail %s and the organisation's contact address", reason, sr.Email), errkind.Invalid)
	}
	return errkind.New(fmt.Sprintf("AWS failed the creation: %s; run apply again", orNoReason(string(reason))), errkind.Unavailable)
}

func orNoReason(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

func (r *applyRun) role() string {
	if r.ap.AccessRole != "" {
		return r.ap.AccessRole
	}
	return DefaultAccessRole
}

// waitRole waits until the new account's access role can be assumed: the
// role exists before IAM in every region knows it.
func (r *applyRun) waitRole(ctx context.Context, sr *StepResult, id string) error {
	arn := roleARN(id, r.role())
	var last error
	err := r.ap.pacer(5*time.Second, 30*time.Second, 15*time.Minute).poll(ctx, func() (bool, error) {
		_, err := r.ap.Clients.STS.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("berth-accounts-apply"), DurationSeconds: aws.Int32(900)})
		if err == nil {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		last = err
		r.ap.say("  %s: role %s cannot be assumed yet (%s)", sr.Account, r.role(), orNoReason(errCode(err)))
		return false, nil
	})
	if errors.Is(err, errGaveUp) {
		return fmt.Errorf("wait for role %s: %w (last error: %w): %w", arn, err, last, errkind.Unavailable)
	}
	if err != nil {
		return fmt.Errorf("wait for role %s: %w", arn, err)
	}
	sr.Detail += ", role " + r.role() + " ready"
	return nil
}

func (r *applyRun) move(ctx context.Context, sr *StepResult) error {
	from, to := r.ous[sr.From], r.ous[sr.OU]
	if from == "" || to == "" {
		return fmt.Errorf("move account %s: OU %s or %s does not exist", sr.Account, sr.From, sr.OU)
	}
	err := r.ap.api().retry(ctx, func() error {
		_, err := r.org().MoveAccount(ctx, &organizations.MoveAccountInput{AccountId: aws.String(r.ids[sr.Account]),
			SourceParentId: aws.String(from), DestinationParentId: aws.String(to)})
		return err
	})
	if isCode(err, "DuplicateAccountException") {
		sr.Detail = "already there"
		return nil
	}
	if err != nil {
		return fmt.Errorf("move account %s from %s to %s: %w", sr.Account, sr.From, sr.OU, err)
	}
	return nil
}

func (r *applyRun) tag(ctx context.Context, sr *StepResult) error {
	id := r.ids[sr.Account]
	if len(sr.Tags) > 0 {
		keys := make([]string, 0, len(sr.Tags))
		for k := range sr.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var tags []otypes.Tag
		for _, k := range keys {
			tags = append(tags, otypes.Tag{Key: aws.String(k), Value: aws.String(sr.Tags[k])})
		}
		if err := r.ap.api().retry(ctx, func() error {
			_, err := r.org().TagResource(ctx, &organizations.TagResourceInput{ResourceId: aws.String(id), Tags: tags})
			return err
		}); err != nil {
			return fmt.Errorf("tag account %s: %w", sr.Account, err)
		}
	}
	if len(sr.Untag) > 0 {
		if err := r.ap.api().retry(ctx, func() error {
			_, err := r.org().UntagResource(ctx, &organizations.UntagResourceInput{ResourceId: aws.String(id), TagKeys: sr.Untag})
			return err
		}); err != nil {
			return fmt.Errorf("untag account %s: %w", sr.Account, err)
		}
	}
	return nil
}

func budgetUSD(amount int) *btypes.Spend {
	return &btypes.Spend{Amount: aws.String(strconv.Itoa(amount)), Unit: aws.String("USD")}
}

func (r *applyRun) createBudget(ctx context.Context, sr *StepResult) error {
	id := r.ids[sr.Account]
	var notes []btypes.NotificationWithSubscribers
	for _, t := range []btypes.NotificationType{btypes.NotificationTypeActual, btypes.NotificationTypeForecasted} {
		notes = append(notes, btypes.NotificationWithSubscribers{
			Notification: &btypes.Notification{NotificationType: t, ComparisonOperator: btypes.ComparisonOperatorGreaterThan,
				Threshold: 100, ThresholdType: btypes.ThresholdTypePercentage},
			Subscribers: []btypes.Subscriber{{SubscriptionType: btypes.SubscriptionTypeEmail, Address: aws.String(sr.Notify)}},
		})
	}
	in := &budgets.CreateBudgetInput{
		AccountId: aws.String(r.ap.Clients.Account),
		Budget: &btypes.Budget{BudgetName: aws.String(BudgetName(sr.Account)), BudgetType: btypes.BudgetTypeCost,
			TimeUnit: btypes.TimeUnitMonthly, BudgetLimit: budgetUSD(sr.Amount),
			CostFilters: map[string][]string{"LinkedAccount": {id}}},
		NotificationsWithSubscribers: notes,
	}
	err := r.ap.api().retry(ctx, func() error {
		_, err := r.ap.Clients.Budgets.CreateBudget(ctx, in)
		return err
	})
	if isCode(err, "DuplicateRecordException") {
		return fmt.Errorf("create budget %s: %w", BudgetName(sr.Account), errkind.New("it was created since the plan: run berth accounts plan again", errkind.Conflict))
	}
	if err != nil {
		return fmt.Errorf("create budget %s: %w", BudgetName(sr.Account), err)
	}
	return nil
}

func (r *applyRun) updateBudget(ctx context.Context, sr *StepResult) error {
	if sr.Amount > DefaultBudget && (sr.ApprovedBy == "" || sr.ApprovalRef == "") {
		return fmt.Errorf("update budget %s: %d USD is above %d without an approval: %w", BudgetName(sr.Account), sr.Amount, DefaultBudget, errkind.Invalid)
	}
	name, acct := aws.String(BudgetName(sr.Account)), aws.String(r.ap.Clients.Account)
	var out *budgets.DescribeBudgetOutput
	if err := r.ap.api().retry(ctx, func() (err error) {
		out, err = r.ap.Clients.Budgets.DescribeBudget(ctx, &budgets.DescribeBudgetInput{AccountId: acct, BudgetName: name})
		return err
	}); err != nil {
		return fmt.Errorf("read budget %s: %w", *name, err)
	}
	b := *out.Budget
	b.BudgetLimit = budgetUSD(sr.Amount)
	// Computed by AWS; an update that sends them back is refused.
	b.CalculatedSpend, b.LastUpdatedTime, b.HealthStatus = nil, nil, nil
	if err := r.ap.api().retry(ctx, func() error {
		_, err := r.ap.Clients.Budgets.UpdateBudget(ctx, &budgets.UpdateBudgetInput{AccountId: acct, NewBudget: &b})
		return err
	}); err != nil {
		return fmt.Errorf("update budget %s: %w", *name, err)
	}
	return nil
}

func (r *applyRun) assign(ctx context.Context, sr *StepResult) error {
	ps, group := r.w.PermissionSets[sr.PermissionSet], r.w.Groups[sr.Group]
	if ps == "" || group == "" {
		return fmt.Errorf("assign %s to %s: Identity Center has no such permission set or group", sr.PermissionSet, sr.Group)
	}
	inst := aws.String(r.w.Instance)
	var out *ssoadmin.CreateAccountAssignmentOutput
	if err := r.ap.api().retry(ctx, func() (err error) {
		out, err = r.ap.Clients.SSO.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{
			InstanceArn: inst, PermissionSetArn: aws.String(ps), PrincipalId: aws.String(group), PrincipalType: stypes.PrincipalTypeGroup,
			TargetId: aws.String(r.ids[sr.Account]), TargetType: stypes.TargetTypeAwsAccount})
		return err
	}); err != nil {
		return fmt.Errorf("assign %s to group %s in %s: %w", sr.PermissionSet, sr.Group, sr.Account, err)
	}
	st := out.AccountAssignmentCreationStatus
	err := r.ap.pacer(time.Second, 10*time.Second, 10*time.Minute).poll(ctx, func() (bool, error) {
		switch st.Status {
		case stypes.StatusValuesSucceeded:
			return true, nil
		case stypes.StatusValuesFailed:
			return false, errkind.New("Identity Center failed it: "+orNoReason(aws.ToString(st.FailureReason)), errkind.Unavailable)
		}
		var d *ssoadmin.DescribeAccountAssignmentCreationStatusOutput
		if err := r.ap.api().retry(ctx, func() (err error) {
			d, err = r.ap.Clients.SSO.DescribeAccountAssignmentCreationStatus(ctx, &ssoadmin.DescribeAccountAssignmentCreationStatusInput{
				InstanceArn: inst, AccountAssignmentCreationRequestId: st.RequestId})
			return err
		}); err != nil {
			return false, err
		}
		st = d.AccountAssignmentCreationStatus
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("assign %s to group %s in %s: %w", sr.PermissionSet, sr.Group, sr.Account, timedOut(err))
	}
	return nil
}

func (r *applyRun) close(ctx context.Context, sr *StepResult) error {
	id := aws.String(r.ids[sr.Account])
	err := r.ap.api().retry(ctx, func() error {
		_, err := r.org().CloseAccount(ctx, &organizations.CloseAccountInput{AccountId: id})
		if constraintReason(err) == otypes.ConstraintViolationExceptionReasonCloseAccountRequestsLimitExceeded {
			// Only a few closures may run at once: wait for one to end.
			return &otypes.TooManyRequestsException{Message: aws.String(err.Error())}
		}
		return err
	})
	switch {
	case constraintReason(err) == otypes.ConstraintViolationExceptionReasonCloseAccountQuotaExceeded:
		return fmt.Errorf("close account %s: nothing was closed: %w", sr.Account, errkind.New(
			"the organisation has closed as many accounts as Organizations allows in 30 days (10% of its member accounts): "+
				"run apply again when the oldest closure of the last 30 days is 30 days old, or ask AWS Support to raise the quota", errkind.Unavailable))
	case isCode(err, "AccountAlreadyClosedException"):
	case err != nil:
		return fmt.Errorf("close account %s: %w", sr.Account, err)
	}
	var state string
	err = r.ap.pacer(5*time.Second, time.Minute, 30*time.Minute).poll(ctx, func() (bool, error) {
		var out *organizations.DescribeAccountOutput
		if err := r.ap.api().retry(ctx, func() (err error) {
			out, err = r.org().DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: id})
			return err
		}); err != nil {
			return false, err
		}
		state = accountState(*out.Account)
		if state == "SUSPENDED" || state == "CLOSED" {
			return true, nil
		}
		r.ap.say("  %s: %s", sr.Account, state)
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for account %s to close: %w", sr.Account, timedOut(err))
	}
	now := time.Now
	if r.ap.Now != nil {
		now = r.ap.Now
	}
	sr.ReopenUntil = now().UTC().Add(ReopenWindow).Format(time.DateOnly)
	sr.Detail = fmt.Sprintf("%s; can be reopened through AWS Support until %s", state, sr.ReopenUntil)
	return nil
}

func constraintReason(err error) otypes.ConstraintViolationExceptionReason {
	var cv *otypes.ConstraintViolationException
	if errors.As(err, &cv) {
		return cv.Reason
	}
	return ""
}
