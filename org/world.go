package org

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/budgets"
	btypes "github.com/aws/aws-sdk-go-v2/service/budgets/types"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	otypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"

	"github.com/berth-dev/berth/errkind"
)

// World is what AWS holds for a catalog, as plan reads it. Its fingerprint
// tells apply whether anything changed since the plan.
type World struct {
	RootID string `json:"root_id"`
	// OUs maps each OU path ("Workloads/Dev") to its ID.
	OUs map[string]string `json:"ous"`
	// Accounts is every account of the organisation, by ID.
	Accounts []RemoteAccount `json:"accounts"`
	// Creating are account creations in progress, by account name
	// (CreateAccountStatus names no e-mail), with their request IDs.
	Creating map[string]string `json:"creating"`
	// Budgets are the budgets of the management account, by name.
	Budgets map[string]RemoteBudget `json:"budgets"`

	// Identity Center, read only when the catalog grants standing access.
	Instance       string            `json:"instance,omitempty"`
	IdentityStore  string            `json:"identity_store,omitempty"`
	PermissionSets map[string]string `json:"permission_sets,omitempty"` // name -> ARN
	Groups         map[string]string `json:"groups,omitempty"`          // display name -> ID
	// Assignments holds "accountID permissionSetARN groupID" of the
	// group assignments that exist for the permission sets above.
	Assignments map[string]bool `json:"assignments,omitempty"`
}

// RemoteAccount is an account as Organizations describes it. Parent and
// Tags are read only for accounts of the catalog.
type RemoteAccount struct {
	ID     string            `json:"id"`
	Name   string            `json:"name"`
	Email  string            `json:"email"`
	State  string            `json:"state"`
	Parent string            `json:"parent,omitempty"` // OU path or Root
	Tags   map[string]string `json:"tags,omitempty"`
}

// RemoteBudget is a cost budget of the management account.
type RemoteBudget struct {
	Amount float64  `json:"amount"`
	Unit   string   `json:"unit"`
	Linked []string `json:"linked,omitempty"` // LinkedAccount cost filter
}

// Account returns the organisation's account with email, if any.
func (w *World) Account(email string) (RemoteAccount, bool) {
	for _, a := range w.Accounts {
		if strings.EqualFold(a.Email, email) {
			return a, true
		}
	}
	return RemoteAccount{}, false
}

// managed reports whether plan keeps a in shape: not to be closed, and
// not closed or suspended already.
func (w *World) managed(a Account) bool {
	r, ok := w.Account(a.Email)
	return !a.Close && (!ok || liveState(r.State))
}

func liveState(state string) bool { return state == "ACTIVE" || state == "PENDING_ACTIVATION" }

