package org

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/errkind"
)

// Step planActions, in the order a plan runs them for one account.
const (
	ActionCreateOU      = "create-ou"
	ActionCreateAccount = "create-account"
	ActionMoveAccount   = "move-account"
	ActionTagAccount    = "tag-account"
	ActionCreateBudget  = "create-budget"
	ActionUpdateBudget  = "update-budget"
	ActionAssign        = "assign"
	ActionCloseAccount  = "close-account"
)

var planActions = []string{ActionCreateOU, ActionCreateAccount, ActionMoveAccount, ActionTagAccount,
	ActionCreateBudget, ActionUpdateBudget, ActionAssign, ActionCloseAccount}

// Step is one change. Its JSON field names are stable: CI reads them.
type Step struct {
	Action  string `json:"action"`
	Account string `json:"account,omitempty"`
	// AccountID is empty for an account the plan creates.
	AccountID string `json:"account_id,omitempty"`
	Email     string `json:"email,omitempty"`
	// OU is the OU to create or move to; From the OU moved from.
	OU   string `json:"ou,omitempty"`
	From string `json:"from,omitempty"`
	// Tags to set and tag keys to remove.
	Tags  map[string]string `json:"tags,omitempty"`
	Untag []string          `json:"untag,omitempty"`
	// Budget in whole USD a month; Previous is the amount replaced.
	Amount      int    `json:"amount,omitempty"`
	Previous    string `json:"previous,omitempty"`
	Notify      string `json:"notify,omitempty"`
	ApprovedBy  string `json:"approved_by,omitempty"`
	ApprovalRef string `json:"approval_ref,omitempty"`
	// Standing access.
	Group         string `json:"group,omitempty"`
	PermissionSet string `json:"permission_set,omitempty"`
}

// key identifies a step whatever the account's ID: a plan made before an
// account existed and one made after its creation name the same steps.
func (s Step) key() string {
	s.AccountID = ""
	b, _ := json.Marshal(s)
	return string(b)
}

// Plan is the difference between a catalog and AWS. Saved with -o, it is
// what apply runs.
type Plan struct {
	Version int `json:"version"`
	// Catalog is the catalog's file name; CatalogText its content, so
	// apply checks against exactly what was reviewed.
	Catalog     string `json:"catalog"`
	CatalogHash string `json:"catalog_sha256"`
	CatalogText string `json:"catalog_text"`
	// Fingerprint digests what plan read from AWS.
	Fingerprint string `json:"fingerprint"`
	// Notify is the budget alert address template the plan used, and
	// SSORegion the region of Identity Center it read: apply reads the same.
	Notify    string   `json:"notify"`
	SSORegion string   `json:"sso_region,omitempty"`
	Steps     []Step   `json:"steps"`
	Notes     []string `json:"notes,omitempty"`
}

// PlanOptions tune a plan.
type PlanOptions struct {
	// Notify is the address of budget alerts; {owner} stands for the
	// owner team and {domain} for the domain of the account's e-mail.
	Notify string
}

// DefaultNotify sends budget alerts to the owner team at the domain of the
// account's root e-mail.
const DefaultNotify = "{owner}@{domain}"

// Notify returns the budget alert address of a.
func (o PlanOptions) notify(a Account) string {
	t := o.Notify
	if t == "" {
		t = DefaultNotify
	}
	domain := a.Email[strings.LastIndexByte(a.Email, '@')+1:]
	return strings.NewReplacer("{owner}", a.Owner, "{domain}", domain).Replace(t)
}

// CheckNotify checks a --notify template.
func CheckNotify(t string) error {
	a := Account{Owner: "team", Email: "a@example.com"}
	if msg := checkEmail(PlanOptions{Notify: t}.notify(a)); msg != "" {
		return fmt.Errorf("budget alert address %q %s: %w", t, msg, errkind.Invalid)
	}
	return nil
}

