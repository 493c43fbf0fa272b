package access

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/org"
)

// kind sorts an AWS error into berth's kinds by its error code.
func kind(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return errkind.Unavailable
	}
	switch ae.ErrorCode() {
	case "ResourceNotFoundException", "AccountNotFoundException":
		return errkind.NotFound
	case "AccessDeniedException", "AccessDeniedForDependencyException", "AWSOrganizationsNotInUseException":
		return errkind.PermissionDenied
	case "ConflictException":
		return errkind.Conflict
	case "ValidationException", "InvalidInputException":
		return errkind.Invalid
	}
	return errkind.Unavailable
}

// IdentityStoreAPI is the part of the Identity Store client Directory uses.
type IdentityStoreAPI interface {
	GetUserId(context.Context, *identitystore.GetUserIdInput, ...func(*identitystore.Options)) (*identitystore.GetUserIdOutput, error)
	GetGroupId(context.Context, *identitystore.GetGroupIdInput, ...func(*identitystore.Options)) (*identitystore.GetGroupIdOutput, error)
	ListGroupMembershipsForMember(context.Context, *identitystore.ListGroupMembershipsForMemberInput, ...func(*identitystore.Options)) (*identitystore.ListGroupMembershipsForMemberOutput, error)
}

// IdentityStore is a Directory over an Identity Store: users are found by
// their primary e-mail address, groups by display name.
type IdentityStore struct {
	API     IdentityStoreAPI
	StoreID string // d-1234567890
}

func unique(path, value string) istypes.AlternateIdentifier {
	return &istypes.AlternateIdentifierMemberUniqueAttribute{Value: istypes.UniqueAttribute{
		AttributePath: aws.String(path), AttributeValue: document.NewLazyDocument(value)}}
}

// UserID implements Directory.
func (s *IdentityStore) UserID(ctx context.Context, email string) (string, error) {
	out, err := s.API.GetUserId(ctx, &identitystore.GetUserIdInput{IdentityStoreId: aws.String(s.StoreID), AlternateIdentifier: unique("emails.value", email)})
	if err != nil {
		if kind(err) == errkind.NotFound {
			return "", fmt.Errorf("find %s in identity store %s: no user has this e-mail address: %w", email, s.StoreID, errkind.NotFound)
		}
		return "", fmt.Errorf("find %s in identity store %s: %w: %w", email, s.StoreID, err, kind(err))
	}
	return aws.ToString(out.UserId), nil
}

// GroupID implements Directory.
func (s *IdentityStore) GroupID(ctx context.Context, name string) (string, error) {
	out, err := s.API.GetGroupId(ctx, &identitystore.GetGroupIdInput{IdentityStoreId: aws.String(s.StoreID), AlternateIdentifier: unique("displayName", name)})
	if err != nil {
		return "", fmt.Errorf("find group %s in identity store %s: %w: %w", name, s.StoreID, err, kind(err))
	}
	return aws.ToString(out.GroupId), nil
}

// GroupIDs implements Directory.
func (s *IdentityStore) GroupIDs(ctx context.Context, userID string) (map[string]bool, error) {
	ids := map[string]bool{}
	p := identitystore.NewListGroupMembershipsForMemberPaginator(s.API, &identitystore.ListGroupMembershipsForMemberInput{
		IdentityStoreId: aws.String(s.StoreID), MemberId: &istypes.MemberIdMemberUserId{Value: userID}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list groups of user %s: %w: %w", userID, err, kind(err))
		}
		for _, m := range page.GroupMemberships {
			ids[aws.ToString(m.GroupId)] = true
		}
	}
	return ids, nil
}

// SSOAdminAPI is the part of the SSO Admin client Center uses.
type SSOAdminAPI interface {
	CreateAccountAssignment(context.Context, *ssoadmin.CreateAccountAssignmentInput, ...func(*ssoadmin.Options)) (*ssoadmin.CreateAccountAssignmentOutput, error)
	DeleteAccountAssignment(context.Context, *ssoadmin.DeleteAccountAssignmentInput, ...func(*ssoadmin.Options)) (*ssoadmin.DeleteAccountAssignmentOutput, error)
	DescribeAccountAssignmentCreationStatus(context.Context, *ssoadmin.DescribeAccountAssignmentCreationStatusInput, ...func(*ssoadmin.Options)) (*ssoadmin.DescribeAccountAssignmentCreationStatusOutput, error)
	DescribeAccountAssignmentDeletionStatus(context.Context, *ssoadmin.DescribeAccountAssignmentDeletionStatusInput, ...func(*ssoadmin.Options)) (*ssoadmin.DescribeAccountAssignmentDeletionStatusOutput, error)
	ListPermissionSets(context.Context, *ssoadmin.ListPermissionSetsInput, ...func(*ssoadmin.Options)) (*ssoadmin.ListPermissionSetsOutput, error)
	DescribePermissionSet(context.Context, *ssoadmin.DescribePermissionSetInput, ...func(*ssoadmin.Options)) (*ssoadmin.DescribePermissionSetOutput, error)
}