// Fingerprint is a digest of everything plan read.
func (w *World) Fingerprint() string {
	b, err := json.Marshal(w) // maps marshal with sorted keys
	if err != nil {
		panic(err) // plain data
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// BudgetName is the name of an account's budget in the management account.
func BudgetName(account string) string { return "berth-" + account }

// observe reads what AWS holds for cat.
func (c *Clients) observe(ctx context.Context, cat *Catalog, p pacer) (*World, error) {
	w := &World{OUs: map[string]string{}, Creating: map[string]string{}, Budgets: map[string]RemoteBudget{}}
	if err := c.readTree(ctx, w, p); err != nil {
		return nil, err
	}
	if err := c.readAccounts(ctx, w, cat, p); err != nil {
		return nil, err
	}
	if err := c.readBudgets(ctx, w, p); err != nil {
		return nil, err
	}
	if err := c.readIdentityCenter(ctx, w, cat, p); err != nil {
		return nil, err
	}
	return w, nil
}

func (c *Clients) readTree(ctx context.Context, w *World, p pacer) error {
	var roots *organizations.ListRootsOutput
	if err := p.retry(ctx, func() (err error) {
		roots, err = c.Org.ListRoots(ctx, &organizations.ListRootsInput{})
		return err
	}); err != nil {
		if errors.Is(err, errkind.PermissionDenied) || isCode(err, "AWSOrganizationsNotInUseException") {
			return fmt.Errorf("list organisation roots: %w; berth accounts runs with credentials of the organisation's management account (or a delegated administrator)", err)
		}
		return fmt.Errorf("list organisation roots: %w", err)
	}
	if len(roots.Roots) == 0 {
		return fmt.Errorf("list organisation roots: %w", errkind.New("the organisation has no root: call berth from its management account", errkind.NotFound))
	}
	w.RootID = aws.ToString(roots.Roots[0].Id)
	w.OUs[RootOU] = w.RootID
	type parent struct{ id, path string }
	queue := []parent{{w.RootID, ""}}
	for len(queue) > 0 {
		par := queue[0]
		queue = queue[1:]
		var token *string
		for {
			var out *organizations.ListOrganizationalUnitsForParentOutput
			if err := p.retry(ctx, func() (err error) {
				out, err = c.Org.ListOrganizationalUnitsForParent(ctx, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(par.id), NextToken: token})
				return err
			}); err != nil {
				return fmt.Errorf("list OUs under %s: %w", orRoot(par.path), err)
			}
			for _, ou := range out.OrganizationalUnits {
				path := aws.ToString(ou.Name)
				if par.path != "" {
					path = par.path + "/" + path
				}
				w.OUs[path] = aws.ToString(ou.Id)
				queue = append(queue, parent{aws.ToString(ou.Id), path})
			}
			if token = out.NextToken; token == nil {
				break
			}
		}
	}
	return nil
}

func orRoot(path string) string {
	if path == "" {
		return RootOU
	}
	return path
}

func (w *World) ouPath(id string) string {
	for path, x := range w.OUs {
		if x == id {
			return path
		}
	}
	return id
}

func accountState(a otypes.Account) string {
	if a.State != "" {
		return string(a.State)
	}
	return string(a.Status)
}

func (c *Clients) listAccounts(ctx context.Context, p pacer) ([]RemoteAccount, error) {
	var all []RemoteAccount
	var token *string
	for {
		var out *organizations.ListAccountsOutput
		if err := p.retry(ctx, func() (err error) {
			out, err = c.Org.ListAccounts(ctx, &organizations.ListAccountsInput{NextToken: token})
			return err
		}); err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range out.Accounts {
			all = append(all, RemoteAccount{ID: aws.ToString(a.Id), Name: aws.ToString(a.Name), Email: aws.ToString(a.Email), State: accountState(a)})
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return all, nil
}

// creating returns the account creations in progress, by account name.
func (c *Clients) creating(ctx context.Context, p pacer) (map[string]string, error) {
	m := map[string]string{}
	var token *string
	for {
		var out *organizations.ListCreateAccountStatusOutput
		if err := p.retry(ctx, func() (err error) {
			out, err = c.Org.ListCreateAccountStatus(ctx, &organizations.ListCreateAccountStatusInput{
				States: []otypes.CreateAccountState{otypes.CreateAccountStateInProgress}, NextToken: token})
			return err
		}); err != nil {
			return nil, fmt.Errorf("list account creations in progress: %w", err)
		}
		for _, s := range out.CreateAccountStatuses {
			m[aws.ToString(s.AccountName)] = aws.ToString(s.Id)
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	return m, nil
}

func (c *Clients) readAccounts(ctx context.Context, w *World, cat *Catalog, p pacer) error {
	var err error
	if w.Accounts, err = c.listAccounts(ctx, p); err != nil {
		return err
	}
	if w.Creating, err = c.creating(ctx, p); err != nil {
		return err
	}
	for _, a := range cat.Accounts {
		i := -1
		for j, r := range w.Accounts {
			if strings.EqualFold(r.Email, a.Email) {
				i = j
			}
		}
		if i < 0 {
			continue
		}
		r := &w.Accounts[i]
		var parents *organizations.ListParentsOutput
		if err := p.retry(ctx, func() (err error) {
			parents, err = c.Org.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String(r.ID)})
			return err
		}); err != nil {
			return fmt.Errorf("find the OU of account %s (%s): %w", a.Name, r.ID, err)
		}
		if len(parents.Parents) > 0 {
			r.Parent = w.ouPath(aws.ToString(parents.Parents[0].Id))
		}
		r.Tags = map[string]string{}
		var token *string
		for {
			var out *organizations.ListTagsForResourceOutput
			if err := p.retry(ctx, func() (err error) {
				out, err = c.Org.ListTagsForResource(ctx, &organizations.ListTagsForResourceInput{ResourceId: aws.String(r.ID), NextToken: token})
				return err
			}); err != nil {
				return fmt.Errorf("list tags of account %s (%s): %w", a.Name, r.ID, err)
			}
			for _, t := range out.Tags {
				r.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			if token = out.NextToken; token == nil {
				break
			}
		}
	}
	return nil
}

func (c *Clients) readBudgets(ctx context.Context, w *World, p pacer) error {
	var token *string
	for {
		var out *budgets.DescribeBudgetsOutput
		err := p.retry(ctx, func() (err error) {
			out, err = c.Budgets.DescribeBudgets(ctx, &budgets.DescribeBudgetsInput{AccountId: aws.String(c.Account), NextToken: token})
			return err
		})
		if isCode(err, "NotFoundException") {
			return nil // Budgets answers "not found" when an account has none
		}
		if err != nil {
			return fmt.Errorf("list budgets of account %s: %w", c.Account, err)
		}
		for _, b := range out.Budgets {
			rb := RemoteBudget{Linked: append(b.CostFilters["LinkedAccount"], linkedIn(b.FilterExpression)...)}
			if b.BudgetLimit != nil {
				rb.Amount, _ = strconv.ParseFloat(aws.ToString(b.BudgetLimit.Amount), 64)
				rb.Unit = aws.ToString(b.BudgetLimit.Unit)
			}
			w.Budgets[aws.ToString(b.BudgetName)] = rb
		}
		if token = out.NextToken; token == nil {
			return nil
		}
	}
}

// linkedIn returns the linked accounts a budget's filter expression
// selects; Not branches select others, so they do not count.
func linkedIn(e *btypes.Expression) []string {
	if e == nil {
		return nil
	}
	var out []string
	if d := e.Dimensions; d != nil && d.Key == btypes.DimensionLinkedAccount {
		out = append(out, d.Values...)
	}
	for i := range e.And {
		out = append(out, linkedIn(&e.And[i])...)
	}
	for i := range e.Or {
		out = append(out, linkedIn(&e.Or[i])...)
	}
	return out
}

// standing returns the standing access of an account, {owner} replaced.
func (cat *Catalog) standing(a Account) []Standing {
	var out []Standing
	for _, s := range cat.AccessClasses[a.Class].Standing {
		s.Group = strings.ReplaceAll(s.Group, OwnerPlaceholder, a.Owner)
		out = append(out, s)
	}
	return out
}

func assignmentKey(account, ps, group string) string { return account + " " + ps + " " + group }

func (c *Clients) readIdentityCenter(ctx context.Context, w *World, cat *Catalog, p pacer) error {
	groups, sets := map[string]bool{}, map[string]bool{}
	for _, a := range cat.Accounts {
		if w.managed(a) {
			for _, s := range cat.standing(a) {
				groups[s.Group], sets[s.PermissionSet] = true, true
			}
		}
	}
	if len(groups) == 0 {
		return nil
	}
	var inst *ssoadmin.ListInstancesOutput
	if err := p.retry(ctx, func() (err error) {
		inst, err = c.SSO.ListInstances(ctx, &ssoadmin.ListInstancesInput{})
		return err
	}); err != nil {
		return fmt.Errorf("find the IAM Identity Center instance: %w", err)
	}
	if len(inst.Instances) == 0 {
		return fmt.Errorf("find the IAM Identity Center instance: %w", errkind.New("none in this region: pass --sso-region with Identity Center's home region, or enable Identity Center", errkind.Invalid))
	}
	w.Instance = aws.ToString(inst.Instances[0].InstanceArn)
	w.IdentityStore = aws.ToString(inst.Instances[0].IdentityStoreId)
	w.PermissionSets, w.Groups, w.Assignments = map[string]string{}, map[string]string{}, map[string]bool{}

	var token *string
	for {
		var out *ssoadmin.ListPermissionSetsOutput
		if err := p.retry(ctx, func() (err error) {
			out, err = c.SSO.ListPermissionSets(ctx, &ssoadmin.ListPermissionSetsInput{InstanceArn: aws.String(w.Instance), NextToken: token})
			return err
		}); err != nil {
			return fmt.Errorf("list permission sets: %w", err)
		}
		for _, arn := range out.PermissionSets {
			var d *ssoadmin.DescribePermissionSetOutput
			if err := p.retry(ctx, func() (err error) {
				d, err = c.SSO.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: aws.String(w.Instance), PermissionSetArn: aws.String(arn)})
				return err
			}); err != nil {
				return fmt.Errorf("describe permission set %s: %w", arn, err)
			}
			if d.PermissionSet != nil && sets[aws.ToString(d.PermissionSet.Name)] {
				w.PermissionSets[aws.ToString(d.PermissionSet.Name)] = arn
			}
		}
		if token = out.NextToken; token == nil {
			break
		}
	}
	for _, name := range sortedSet(sets) {
		if _, ok := w.PermissionSets[name]; !ok {
			return fmt.Errorf("find permission set %s: %w", name, errkind.New("Identity Center has no permission set of that name: create it, or fix permission_set in the catalog's access_classes", errkind.Invalid))
		}
	}
	for _, name := range sortedSet(groups) {
		var out *identitystore.GetGroupIdOutput
		err := p.retry(ctx, func() (err error) {
			out, err = c.Identity.GetGroupId(ctx, &identitystore.GetGroupIdInput{
				IdentityStoreId: aws.String(w.IdentityStore),
				AlternateIdentifier: &istypes.AlternateIdentifierMemberUniqueAttribute{Value: istypes.UniqueAttribute{
					AttributePath: aws.String("DisplayName"), AttributeValue: document.NewLazyDocument(name)}},
			})
			return err
		})
		if isCode(err, "ResourceNotFoundException") {
			return fmt.Errorf("find group %s: %w", name, errkind.New("the Identity Store has no group of that display name: create it, or fix group in the catalog's access_classes", errkind.Invalid))
		}
		if err != nil {
			return fmt.Errorf("find group %s: %w", name, err)
		}
		w.Groups[name] = aws.ToString(out.GroupId)
	}
	for _, a := range cat.Accounts {
		r, ok := w.Account(a.Email)
		if !ok || !w.managed(a) {
			continue
		}
		listed := map[string]bool{}
		for _, s := range cat.standing(a) {
			ps := w.PermissionSets[s.PermissionSet]
			if listed[ps] {
				continue
			}
			listed[ps] = true
			var token *string
			for {
				var out *ssoadmin.ListAccountAssignmentsOutput
				if err := p.retry(ctx, func() (err error) {
					out, err = c.SSO.ListAccountAssignments(ctx, &ssoadmin.ListAccountAssignmentsInput{
						InstanceArn: aws.String(w.Instance), AccountId: aws.String(r.ID), PermissionSetArn: aws.String(ps), NextToken: token})
					return err
				}); err != nil {
					return fmt.Errorf("list assignments of %s in account %s: %w", s.PermissionSet, a.Name, err)
				}
				for _, as := range out.AccountAssignments {
					if as.PrincipalType == "GROUP" {
						w.Assignments[assignmentKey(r.ID, ps, aws.ToString(as.PrincipalId))] = true
					}
				}
				if token = out.NextToken; token == nil {
					break
				}
			}
		}
	}
	return nil
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