// NewPlan compares cat with w. catalog names the file and text is its
// content, kept in the plan for apply.
func NewPlan(catalog string, text []byte, cat *Catalog, w *World, o PlanOptions) *Plan {
	sum := sha256.Sum256(text)
	p := &Plan{Version: 1, Catalog: catalog, CatalogHash: hex.EncodeToString(sum[:]), CatalogText: string(text),
		Fingerprint: w.Fingerprint(), Notify: o.Notify, Steps: []Step{}}
	var ous func(prefix string, list []OU)
	ous = func(prefix string, list []OU) {
		for _, ou := range list {
			path := prefix + ou.Name
			if _, ok := w.OUs[path]; !ok {
				p.Steps = append(p.Steps, Step{Action: ActionCreateOU, OU: path})
			}
			ous(path+"/", ou.Children)
		}
	}
	ous("", cat.OUs)

	for _, a := range cat.Accounts {
		r, exists := w.Account(a.Email)
		if a.Close {
			switch {
			case a.Class == ClassManagement:
				p.Notes = append(p.Notes, fmt.Sprintf("%s is the management account: Organizations cannot close it; close it from its own root user after removing the organisation", a.Name))
			case exists && r.State == "ACTIVE":
				p.Steps = append(p.Steps, Step{Action: ActionCloseAccount, Account: a.Name, AccountID: r.ID, Email: a.Email})
			case !exists:
				p.Notes = append(p.Notes, fmt.Sprintf("%s is marked close: true but is not in the organisation: nothing to close", a.Name))
			}
			continue
		}
		if exists && !liveState(r.State) {
			p.Notes = append(p.Notes, fmt.Sprintf("%s (%s) is %s in AWS: mark it close: true in the catalog, or reopen it through AWS Support", a.Name, r.ID, r.State))
			continue
		}
		if exists && r.Name != a.Name {
			p.Notes = append(p.Notes, fmt.Sprintf("%s (%s) is named %q in AWS; berth matches accounts by e-mail and does not rename them", a.Name, r.ID, r.Name))
		}
		id, parent, tags := r.ID, r.Parent, r.Tags
		if !exists {
			p.Steps = append(p.Steps, Step{Action: ActionCreateAccount, Account: a.Name, Email: a.Email})
			parent = RootOU // new accounts start at the root
			if w.Creating[a.Name] != "" {
				p.Notes = append(p.Notes, fmt.Sprintf("%s is being created (request %s): apply waits for it instead of creating it again", a.Name, w.Creating[a.Name]))
			}
		}
		if parent != a.OU {
			p.Steps = append(p.Steps, Step{Action: ActionMoveAccount, Account: a.Name, AccountID: id, From: parent, OU: a.OU})
		}
		set, unset := map[string]string{}, []string{}
		for k, v := range a.Tags {
			if old, ok := tags[k]; !ok || old != v {
				set[k] = v
			}
		}
		for k := range tags {
			if _, ok := a.Tags[k]; !ok {
				unset = append(unset, k)
			}
		}
		sort.Strings(unset)
		if len(set)+len(unset) > 0 {
			st := Step{Action: ActionTagAccount, Account: a.Name, AccountID: id, Untag: unset}
			if len(set) > 0 {
				st.Tags = set
			}
			p.Steps = append(p.Steps, st)
		}
		b, ok := w.Budgets[BudgetName(a.Name)]
		bs := Step{Account: a.Name, AccountID: id, Amount: a.Budget.Amount, Notify: o.notify(a)}
		if a.Budget.Approval != nil {
			bs.ApprovedBy, bs.ApprovalRef = a.Budget.Approval.By, a.Budget.Approval.Ref
		}
		switch {
		case !ok:
			bs.Action = ActionCreateBudget
			p.Steps = append(p.Steps, bs)
		case b.Amount != float64(a.Budget.Amount) || b.Unit != "USD":
			bs.Action = ActionUpdateBudget
			bs.Previous = strconv.FormatFloat(b.Amount, 'f', -1, 64) + " " + b.Unit
			bs.Notify = ""
			p.Steps = append(p.Steps, bs)
		}
		for _, s := range cat.standing(a) {
			key := assignmentKey(id, w.PermissionSets[s.PermissionSet], w.Groups[s.Group])
			if !exists || !w.Assignments[key] {
				p.Steps = append(p.Steps, Step{Action: ActionAssign, Account: a.Name, AccountID: id, Group: s.Group, PermissionSet: s.PermissionSet})
			}
		}
	}
	return p
}

