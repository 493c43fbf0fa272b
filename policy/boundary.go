package policy

import (
	"fmt"
	"reflect"
)

// HubRole is an artifact role the data plane stack creates for a hub, and
// the kind of managed policy it holds.
type HubRole struct {
	Role string // reader or writer (HubRoleName)
	Kind Kind
}

// HubRoles are the roles the data plane stack creates: the data plane
// boundary is derived from what they hold.
func HubRoles() []HubRole {
	return []HubRole{{"reader", KindArtifactRead}, {"writer", KindArtifactWrite}}
}

// DataPlaneBoundaryName is the managed policy the bootstrap stack creates as
// the permissions boundary of every role the data plane stack creates.
func DataPlaneBoundaryName(qualifier string) string {
	if qualifier == "" {
		qualifier = DefaultQualifier
	}
	return qualifier + "-boundary"
}

// DataPlaneBoundaryARN is the ARN of the data plane boundary in the account
// of p ("*" when unknown).
func (p Params) DataPlaneBoundaryARN() string {
	return fmt.Sprintf("arn:%s:iam::%s:policy/%s", p.partition(), p.account(), DataPlaneBoundaryName(p.qualifier()))
}

// DataPlaneBoundary is the permissions boundary of the roles the data plane
// stack creates: what HubRoles' policies grant, rendered for any region of
// the account, and nothing else. The provisioner must set it on every role
// it creates (iamStatements), so a role it creates for itself gets at most
// this:
//
//	Allow  the statements of artifact-read and artifact-write, with
//	       bucket Q-ACCOUNT-*, any key prefix, PARAMPREFIX, and the given key
//	       or any key of the account, used only through S3
//	Deny   iam:*, organizations:*, account:*, sts:*   managing identities, the
//	       organization or the account, and assuming other roles
//	Deny   iam:DeleteRolePermissionsBoundary, PutRolePermissionsBoundary,
//	       Create/Delete/SetDefaultPolicyVersion, DeletePolicy   removing or
//	       changing this boundary (iam:* denies them too; named so
//	       narrowing that statement keeps them)
//
// A boundary only limits: the roles still need their own policies.
func DataPlaneBoundary(p Params) (*Document, error) {
	q := p.qualifier()
	bp := Params{Bucket: q + "-" + p.account() + "-*", ParameterPrefix: p.ParameterPrefix, Account: p.Account,
		Partition: p.Partition, KMSKeyARN: p.KMSKeyARN, Qualifier: p.Qualifier}
	if bp.ParameterPrefix == "" {
		bp.ParameterPrefix = "/" + q
	}
	if bp.KMSKeyARN == "" {
		// The data plane creates one key per region; S3 uses it only on
		// the buckets this boundary names (kms:ViaService).
		bp.KMSKeyARN = fmt.Sprintf("arn:%s:kms:*:%s:key/*", p.partition(), p.account())
	}
	d := doc()
	bySid := map[string]int{}
	for _, h := range HubRoles() {
		r, err := render(h.Kind, bp)
		if err != nil {
			return nil, fmt.Errorf("render data plane boundary: %w", err)
		}
		for _, s := range r.Policy.Statement {
			i, ok := bySid[s.Sid]
			if !ok {
				bySid[s.Sid] = len(d.Statement)
				d.Statement = append(d.Statement, s)
				continue
			}
			if err := mergeStatement(&d.Statement[i], s); err != nil {
				return nil, fmt.Errorf("render data plane boundary: %w", err)
			}
		}
	}
	boundary := p.DataPlaneBoundaryARN()
	d.Statement = append(d.Statement,
		Statement{Sid: "NoIdentityOrAccountAdministration", Effect: "Deny",
			Action: Values{"account:*", "iam:*", "organizations:*", "sts:*"}, Resource: Values{"*"}},
		Statement{Sid: "KeepThisBoundary", Effect: "Deny",
			Action: Values{"iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:DeleteRolePermissionsBoundary",
				"iam:PutRolePermissionsBoundary", "iam:SetDefaultPolicyVersion"},
			Resource: Values{boundary, fmt.Sprintf("arn:%s:iam::%s:role/*", p.partition(), p.account())}},
	)
	return d, nil
}

// mergeStatement adds the actions and resources of s to dst, two statements
// with one Sid in different kinds (artifact-write repeats artifact-read's).
func mergeStatement(dst *Statement, s Statement) error {
	if dst.Effect != s.Effect || !reflect.DeepEqual(dst.Condition, s.Condition) {
		return fmt.Errorf("statements %q differ in effect or condition", s.Sid)
	}
	dst.Action = union(dst.Action, s.Action)
	dst.Resource = union(dst.Resource, s.Resource)
	return nil
}

func union(a, b Values) Values {
	return append(append(Values{}, a...), b...).normalized()
}
