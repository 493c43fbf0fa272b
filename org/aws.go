package org

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/budgets"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awserr"
)

// Organizations is the part of AWS Organizations that plan, apply and audit
// use; *organizations.Client implements it.
type Organizations interface {
	ListRoots(context.Context, *organizations.ListRootsInput, ...func(*organizations.Options)) (*organizations.ListRootsOutput, error)
	ListOrganizationalUnitsForParent(context.Context, *organizations.ListOrganizationalUnitsForParentInput, ...func(*organizations.Options)) (*organizations.ListOrganizationalUnitsForParentOutput, error)
	ListAccounts(context.Context, *organizations.ListAccountsInput, ...func(*organizations.Options)) (*organizations.ListAccountsOutput, error)
	ListParents(context.Context, *organizations.ListParentsInput, ...func(*organizations.Options)) (*organizations.ListParentsOutput, error)
	ListTagsForResource(context.Context, *organizations.ListTagsForResourceInput, ...func(*organizations.Options)) (*organizations.ListTagsForResourceOutput, error)
	ListCreateAccountStatus(context.Context, *organizations.ListCreateAccountStatusInput, ...func(*organizations.Options)) (*organizations.ListCreateAccountStatusOutput, error)
	CreateOrganizationalUnit(context.Context, *organizations.CreateOrganizationalUnitInput, ...func(*organizations.Options)) (*organizations.CreateOrganizationalUnitOutput, error)
	CreateAccount(context.Context, *organizations.CreateAccountInput, ...func(*organizations.Options)) (*organizations.CreateAccountOutput, error)
	DescribeCreateAccountStatus(context.Context, *organizations.DescribeCreateAccountStatusInput, ...func(*organizations.Options)) (*organizations.DescribeCreateAccountStatusOutput, error)
	MoveAccount(context.Context, *organizations.MoveAccountInput, ...func(*organizations.Options)) (*organizations.MoveAccountOutput, error)
	TagResource(context.Context, *organizations.TagResourceInput, ...func(*organizations.Options)) (*organizations.TagResourceOutput, error)
	UntagResource(context.Context, *organizations.UntagResourceInput, ...func(*organizations.Options)) (*organizations.UntagResourceOutput, error)
	CloseAccount(context.Context, *organizations.CloseAccountInput, ...func(*organizations.Options)) (*organizations.CloseAccountOutput, error)
	DescribeAccount(context.Context, *organizations.DescribeAccountInput, ...func(*organizations.Options)) (*organizations.DescribeAccountOutput, error)
}

// Budgets is the part of AWS Budgets berth uses.
type Budgets interface {
	DescribeBudgets(context.Context, *budgets.DescribeBudgetsInput, ...func(*budgets.Options)) (*budgets.DescribeBudgetsOutput, error)
	DescribeBudget(context.Context, *budgets.DescribeBudgetInput, ...func(*budgets.Options)) (*budgets.DescribeBudgetOutput, error)
	CreateBudget(context.Context, *budgets.CreateBudgetInput, ...func(*budgets.Options)) (*budgets.CreateBudgetOutput, error)
	UpdateBudget(context.Context, *budgets.UpdateBudgetInput, ...func(*budgets.Options)) (*budgets.UpdateBudgetOutput, error)
}

// SSOAdmin is the part of IAM Identity Center's admin API berth uses.
type SSOAdmin interface {
	ListInstances(context.Context, *ssoadmin.ListInstancesInput, ...func(*ssoadmin.Options)) (*ssoadmin.ListInstancesOutput, error)
	ListPermissionSets(context.Context, *ssoadmin.ListPermissionSetsInput, ...func(*ssoadmin.Options)) (*ssoadmin.ListPermissionSetsOutput, error)
	DescribePermissionSet(context.Context, *ssoadmin.DescribePermissionSetInput, ...func(*ssoadmin.Options)) (*ssoadmin.DescribePermissionSetOutput, error)
	ListAccountAssignments(context.Context, *ssoadmin.ListAccountAssignmentsInput, ...func(*ssoadmin.Options)) (*ssoadmin.ListAccountAssignmentsOutput, error)
	CreateAccountAssignment(context.Context, *ssoadmin.CreateAccountAssignmentInput, ...func(*ssoadmin.Options)) (*ssoadmin.CreateAccountAssignmentOutput, error)
	DescribeAccountAssignmentCreationStatus(context.Context, *ssoadmin.DescribeAccountAssignmentCreationStatusInput, ...func(*ssoadmin.Options)) (*ssoadmin.DescribeAccountAssignmentCreationStatusOutput, error)
}

// IdentityStore finds Identity Center groups by display name.
type IdentityStore interface {
	GetGroupId(context.Context, *identitystore.GetGroupIdInput, ...func(*identitystore.Options)) (*identitystore.GetGroupIdOutput, error)
}

