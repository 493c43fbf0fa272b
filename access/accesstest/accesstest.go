// Package accesstest is a wire-level world for tests of just-in-time
// access: IAM Identity Center, the Identity Store and Organizations answering
// through internal/awsfake with the documented JSON 1.1 shapes. People:
// ana (oncall, payments-developers, leads), bo (leads), cy
// (payments-developers). Tests only.
package accesstest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/berth-dev/berth/internal/awsfake"
)

// Catalog is a catalog with one production account and two escalations.
const Catalog = `version: 1
ous:
  - name: Workloads
accounts:
  - {name: pay-prod, email: aws+pay-prod@acme.example, ou: Workloads, owner: payments, class: team-prod}
  - {name: pay-dev, email: aws+pay-dev@acme.example, ou: Workloads, owner: payments, class: team-dev}
access_classes:
  team-prod:
    escalations:
      - {permission_set: AdministratorAccess, eligible: oncall, approvers: leads, max_duration: 2h}
      - {permission_set: ReadOnlyAccess, eligible: "{owner}-developers", approvers: leads, max_duration: 8h, forbid_self_approval: false}
`

// Names of the world.
const (
	InstanceARN = "arn:aws:sso:::instance/ssoins-1111"
	StoreID     = "d-1234567890"
	AdminARN    = "arn:aws:sso:::permissionSet/ssoins-1111/ps-admin"
	ReadARN     = "arn:aws:sso:::permissionSet/ssoins-1111/ps-read"
	ProdID      = "111122223333"
)

// World is Identity Center, the Identity Store and Organizations as the
// wire shows them: people, groups, permission sets, accounts and the
// assignments that exist.
type World struct {
	*awsfake.Server
	users    map[string]string   // e-mail -> user id
	groups   map[string]string   // display name -> group id
	members  map[string][]string // user id -> group ids
	assigned map[string]bool     // principal/account/permission set
	// deleteFailures scripts the next deletions: "throttle" answers the
	// call with ThrottlingException, "failed" lets the call start and its
	// status end FAILED.
	DeleteFailures []string
	// CreateFailures scripts the next creations the same way.
	CreateFailures []string
	pending        map[string]string // request id -> what it does when polled
	Creates        int
	Deletes        int
	n              int
}

