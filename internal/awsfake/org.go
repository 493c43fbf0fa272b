package awsfake

import (
	"fmt"
	"sort"
	"strings"
)

// Org plays an AWS Organization with its budgets and IAM Identity Center:
// enough of Organizations, Budgets, SSO Admin, Identity Store and STS
// AssumeRole for the account catalog's plan, apply and audit. It keeps
// state, so an apply changes what the next plan reads. Set the fields
// before the calls start; AddOrg registers it.
type Org struct {
	RootID   string
	OUs      []*OrgOU
	Accounts []*OrgAccount
	// Requests are account creations, by request ID; an IN_PROGRESS one
	// answers Polls more IN_PROGRESS states before it succeeds.
	Requests map[string]*OrgCreateRequest
	// CreatePolls is Polls of the requests CreateAccount starts;
	// CreateFailure, when set, makes them fail with that reason.
	CreatePolls   int
	CreateFailure string

	Budgets map[string]*OrgBudget // by name

	PermissionSets map[string]string // name -> ARN
	Groups         map[string]string // display name -> ID
	Assignments    map[string]bool   // "account permissionSetARN groupID"
	AssignPolls    int               // IN_PROGRESS answers before an orgAssignment succeeds

	// RoleWaits is how many AssumeRole calls of a new account's role are
	// refused (AccessDenied) before it can be assumed.
	RoleWaits int
	// CloseQuota makes CloseAccount fail with CLOSE_ACCOUNT_QUOTA_EXCEEDED;
	// ClosePolls is how many PENDING_CLOSURE answers precede SUSPENDED.
	CloseQuota bool
	ClosePolls int

	// Faults are error codes answered, one per call, before an action
	// behaves: {"CreateAccount": {"TooManyRequestsException"}}.
	Faults map[string][]string

	roleCalls  map[string]int
	closeCalls map[string]int
	assigning  map[string]*orgAssignment
	assignReqs map[string]map[string]any
	n          int
}

// OrgOU is an OU; Parent is the ID of its parent (the root or an OU).
type OrgOU struct{ ID, Name, Parent string }

// OrgAccount is a member account.
type OrgAccount struct {
	ID, Name, Email, State, Parent string
	Tags                           map[string]string
}

// OrgCreateRequest is one CreateAccount request.
type OrgCreateRequest struct {
	ID, Name, Email, State, FailureReason, AccountID string
	Polls                                            int
}

// OrgBudget is a budget of the management account.
type OrgBudget struct {
	Amount string // "500.0"
	Linked []string
	// Expression puts Linked in a FilterExpression, the newer form,
	// instead of CostFilters.
	Expression    bool
	Notifications []map[string]any // as CreateBudget sent them
}

// Account returns the account with email, or nil.
func (o *Org) Account(email string) *OrgAccount {
	for _, a := range o.Accounts {
		if strings.EqualFold(a.Email, email) {
			return a
		}
	}
	return nil
}

func (o *Org) id(prefix string) string {
	o.n++
	return fmt.Sprintf("%s%d", prefix, o.n)
}

// AddOrg makes o answer its services' calls in every region.
func (s *Server) AddOrg(o *Org) {
	if o.RootID == "" {
		o.RootID = "r-root"
	}
	for _, m := range []*map[string]string{&o.PermissionSets, &o.Groups} {
		if *m == nil {
			*m = map[string]string{}
		}
	}
	if o.Requests == nil {
		o.Requests = map[string]*OrgCreateRequest{}
	}
	if o.Budgets == nil {
		o.Budgets = map[string]*OrgBudget{}
	}
	if o.Assignments == nil {
		o.Assignments = map[string]bool{}
	}
	o.roleCalls, o.closeCalls = map[string]int{}, map[string]int{}
	o.assigning, o.assignReqs = map[string]*orgAssignment{}, map[string]map[string]any{}
	for action, h := range map[string]func(*Request) Response{
		"ListRoots":                        o.listRoots,
		"ListOrganizationalUnitsForParent": o.listOUs,
		"ListAccounts":                     o.listAccounts,
		"ListParents":                      o.listParents,
		"ListTagsForResource":              o.listTags,
		"ListCreateAccountStatus":          o.listCreateStatus,
		"CreateOrganizationalUnit":         o.createOU,
		"CreateAccount":                    o.createAccount,
		"DescribeCreateAccountStatus":      o.describeCreateStatus,
		"MoveAccount":                      o.moveAccount,
		"TagResource":                      o.tagResource,
		"UntagResource":                    o.untagResource,
		"CloseAccount":                     o.closeAccount,
		"DescribeAccount":                  o.describeAccount,
	} {
		s.Handle("organizations", action, o.faulty(action, h))
	}
	for action, h := range map[string]func(*Request) Response{
		"DescribeBudgets": o.describeBudgets,
		"DescribeBudget":  o.describeBudget,
		"CreateBudget":    o.createBudget,
		"UpdateBudget":    o.updateBudget,
	} {
		s.Handle("budgets", action, o.faulty(action, h))
	}
	for action, h := range map[string]func(*Request) Response{
		"ListInstances":                           o.listInstances,
		"ListPermissionSets":                      o.listPermissionSets,
		"DescribePermissionSet":                   o.describePermissionSet,
		"ListAccountAssignments":                  o.listAssignments,
		"CreateAccountAssignment":                 o.createAssignment,
		"DescribeAccountAssignmentCreationStatus": o.describeAssignment,
	} {
		s.Handle("sso", action, o.faulty(action, h))
	}
	s.Handle("identitystore", "GetGroupId", o.faulty("GetGroupId", o.getGroupID))
	s.Handle("sts", "AssumeRole", o.assumeRole)
}