// Center is an Assigner over IAM Identity Center. Assignment calls are
// asynchronous in Identity Center: Center polls their status until it is
// final, sleeping through Sleep so tests run without waiting.
type Center struct {
	API         SSOAdminAPI
	InstanceARN string
	// Poll is the first wait between status checks (1s when zero); it
	// doubles up to 10s. Polls is the most checks (60 when zero).
	Poll  time.Duration
	Polls int
	// Sleep waits (a timer honouring ctx when nil).
	Sleep func(ctx context.Context, d time.Duration) error

	mu       sync.Mutex
	permSets map[string]string // name -> ARN, read once
}

func (c *Center) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Assign implements Assigner: CreateAccountAssignment, then
// DescribeAccountAssignmentCreationStatus until SUCCEEDED or FAILED.
func (c *Center) Assign(ctx context.Context, k GrantKey) error {
	out, err := c.API.CreateAccountAssignment(ctx, &ssoadmin.CreateAccountAssignmentInput{
		InstanceArn: aws.String(c.InstanceARN), PermissionSetArn: aws.String(k.PermissionSetARN),
		PrincipalId: aws.String(k.PrincipalID), PrincipalType: ssotypes.PrincipalTypeUser,
		TargetId: aws.String(k.AccountID), TargetType: ssotypes.TargetTypeAwsAccount})
	if err != nil {
		return fmt.Errorf("create account assignment %s: %w: %w", k, err, kind(err))
	}
	return c.wait(ctx, "create account assignment "+k.String(), out.AccountAssignmentCreationStatus, func(id *string) (*ssotypes.AccountAssignmentOperationStatus, error) {
		o, err := c.API.DescribeAccountAssignmentCreationStatus(ctx, &ssoadmin.DescribeAccountAssignmentCreationStatusInput{
			InstanceArn: aws.String(c.InstanceARN), AccountAssignmentCreationRequestId: id})
		if err != nil {
			return nil, err
		}
		return o.AccountAssignmentCreationStatus, nil
	})
}

// Unassign implements Assigner: DeleteAccountAssignment, then
// DescribeAccountAssignmentDeletionStatus until final. An assignment that
// is already gone counts as deleted.
func (c *Center) Unassign(ctx context.Context, k GrantKey) error {
	out, err := c.API.DeleteAccountAssignment(ctx, &ssoadmin.DeleteAccountAssignmentInput{
		InstanceArn: aws.String(c.InstanceARN), PermissionSetArn: aws.String(k.PermissionSetARN),
		PrincipalId: aws.String(k.PrincipalID), PrincipalType: ssotypes.PrincipalTypeUser,
		TargetId: aws.String(k.AccountID), TargetType: ssotypes.TargetTypeAwsAccount})
	if err != nil {
		if kind(err) == errkind.NotFound {
			return nil
		}
		return fmt.Errorf("delete account assignment %s: %w: %w", k, err, kind(err))
	}
	return c.wait(ctx, "delete account assignment "+k.String(), out.AccountAssignmentDeletionStatus, func(id *string) (*ssotypes.AccountAssignmentOperationStatus, error) {
		o, err := c.API.DescribeAccountAssignmentDeletionStatus(ctx, &ssoadmin.DescribeAccountAssignmentDeletionStatusInput{
			InstanceArn: aws.String(c.InstanceARN), AccountAssignmentDeletionRequestId: id})
		if err != nil {
			return nil, err
		}
		return o.AccountAssignmentDeletionStatus, nil
	})
}