func NewWorld(t testing.TB) *World {
	w := &World{
		Server: awsfake.New(t),
		users:  map[string]string{"ana@acme.example": "u-ana", "bo@acme.example": "u-bo", "cy@acme.example": "u-cy"},
		groups: map[string]string{"oncall": "g-oncall", "leads": "g-leads", "payments-developers": "g-paydev"},
		members: map[string][]string{
			"u-ana": {"g-oncall", "g-paydev", "g-leads"},
			"u-bo":  {"g-leads"},
			"u-cy":  {"g-paydev"},
		},
		assigned: map[string]bool{},
		pending:  map[string]string{},
	}
	attr := func(r *awsfake.Request) string {
		ua := r.JSON["AlternateIdentifier"].(map[string]any)["UniqueAttribute"].(map[string]any)
		want := map[string]string{"GetUserId": "emails.value", "GetGroupId": "displayName"}[r.Action]
		if ua["AttributePath"] != want || r.JSON["IdentityStoreId"] != StoreID {
			t.Errorf("%s: %v", r.Action, r.JSON)
		}
		return fmt.Sprint(ua["AttributeValue"])
	}
	w.Handle("identitystore", "GetUserId", func(r *awsfake.Request) awsfake.Response {
		if id, ok := w.users[attr(r)]; ok {
			return awsfake.JSON(map[string]any{"UserId": id, "IdentityStoreId": StoreID})
		}
		return awsfake.JSONError(400, "ResourceNotFoundException", "USER not found")
	})
	w.Handle("identitystore", "GetGroupId", func(r *awsfake.Request) awsfake.Response {
		if id, ok := w.groups[attr(r)]; ok {
			return awsfake.JSON(map[string]any{"GroupId": id, "IdentityStoreId": StoreID})
		}
		return awsfake.JSONError(400, "ResourceNotFoundException", "GROUP not found")
	})
	w.Handle("identitystore", "ListGroupMembershipsForMember", func(r *awsfake.Request) awsfake.Response {
		uid := r.JSON["MemberId"].(map[string]any)["UserId"].(string)
		var ms []any
		for _, g := range w.members[uid] {
			ms = append(ms, map[string]any{"GroupId": g, "IdentityStoreId": StoreID, "MembershipId": "m-" + g, "MemberId": map[string]any{"UserId": uid}})
		}
		return awsfake.JSON(map[string]any{"GroupMemberships": ms})
	})
	w.Handle("sso", "ListPermissionSets", func(*awsfake.Request) awsfake.Response {
		return awsfake.JSON(map[string]any{"PermissionSets": []string{AdminARN, ReadARN}})
	})
	w.Handle("sso", "DescribePermissionSet", func(r *awsfake.Request) awsfake.Response {
		name := map[string]string{AdminARN: "AdministratorAccess", ReadARN: "ReadOnlyAccess"}[r.JSON["PermissionSetArn"].(string)]
		return awsfake.JSON(map[string]any{"PermissionSet": map[string]any{"Name": name, "PermissionSetArn": r.JSON["PermissionSetArn"]}})
	})
	w.Handle("organizations", "ListAccounts", func(*awsfake.Request) awsfake.Response {
		return awsfake.JSON(map[string]any{"Accounts": []any{
			map[string]any{"Id": ProdID, "Email": "aws+pay-prod@acme.example", "Name": "pay-prod", "Status": "ACTIVE"},
			map[string]any{"Id": "444455556666", "Email": "aws+pay-dev@acme.example", "Name": "pay-dev", "Status": "ACTIVE"},
		}})
	})
	key := func(r *awsfake.Request) string {
		if r.JSON["InstanceArn"] != InstanceARN || r.JSON["PrincipalType"] != "USER" || r.JSON["TargetType"] != "AWS_ACCOUNT" {
			t.Errorf("%s: %v", r.Action, r.JSON)
		}
		return fmt.Sprintf("%s/%s/%s", r.JSON["PrincipalId"], r.JSON["TargetId"], r.JSON["PermissionSetArn"])
	}
	status := func(field, id, st, reason string) awsfake.Response {
		s := map[string]any{"RequestId": id, "Status": st}
		if reason != "" {
			s["FailureReason"] = reason
		}
		return awsfake.JSON(map[string]any{field: s})
	}
	w.Handle("sso", "CreateAccountAssignment", func(r *awsfake.Request) awsfake.Response {
		w.Creates++
		w.n++
		id := fmt.Sprintf("create-%d", w.n)
		w.pending[id] = "create " + key(r)
		if len(w.CreateFailures) > 0 {
			f := w.CreateFailures[0]
			w.CreateFailures = w.CreateFailures[1:]
			if f == "throttle" {
				return awsfake.JSONError(400, "ThrottlingException", "Rate exceeded")
			}
			w.pending[id] = "fail " + key(r)
		}
		return status("AccountAssignmentCreationStatus", id, "IN_PROGRESS", "")
	})
	w.Handle("sso", "DeleteAccountAssignment", func(r *awsfake.Request) awsfake.Response {
		w.Deletes++
		k := key(r)
		if len(w.DeleteFailures) > 0 {
			f := w.DeleteFailures[0]
			w.DeleteFailures = w.DeleteFailures[1:]
			if f == "throttle" {
				return awsfake.JSONError(400, "ThrottlingException", "Rate exceeded")
			}
			w.n++
			id := fmt.Sprintf("delete-%d", w.n)
			w.pending[id] = "fail " + k
			return status("AccountAssignmentDeletionStatus", id, "IN_PROGRESS", "")
		}
		w.n++
		id := fmt.Sprintf("delete-%d", w.n)
		w.pending[id] = "delete " + k
		return status("AccountAssignmentDeletionStatus", id, "IN_PROGRESS", "")
	})
	poll := func(field, idField string) awsfake.Handler {
		return func(r *awsfake.Request) awsfake.Response {
			id := r.JSON[idField].(string)
			op, k, _ := strings.Cut(w.pending[id], " ")
			switch op {
			case "create":
				w.assigned[k] = true
			case "delete":
				delete(w.assigned, k)
			case "fail":
				return status(field, id, "FAILED", "Received a 500 status error from the account")
			default:
				t.Errorf("poll of unknown request %s", id)
			}
			return status(field, id, "SUCCEEDED", "")
		}
	}
	w.Handle("sso", "DescribeAccountAssignmentCreationStatus", poll("AccountAssignmentCreationStatus", "AccountAssignmentCreationRequestId"))
	w.Handle("sso", "DescribeAccountAssignmentDeletionStatus", poll("AccountAssignmentDeletionStatus", "AccountAssignmentDeletionRequestId"))
	return w
}

// Has reports whether the assignment of user on pay-prod exists.
func (w *World) Has(user, psARN string) bool {
	w.Server.Calls() // handlers run under the server's lock; this orders the read after them
	return w.assigned[user+"/"+ProdID+"/"+psARN]
}

// Config is an AWS configuration that sends every call to the world.
func (w *World) Config() aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(awsfake.AccessKeyID, awsfake.SecretAccessKey, ""),
		BaseEndpoint:     aws.String(w.URL),
		RetryMaxAttempts: 1,
	}
}