// Summary counts the steps of each action, in plan order.
func (p *Plan) Summary() string {
	if len(p.Steps) == 0 {
		return "no changes"
	}
	counts := map[string]int{}
	for _, s := range p.Steps {
		counts[s.Action]++
	}
	var parts []string
	for _, a := range planActions {
		if n := counts[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
	}
	return fmt.Sprintf("%d change(s): %s", len(p.Steps), strings.Join(parts, ", "))
}

// ErrBadPlan is the kind of a plan file berth cannot use.
var ErrBadPlan = errkind.New("invalid plan file", errkind.Invalid)

// maxPlan bounds a plan file: a catalog of thousands of accounts fits.
const maxPlan = 16 << 20

var accountIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// ReadPlan reads a plan file written by WritePlan and checks it: known
// planActions, the fields each needs, the catalog it carries matching its
// digest and still valid, and every rule apply relies on.
func ReadPlan(r io.Reader) (*Plan, *Catalog, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPlan+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read plan: %w", err)
	}
	if len(data) > maxPlan {
		return nil, nil, fmt.Errorf("read plan: larger than %d MiB: %w", maxPlan>>20, ErrBadPlan)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return nil, nil, fmt.Errorf("read plan: not a plan file from berth accounts plan -o: %v: %w", err, ErrBadPlan)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("read plan: data after the plan: %w", ErrBadPlan)
	}
	if p.Version != 1 {
		return nil, nil, fmt.Errorf("read plan: version %d is not supported (this berth writes version 1): %w", p.Version, ErrBadPlan)
	}
	sum := sha256.Sum256([]byte(p.CatalogText))
	if hex.EncodeToString(sum[:]) != p.CatalogHash {
		return nil, nil, fmt.Errorf("read plan: the catalog inside does not match its digest: the file was edited; make a new plan: %w", ErrBadPlan)
	}
	if len(p.Fingerprint) != 64 {
		return nil, nil, fmt.Errorf("read plan: no fingerprint of the AWS state: %w", ErrBadPlan)
	}
	cat, err := Parse(p.Catalog, []byte(p.CatalogText))
	if err != nil {
		return nil, nil, fmt.Errorf("read plan: its catalog: %w", err)
	}
	if err := p.Check(cat); err != nil {
		return nil, nil, err
	}
	return &p, cat, nil
}

// Check refuses a plan whose steps break the catalog's rules, whatever
// produced it: apply checks again what validate checked.
func (p *Plan) Check(cat *Catalog) error {
	byName := map[string]Account{}
	for _, a := range cat.Accounts {
		byName[a.Name] = a
	}
	ous := map[string]bool{}
	var walk func(prefix string, list []OU)
	walk = func(prefix string, list []OU) {
		for _, o := range list {
			ous[prefix+o.Name] = true
			walk(prefix+o.Name+"/", o.Children)
		}
	}
	walk("", cat.OUs)
	var errs []error
	for i, s := range p.Steps {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("step %d (%s %s): %s", i+1, s.Action, s.Account, fmt.Sprintf(format, args...)))
		}
		if !contains(planActions, s.Action) {
			bad("unknown action %q", s.Action)
			continue
		}
		if s.AccountID != "" && !accountIDPattern.MatchString(s.AccountID) {
			bad("account_id %q is not 12 digits", s.AccountID)
		}
		if s.Action == ActionCreateOU {
			if !ous[s.OU] {
				bad("OU %q is not in the plan's catalog", s.OU)
			}
			continue
		}
		a, ok := byName[s.Account]
		if !ok {
			bad("the account is not in the plan's catalog")
			continue
		}
		switch s.Action {
		case ActionCreateAccount:
			if s.Email != a.Email {
				bad("e-mail %q is not the catalog's %q", s.Email, a.Email)
			}
		case ActionMoveAccount:
			if s.OU != a.OU || s.From == "" {
				bad("must move from an OU to the catalog's %q", a.OU)
			}
		case ActionCreateBudget, ActionUpdateBudget:
			switch {
			case s.Amount != a.Budget.Amount:
				bad("amount %d USD is not the catalog's %d", s.Amount, a.Budget.Amount)
			case s.Amount > DefaultBudget && (s.ApprovedBy == "" || s.ApprovalRef == ""):
				bad("a budget of %d USD is above %d and the plan records no approval: add approval: {by, ref} to the catalog and plan again", s.Amount, DefaultBudget)
			case s.Action == ActionCreateBudget && checkEmail(s.Notify) != "":
				bad("budget alerts go to %q, which %s", s.Notify, checkEmail(s.Notify))
			}
		case ActionAssign:
			if Production(a.Class) {
				bad("no standing access to a %s account", a.Class)
			}
			if s.Group == "" || s.PermissionSet == "" {
				bad("needs a group and a permission set")
			}
		case ActionCloseAccount:
			if !a.Close {
				bad("the catalog does not mark the account close: true")
			}
			if a.Class == ClassManagement {
				bad("the management account cannot be closed through Organizations")
			}
			if !accountIDPattern.MatchString(s.AccountID) {
				bad("no account ID to close")
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("check plan: %w: %w", errors.Join(errs...), ErrBadPlan)
	}
	return nil
}

// WritePlan writes p as indented JSON.
func WritePlan(w io.Writer, p *Plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