func (c *Center) wait(ctx context.Context, what string, st *ssotypes.AccountAssignmentOperationStatus, describe func(*string) (*ssotypes.AccountAssignmentOperationStatus, error)) error {
	if st == nil {
		return fmt.Errorf("%s: Identity Center answered without a status: %w", what, errkind.Unavailable)
	}
	id := st.RequestId
	d := c.Poll
	if d <= 0 {
		d = time.Second
	}
	polls := c.Polls
	if polls <= 0 {
		polls = 60
	}
	for i := 0; ; i++ {
		switch st.Status {
		case ssotypes.StatusValuesSucceeded:
			return nil
		case ssotypes.StatusValuesFailed:
			return fmt.Errorf("%s: failed: %s: %w", what, aws.ToString(st.FailureReason), errkind.Unavailable)
		}
		if i == polls {
			return fmt.Errorf("%s: still %s after %d status checks (request %s): %w", what, st.Status, polls, aws.ToString(id), errkind.Unavailable)
		}
		if err := c.sleep(ctx, d); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		d = min(2*d, 10*time.Second)
		next, err := describe(id)
		if err != nil {
			return fmt.Errorf("%s: check status: %w: %w", what, err, kind(err))
		}
		if next == nil {
			return fmt.Errorf("%s: Identity Center answered without a status: %w", what, errkind.Unavailable)
		}
		st = next
	}
}

// PermissionSetARN implements Assigner: the instance's permission sets are
// listed and described once, then kept.
func (c *Center) PermissionSetARN(ctx context.Context, name string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.permSets == nil {
		sets := map[string]string{}
		p := ssoadmin.NewListPermissionSetsPaginator(c.API, &ssoadmin.ListPermissionSetsInput{InstanceArn: aws.String(c.InstanceARN)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return "", fmt.Errorf("list permission sets: %w: %w", err, kind(err))
			}
			for _, arn := range page.PermissionSets {
				d, err := c.API.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: aws.String(c.InstanceARN), PermissionSetArn: aws.String(arn)})
				if err != nil {
					return "", fmt.Errorf("describe permission set %s: %w: %w", arn, err, kind(err))
				}
				if d.PermissionSet != nil {
					sets[aws.ToString(d.PermissionSet.Name)] = arn
				}
			}
		}
		c.permSets = sets
	}
	arn, ok := c.permSets[name]
	if !ok {
		return "", fmt.Errorf("permission set %s does not exist in Identity Center instance %s: %w", name, c.InstanceARN, errkind.NotFound)
	}
	return arn, nil
}

// OrganizationsAPI is the part of the Organizations client Organization
// uses.
type OrganizationsAPI interface {
	ListAccounts(context.Context, *organizations.ListAccountsInput, ...func(*organizations.Options)) (*organizations.ListAccountsOutput, error)
}

// Organization resolves catalog accounts by e-mail address, which is
// unique in an organisation and, unlike the name, set by the catalog at
// creation.
type Organization struct {
	API OrganizationsAPI

	mu  sync.Mutex
	ids map[string]string // e-mail -> id, listed once
}

// AccountID implements Accounts.
func (o *Organization) AccountID(ctx context.Context, a org.Account) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ids == nil {
		ids := map[string]string{}
		p := organizations.NewListAccountsPaginator(o.API, &organizations.ListAccountsInput{})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return "", fmt.Errorf("list accounts: %w: %w", err, kind(err))
			}
			for _, acc := range page.Accounts {
				ids[aws.ToString(acc.Email)] = aws.ToString(acc.Id)
			}
		}
		o.ids = ids
	}
	id, ok := o.ids[a.Email]
	if !ok {
		// Forget the list: the account may be created by the next apply.
		o.ids = nil
		return "", fmt.Errorf("account %s (%s) is not in the organisation yet; run berth accounts apply: %w", a.Name, a.Email, errkind.NotFound)
	}
	return id, nil
}

// NewAWS returns the Identity Center, Identity Store and Organizations
// parts of an Engine, from one AWS configuration (the organisation's
// management or delegated administrator account).
func NewAWS(cfg aws.Config, instanceARN, identityStoreID string) (*Center, *IdentityStore, *Organization) {
	return &Center{API: ssoadmin.NewFromConfig(cfg), InstanceARN: instanceARN},
		&IdentityStore{API: identitystore.NewFromConfig(cfg), StoreID: identityStoreID},
		&Organization{API: organizations.NewFromConfig(cfg)}
}