func (o *Org) faulty(action string, h Handler) Handler {
	return func(r *Request) Response {
		if f := o.Faults[action]; len(f) > 0 {
			o.Faults[action] = f[1:]
			return JSONError(400, f[0], "awsfake fault for "+action)
		}
		return h(r)
	}
}

func orgStr(r *Request, key string) string {
	s, _ := r.JSON[key].(string)
	return s
}

const orgEpoch = 1767348000 // 2026-01-02T10:00:00Z

func (o *Org) listRoots(*Request) Response {
	return JSON(map[string]any{"Roots": []any{map[string]any{"Id": o.RootID, "Name": "Root",
		"Arn": "arn:aws:organizations::111111111111:root/o-fake/" + o.RootID, "PolicyTypes": []any{}}}})
}

func (o *Org) listOUs(r *Request) Response {
	list := []any{}
	for _, ou := range o.OUs {
		if ou.Parent == orgStr(r, "ParentId") {
			list = append(list, map[string]any{"Id": ou.ID, "Name": ou.Name, "Arn": "arn:aws:organizations::111111111111:ou/o-fake/" + ou.ID})
		}
	}
	return JSON(map[string]any{"OrganizationalUnits": list})
}

func (a *OrgAccount) json() map[string]any {
	return map[string]any{"Id": a.ID, "Name": a.Name, "Email": a.Email, "State": a.State, "Status": orgStatus(a.State),
		"Arn": "arn:aws:organizations::111111111111:account/o-fake/" + a.ID, "JoinedMethod": "CREATED", "JoinedTimestamp": orgEpoch}
}

// orgStatus is the retired Status field's value for a State.
func orgStatus(state string) string {
	switch state {
	case "SUSPENDED", "PENDING_CLOSURE":
		return state
	case "CLOSED":
		return "SUSPENDED"
	}
	return "ACTIVE"
}

func (o *Org) listAccounts(*Request) Response {
	list := []any{}
	for _, a := range o.Accounts {
		list = append(list, a.json())
	}
	return JSON(map[string]any{"Accounts": list})
}

func (o *Org) account(id string) *OrgAccount {
	for _, a := range o.Accounts {
		if a.ID == id {
			return a
		}
	}
	return nil
}

func orgNotFound(what string) Response {
	return JSONError(400, "AccountNotFoundException", what+" not found")
}

func (o *Org) listParents(r *Request) Response {
	a := o.account(orgStr(r, "ChildId"))
	if a == nil {
		return orgNotFound("account " + orgStr(r, "ChildId"))
	}
	typ := "ORGANIZATIONAL_UNIT"
	if a.Parent == o.RootID {
		typ = "ROOT"
	}
	return JSON(map[string]any{"Parents": []any{map[string]any{"Id": a.Parent, "Type": typ}}})
}

func (o *Org) listTags(r *Request) Response {
	a := o.account(orgStr(r, "ResourceId"))
	if a == nil {
		return orgNotFound("account " + orgStr(r, "ResourceId"))
	}
	list := []any{}
	keys := make([]string, 0, len(a.Tags))
	for k := range a.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		list = append(list, map[string]any{"Key": k, "Value": a.Tags[k]})
	}
	return JSON(map[string]any{"Tags": list})
}