// STS assumes roles in member accounts.
type STS interface {
	AssumeRole(context.Context, *sts.AssumeRoleInput, ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

// IAM is what audit reads in each production account.
type IAM interface {
	ListUsers(context.Context, *iam.ListUsersInput, ...func(*iam.Options)) (*iam.ListUsersOutput, error)
	ListAccessKeys(context.Context, *iam.ListAccessKeysInput, ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	GetAccessKeyLastUsed(context.Context, *iam.GetAccessKeyLastUsedInput, ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
}

// Clients are the AWS APIs of one organisation, called from its management
// account (or a delegated administrator).
type Clients struct {
	Org      Organizations
	Budgets  Budgets
	SSO      SSOAdmin
	Identity IdentityStore
	STS      STS
	// Account is the caller's account, which owns the budgets: each
	// account's budget lives there, filtered on that linked account, so one
	// call reads them all and member accounts cannot change them.
	Account string
	// IAMIn returns an IAM client in a member account, reached through
	// role (a role name) with a read-only session policy.
	IAMIn func(ctx context.Context, accountID, role string) (IAM, error)
}

// DefaultAccessRole is the role Organizations creates in new accounts.
const DefaultAccessRole = "OrganizationAccountAccessRole"

// NewClients builds Clients from cfg. Organizations and Budgets are global
// services in us-east-1; Identity Center lives in ssoRegion (empty: cfg's).
func NewClients(cfg aws.Config, account, ssoRegion string) *Clients {
	global := cfg.Copy()
	global.Region = "us-east-1"
	sso := cfg.Copy()
	if ssoRegion != "" {
		sso.Region = ssoRegion
	}
	stsClient := sts.NewFromConfig(cfg)
	return &Clients{
		Org:      organizations.NewFromConfig(global),
		Budgets:  budgets.NewFromConfig(global),
		SSO:      ssoadmin.NewFromConfig(sso),
		Identity: identitystore.NewFromConfig(sso),
		STS:      stsClient,
		Account:  account,
		IAMIn: func(ctx context.Context, accountID, role string) (IAM, error) {
			if accountID == account {
				// The management account has no OrganizationAccountAccessRole:
				// the caller is already there.
				c := cfg.Copy()
				c.Region = "us-east-1"
				return iam.NewFromConfig(c), nil
			}
			arn := roleARN(accountID, role)
			provider := stscreds.NewAssumeRoleProvider(stsClient, arn, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "berth-accounts-audit"
				// Whatever the role allows, this session can only read
				// users and keys.
				o.Policy = aws.String(auditSessionPolicy)
				o.Duration = time.Hour
			})
			creds := aws.NewCredentialsCache(provider)
			if _, err := creds.Retrieve(ctx); err != nil {
				return nil, fmt.Errorf("assume role %s: %w", arn, awserr.Classify(err))
			}
			c := cfg.Copy()
			c.Credentials = creds
			c.Region = "us-east-1"
			return iam.NewFromConfig(c), nil
		},
	}
}

const auditSessionPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:ListUsers","iam:ListAccessKeys","iam:GetAccessKeyLastUsed"],"Resource":"*"}]}`

func roleARN(accountID, role string) string {
	return fmt.Sprintf("arn:aws:iam::%s:role/%s", accountID, role)
}

// errCode is the AWS error code of err, or "".
func errCode(err error) string { return awserr.Code(err) }

// isCode reports whether err is an AWS error with one of codes.
func isCode(err error, codes ...string) bool {
	c := errCode(err)
	for _, x := range codes {
		if c == x {
			return true
		}
	}
	return false
}

// retryableCodes are the errors that a later attempt may not get: throttling,
// and another change to the same organisation or account running.
var retryableCodes = []string{"TooManyRequestsException", "ConcurrentModificationException", "ThrottlingException",
	"Throttling", "ConflictException"}

// pacer waits between attempts and polls. Sleep is injected so tests run
// in milliseconds; the waits add up to at most Limit.
type pacer struct {
	sleep func(context.Context, time.Duration) error
	first time.Duration
	max   time.Duration
	limit time.Duration
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errGaveUp is returned by poll when the waits reached the limit.
var errGaveUp = errors.New("gave up waiting")

// poll calls f until it reports done, sleeping with exponential backoff
// between calls. f's error ends the poll.
func (p pacer) poll(ctx context.Context, f func() (bool, error)) error {
	d, total := p.first, time.Duration(0)
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		if total >= p.limit {
			return fmt.Errorf("%w after %s", errGaveUp, total)
		}
		if err := p.sleep(ctx, d); err != nil {
			return err
		}
		total += d
		d = min(2*d, p.max)
	}
}

// retry calls f again while it fails with a retryableCodes error.
func (p pacer) retry(ctx context.Context, f func() error) error {
	var last error
	err := p.poll(ctx, func() (bool, error) {
		err := f()
		if err != nil && isCode(err, retryableCodes...) {
			last = err
			return false, nil
		}
		return true, err
	})
	if errors.Is(err, errGaveUp) {
		return fmt.Errorf("%w (last error: %w): %w", err, last, errkind.Unavailable)
	}
	return awserr.Classify(err)
}