func (q *OrgCreateRequest) json() map[string]any {
	m := map[string]any{"Id": q.ID, "AccountName": q.Name, "State": q.State, "RequestedTimestamp": orgEpoch}
	if q.AccountID != "" {
		m["AccountId"] = q.AccountID
	}
	if q.FailureReason != "" {
		m["FailureReason"] = q.FailureReason
	}
	return m
}

func (o *Org) listCreateStatus(r *Request) Response {
	states, _ := r.JSON["States"].([]any)
	ids := make([]string, 0, len(o.Requests))
	for id := range o.Requests {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	list := []any{}
	for _, id := range ids {
		q := o.Requests[id]
		keep := len(states) == 0
		for _, s := range states {
			keep = keep || s == q.State
		}
		if keep {
			list = append(list, q.json())
		}
	}
	return JSON(map[string]any{"CreateAccountStatuses": list})
}

func (o *Org) createOU(r *Request) Response {
	ou := &OrgOU{ID: o.id("ou-new-"), Name: orgStr(r, "Name"), Parent: orgStr(r, "ParentId")}
	o.OUs = append(o.OUs, ou)
	return JSON(map[string]any{"OrganizationalUnit": map[string]any{"Id": ou.ID, "Name": ou.Name}})
}

func (o *Org) createAccount(r *Request) Response {
	q := &OrgCreateRequest{ID: o.id("car-"), Name: orgStr(r, "AccountName"), Email: orgStr(r, "Email"), State: "IN_PROGRESS", Polls: o.CreatePolls}
	o.Requests[q.ID] = q
	return JSON(map[string]any{"CreateAccountStatus": q.json()})
}

func (o *Org) describeCreateStatus(r *Request) Response {
	q := o.Requests[orgStr(r, "CreateAccountRequestId")]
	if q == nil {
		return JSONError(400, "CreateAccountStatusNotFoundException", "no such request")
	}
	if q.State == "IN_PROGRESS" {
		switch {
		case q.Polls > 0:
			q.Polls--
		case o.CreateFailure != "":
			q.State, q.FailureReason = "FAILED", o.CreateFailure
		default:
			q.State = "SUCCEEDED"
			q.AccountID = fmt.Sprintf("%012d", 200000000000+len(o.Accounts))
			o.Accounts = append(o.Accounts, &OrgAccount{ID: q.AccountID, Name: q.Name, Email: q.Email, State: "ACTIVE", Parent: o.RootID, Tags: map[string]string{}})
		}
	}
	return JSON(map[string]any{"CreateAccountStatus": q.json()})
}

func (o *Org) moveAccount(r *Request) Response {
	a := o.account(orgStr(r, "AccountId"))
	switch {
	case a == nil:
		return orgNotFound("account")
	case a.Parent == orgStr(r, "DestinationParentId"):
		return JSONError(400, "DuplicateAccountException", "already there")
	case a.Parent != orgStr(r, "SourceParentId"):
		return JSONError(400, "SourceParentNotFoundException", "not in that parent")
	}
	a.Parent = orgStr(r, "DestinationParentId")
	return JSON(map[string]any{})
}

func (o *Org) tagResource(r *Request) Response {
	a := o.account(orgStr(r, "ResourceId"))
	if a == nil {
		return orgNotFound("account")
	}
	tags, _ := r.JSON["Tags"].([]any)
	for _, t := range tags {
		m, _ := t.(map[string]any)
		k, _ := m["Key"].(string)
		v, _ := m["Value"].(string)
		a.Tags[k] = v
	}
	return JSON(map[string]any{})
}

func (o *Org) untagResource(r *Request) Response {
	a := o.account(orgStr(r, "ResourceId"))
	if a == nil {
		return orgNotFound("account")
	}
	keys, _ := r.JSON["TagKeys"].([]any)
	for _, k := range keys {
		s, _ := k.(string)
		delete(a.Tags, s)
	}
	return JSON(map[string]any{})
}

func (o *Org) closeAccount(r *Request) Response {
	a := o.account(orgStr(r, "AccountId"))
	switch {
	case a == nil:
		return orgNotFound("account")
	case o.CloseQuota:
		return orgWithStatus(JSON(map[string]any{"__type": "ConstraintViolationException", "Message": "You have exceeded close account quota for the past 30 days.", "Reason": "CLOSE_ACCOUNT_QUOTA_EXCEEDED"}), 400)
	case a.State != "ACTIVE":
		return JSONError(400, "AccountAlreadyClosedException", "closed already")
	}
	a.State = "PENDING_CLOSURE"
	o.closeCalls[a.ID] = o.ClosePolls
	return JSON(map[string]any{})
}

func orgWithStatus(r Response, code int) Response {
	r.Status = code
	return r
}

func (o *Org) describeAccount(r *Request) Response {
	a := o.account(orgStr(r, "AccountId"))
	if a == nil {
		return orgNotFound("account")
	}
	if a.State == "PENDING_CLOSURE" {
		if o.closeCalls[a.ID] > 0 {
			o.closeCalls[a.ID]--
		} else {
			a.State = "SUSPENDED"
		}
	}
	return JSON(map[string]any{"Account": a.json()})
}

func (b *OrgBudget) json(name string) map[string]any {
	m := map[string]any{"BudgetName": name, "BudgetLimit": map[string]any{"Amount": b.Amount, "Unit": "USD"},
		"TimeUnit": "MONTHLY", "BudgetType": "COST",
		"CalculatedSpend": map[string]any{"ActualSpend": map[string]any{"Amount": "12.5", "Unit": "USD"}},
		"TimePeriod":      map[string]any{"Start": orgEpoch, "End": 3706214400}}
	switch {
	case len(b.Linked) > 0 && b.Expression:
		m["FilterExpression"] = map[string]any{"And": []any{
			map[string]any{"Dimensions": map[string]any{"Key": "LINKED_ACCOUNT", "Values": b.Linked}},
			map[string]any{"Dimensions": map[string]any{"Key": "SERVICE", "Values": []string{"Amazon Elastic Compute Cloud - Compute"}}},
		}}
	case len(b.Linked) > 0:
		m["CostFilters"] = map[string]any{"LinkedAccount": b.Linked}
	}
	return m
}

func (o *Org) describeBudgets(*Request) Response {
	if len(o.Budgets) == 0 {
		// What Budgets answers for an account without budgets.
		return JSONError(400, "NotFoundException", "[Exception=NotFoundException] Failed to get budgets - Unable to get budgets for account: 111111111111")
	}
	names := make([]string, 0, len(o.Budgets))
	for n := range o.Budgets {
		names = append(names, n)
	}
	sort.Strings(names)
	list := []any{}
	for _, n := range names {
		list = append(list, o.Budgets[n].json(n))
	}
	return JSON(map[string]any{"Budgets": list})
}

func (o *Org) describeBudget(r *Request) Response {
	b := o.Budgets[orgStr(r, "BudgetName")]
	if b == nil {
		return JSONError(400, "NotFoundException", "no such budget")
	}
	return JSON(map[string]any{"Budget": b.json(orgStr(r, "BudgetName"))})
}

func orgBudgetOf(m map[string]any) (string, *OrgBudget) {
	name, _ := m["BudgetName"].(string)
	b := &OrgBudget{}
	if lim, ok := m["BudgetLimit"].(map[string]any); ok {
		b.Amount, _ = lim["Amount"].(string)
	}
	if cf, ok := m["CostFilters"].(map[string]any); ok {
		ids, _ := cf["LinkedAccount"].([]any)
		for _, id := range ids {
			s, _ := id.(string)
			b.Linked = append(b.Linked, s)
		}
	}
	return name, b
}

func (o *Org) createBudget(r *Request) Response {
	m, _ := r.JSON["Budget"].(map[string]any)
	name, b := orgBudgetOf(m)
	if o.Budgets[name] != nil {
		return JSONError(400, "DuplicateRecordException", "exists")
	}
	ns, _ := r.JSON["NotificationsWithSubscribers"].([]any)
	for _, n := range ns {
		nm, _ := n.(map[string]any)
		b.Notifications = append(b.Notifications, nm)
	}
	o.Budgets[name] = b
	return JSON(map[string]any{})
}

func (o *Org) updateBudget(r *Request) Response {
	m, _ := r.JSON["NewBudget"].(map[string]any)
	if _, ok := m["CalculatedSpend"]; ok {
		return JSONError(400, "InvalidParameterException", "CalculatedSpend cannot be updated")
	}
	name, b := orgBudgetOf(m)
	old := o.Budgets[name]
	if old == nil {
		return JSONError(400, "NotFoundException", "no such budget")
	}
	old.Amount, old.Linked = b.Amount, b.Linked
	return JSON(map[string]any{})
}

// OrgInstanceARN and OrgIdentityStoreID name the fake Identity Center.
const (
	OrgInstanceARN     = "arn:aws:sso:::instance/ssoins-1111111111111111"
	OrgIdentityStoreID = "d-1111111111"
)

func (o *Org) listInstances(*Request) Response {
	return JSON(map[string]any{"Instances": []any{map[string]any{"InstanceArn": OrgInstanceARN, "IdentityStoreId": OrgIdentityStoreID, "Status": "ACTIVE"}}})
}

func (o *Org) listPermissionSets(*Request) Response {
	arns := []string{}
	for _, arn := range o.PermissionSets {
		arns = append(arns, arn)
	}
	sort.Strings(arns)
	return JSON(map[string]any{"PermissionSets": arns})
}

func (o *Org) describePermissionSet(r *Request) Response {
	for name, arn := range o.PermissionSets {
		if arn == orgStr(r, "PermissionSetArn") {
			return JSON(map[string]any{"PermissionSet": map[string]any{"Name": name, "PermissionSetArn": arn, "SessionDuration": "PT1H", "CreatedDate": orgEpoch}})
		}
	}
	return JSONError(400, "ResourceNotFoundException", "no such permission set")
}

func (o *Org) listAssignments(r *Request) Response {
	list := []any{}
	keys := make([]string, 0, len(o.Assignments))
	for k := range o.Assignments {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := strings.Fields(k)
		if f[0] == orgStr(r, "AccountId") && f[1] == orgStr(r, "PermissionSetArn") {
			list = append(list, map[string]any{"AccountId": f[0], "PermissionSetArn": f[1], "PrincipalId": f[2], "PrincipalType": "GROUP"})
		}
	}
	return JSON(map[string]any{"AccountAssignments": list})
}

type orgAssignment struct {
	key   string
	polls int
}

func (o *Org) assignStatus(id, status string, r map[string]any) Response {
	return JSON(map[string]any{"AccountAssignmentCreationStatus": map[string]any{"RequestId": id, "Status": status,
		"TargetId": r["TargetId"], "TargetType": "AWS_ACCOUNT", "PermissionSetArn": r["PermissionSetArn"],
		"PrincipalId": r["PrincipalId"], "PrincipalType": "GROUP", "CreatedDate": orgEpoch}})
}

func (o *Org) createAssignment(r *Request) Response {
	id := o.id("assign-")
	o.assigning[id] = &orgAssignment{key: orgStr(r, "TargetId") + " " + orgStr(r, "PermissionSetArn") + " " + orgStr(r, "PrincipalId"), polls: o.AssignPolls}
	o.assignReqs[id] = r.JSON
	return o.assignStatus(id, "IN_PROGRESS", r.JSON)
}

func (o *Org) describeAssignment(r *Request) Response {
	id := orgStr(r, "AccountAssignmentCreationRequestId")
	a := o.assigning[id]
	if a == nil {
		return JSONError(400, "ResourceNotFoundException", "no such request")
	}
	if a.polls > 0 {
		a.polls--
		return o.assignStatus(id, "IN_PROGRESS", o.assignReqs[id])
	}
	o.Assignments[a.key] = true
	return o.assignStatus(id, "SUCCEEDED", o.assignReqs[id])
}

func (o *Org) getGroupID(r *Request) Response {
	alt, _ := r.JSON["AlternateIdentifier"].(map[string]any)
	ua, _ := alt["UniqueAttribute"].(map[string]any)
	name, _ := ua["AttributeValue"].(string)
	if path, _ := ua["AttributePath"].(string); path != "DisplayName" || o.Groups[name] == "" {
		return JSONError(400, "ResourceNotFoundException", "GROUP not found")
	}
	return JSON(map[string]any{"GroupId": o.Groups[name], "IdentityStoreId": OrgIdentityStoreID})
}

func (o *Org) assumeRole(r *Request) Response {
	role := r.Form.Get("RoleArn")
	if o.roleCalls[role] < o.RoleWaits {
		o.roleCalls[role]++
		return QueryError(403, "AccessDenied", "not authorized to perform: sts:AssumeRole on resource: "+role)
	}
	return AssumeRole()(r)
}
