// Package cfn builds berth's CloudFormation templates with goformation: the
// regional data plane stack and the account bootstrap stack. The IAM
// policies inside come from the policy package's renderers, so a template
// and `berth policy render` never disagree.
package cfn

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
	"github.com/awslabs/goformation/v7/cloudformation/kms"
	"github.com/awslabs/goformation/v7/cloudformation/policies"
	"github.com/awslabs/goformation/v7/cloudformation/s3"
	"github.com/awslabs/goformation/v7/cloudformation/ssm"
	"github.com/awslabs/goformation/v7/cloudformation/tags"

	"github.com/berth-dev/berth/policy"
)

// BootstrapVersion is written to the bootstrap stack's version parameter
// and output. Bump it whenever the bootstrap template changes in a way the
// data plane deploy depends on, so berth can refuse an older bootstrap.
//
//	1  first release
//	2  the provisioner may apply every property the data plane template
//	   sets (OwnershipControls), ops may read what drift detection reads,
//	   and sts:TagSession has its own trust statement
//	3  the provisioner may create the artifact roles a hub assumes
//	   (role/Q-hub-*, holding only berth's own policies), ops may read them;
//	   it may deploy the network stack (EC2, tag-scoped) and assume peering
//	   accepter roles; ops may read the network
//	4  the bootstrap creates the data plane boundary Q-boundary; the
//	   provisioner creates roles only with it and cannot remove or change
//	   it, and the data plane template sets it on every role (a data plane
//	   of this berth needs the policy to exist); the provisioner's
//	   permissions move to managed policies Q-provisioner-*
const BootstrapVersion = 4

// Format is the output format of a template.
type Format string

const (
	YAML Format = "yaml"
	JSON Format = "json"
)

// Params are the inputs of the templates.
type Params struct {
	Qualifier       string // prefix of every name; "berth" when empty
	Prefix          string // artifact key prefix inside the bucket
	ParameterPrefix string // SSM prefix; "/QUALIFIER" when empty
	KMSKeyARN       string // data plane: use this key instead of creating one
	// HubPrincipal, data plane only: the ARN a berth hub runs as. When set,
	// the template adds artifact reader and writer roles that principal
	// assumes with the external ID of the stack parameter HubExternalId.
	HubPrincipal string
	// CacheExpirationDays: data plane: cache entries expire after this many days (0: DefaultCacheExpirationDays).
	CacheExpirationDays int

	// Bootstrap only.
	Administrator       bool   // provisioner gets AdministratorAccess (with a warning)
	PermissionsBoundary string // boundary ARN set on both roles
}

// Result is a rendered template and the warnings to show with it.
type Result struct {
	Template *cloudformation.Template
	Warnings []string
}

// Render returns the template as YAML or JSON.
func (r *Result) Render(f Format) ([]byte, error) {
	switch f {
	case JSON, "":
		b, err := r.Template.JSON()
		if err != nil {
			return nil, fmt.Errorf("render template: %w", err)
		}
		return append(b, '\n'), nil
	case YAML:
		b, err := r.Template.YAML()
		if err != nil {
			return nil, fmt.Errorf("render template: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("render template: unknown format %q (use yaml or json)", f)
}

var qualifierRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)

func (p Params) check() (Params, error) {
	if p.Qualifier == "" {
		p.Qualifier = policy.DefaultQualifier
	}
	if !qualifierRe.MatchString(p.Qualifier) {
		return p, fmt.Errorf("invalid qualifier %q: 1-20 lower-case letters, digits and hyphens", p.Qualifier)
	}
	if p.ParameterPrefix == "" {
		p.ParameterPrefix = "/" + p.Qualifier
	}
	// The template fills partition, account and region in; validate the
	// user's fields with stand-ins.
	v := policy.Params{Prefix: p.Prefix, ParameterPrefix: p.ParameterPrefix, KMSKeyARN: p.KMSKeyARN,
		PermissionsBoundary: p.PermissionsBoundary, Qualifier: p.Qualifier}
	if err := v.Validate(); err != nil {
		return p, err
	}
	return p, nil
}

// Names are the physical names the templates derive from the qualifier;
// region-dependent ones hold CloudFormation substitutions.
type Names struct {
	DataPlaneStack   string // the stack name berth deploys the data plane as
	BootstrapStack   string
	Bucket           string // Q-${AWS::AccountId}-${AWS::Region}
	ManagedPolicy    func(kind policy.Kind) string
	ProvisionerRole  string
	OpsRole          string
	BucketParameter  string
	VersionParameter string
}

// DeriveNames derives every name from the qualifier and checks them
// against the AWS limits for the longest region name.
func DeriveNames(qualifier, parameterPrefix string) (Names, error) {
	q := qualifier
	if q == "" {
		q = policy.DefaultQualifier
	}
	if parameterPrefix == "" {
		parameterPrefix = "/" + q
	}
	n := Names{
		DataPlaneStack:   policy.DataPlaneStackName(q),
		BootstrapStack:   q + "-bootstrap",
		Bucket:           q + "-${AWS::AccountId}-${AWS::Region}",
		ManagedPolicy:    func(k policy.Kind) string { return q + "-" + string(k) + "-${AWS::Region}" },
		ProvisionerRole:  q + "-provisioner",
		OpsRole:          q + "-ops",
		BucketParameter:  policy.BucketParameterName(parameterPrefix),
		VersionParameter: policy.BootstrapVersionParameterName(q),
	}
	// Longest values the substitutions can take.
	const account, region = "123456789012", "ap-southeast-14"
	expand := strings.NewReplacer("${AWS::AccountId}", account, "${AWS::Region}", region)
	if b := expand.Replace(n.Bucket); len(b) > 63 {
		return n, fmt.Errorf("bucket name %s is %d characters, S3 allows 63: use a shorter qualifier", b, len(b))
	}
	if len(n.DataPlaneStack) > 128 {
		return n, fmt.Errorf("stack name %s is too long", n.DataPlaneStack)
	}
	for _, c := range []struct {
		kind, name string
		max        int
	}{
		{"role", n.ProvisionerRole, policy.MaxRoleNameLen},
		{"role", n.OpsRole, policy.MaxRoleNameLen},
		{"role", expand.Replace(policy.HubRoleName(q, "writer", "${AWS::Region}")), policy.MaxRoleNameLen},
		{"policy", expand.Replace(n.ManagedPolicy(policy.KindArtifactWrite)), policy.MaxPolicyNameLen},
	} {
		if err := policy.CheckIAMName(c.kind, c.name, c.max); err != nil {
			return n, err
		}
	}
	return n, nil
}

// subst turns a rendered policy document into template JSON, wrapping every
// string that holds a ${...} substitution in Fn::Sub.
func subst(d *policy.Document) (any, error) {
	var v any
	if err := json.Unmarshal(d.JSON(), &v); err != nil {
		return nil, fmt.Errorf("convert policy: %w", err)
	}
	var walk func(any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case string:
			if strings.Contains(t, "${") {
				// goformation encodes intrinsics as strings and resolves raw
				// {"Fn::Sub": ...} maps on output, so use its encoder.
				return cloudformation.Sub(t)
			}
		case []any:
			for i := range t {
				t[i] = walk(t[i])
			}
		case map[string]any:
			for k := range t {
				t[k] = walk(t[k])
			}
		}
		return x
	}
	return walk(v), nil
}

func str(s string) *string { return &s }

// templateParams are policy parameters whose fields are CloudFormation
// substitutions, filled in by the stack.
func templateParams(p Params, bucketRef, keyARN string) policy.Params {
	return policy.Params{Bucket: bucketRef, Prefix: p.Prefix, ParameterPrefix: p.ParameterPrefix,
		Account: "${AWS::AccountId}", Region: "${AWS::Region}", Partition: "${AWS::Partition}",
		KMSKeyARN: keyARN, Qualifier: p.Qualifier, PermissionsBoundary: p.PermissionsBoundary}
}

// DataPlane is the regional data plane: an artifact bucket (public access
// blocked, SSE-KMS, versioned, TLS only, incomplete multipart uploads
// aborted after one day), an SSM parameter holding its name, and the
// artifact-read, artifact-write and configure managed policies; and the
// cache bucket with its policies (addCache).
func DataPlane(p Params) (*Result, error) {
	p, err := p.check()
	if err != nil {
		return nil, fmt.Errorf("render data plane template: %w", err)
	}
	n, err := DeriveNames(p.Qualifier, p.ParameterPrefix)
	if err != nil {
		return nil, fmt.Errorf("render data plane template: %w", err)
	}
	t := cloudformation.NewTemplate()
	t.Description = fmt.Sprintf("berth data plane (qualifier %s): artifact bucket, bucket-name parameter and artifact policies", p.Qualifier)
	qualifierTag := []tags.Tag{{Key: policy.QualifierTagKey, Value: p.Qualifier}}
	retain := policies.DeletionPolicy("Retain")

	keyARN := p.KMSKeyARN
	if keyARN == "" {
		keyPolicy, err := subst(&policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{
			Sid: "AccountAdministersKeyThroughIAM", Effect: "Allow",
			Principal: policy.AWSPrincipal("arn:${AWS::Partition}:iam::${AWS::AccountId}:root"),
			Action:    policy.Values{"kms:*"}, Resource: policy.Values{"*"},
		}}})
		if err != nil {
			return nil, err
		}
		t.Resources["ArtifactKey"] = &kms.Key{
			Description:                          str("berth artifact bucket key (" + p.Qualifier + ")"),
			EnableKeyRotation:                    cloudformation.Bool(true),
			KeyPolicy:                            keyPolicy,
			Tags:                                 qualifierTag,
			AWSCloudFormationDeletionPolicy:      retain,
			AWSCloudFormationUpdateReplacePolicy: policies.UpdateReplacePolicy("Retain"),
		}
		keyARN = "${ArtifactKey.Arn}"
	}
	kmsID := keyARN
	if strings.Contains(kmsID, "${") {
		kmsID = cloudformation.GetAtt("ArtifactKey", "Arn")
	}
	t.Resources["ArtifactBucket"] = &s3.Bucket{
		BucketName: str(cloudformation.Sub(n.Bucket)),
		PublicAccessBlockConfiguration: &s3.Bucket_PublicAccessBlockConfiguration{
			BlockPublicAcls: cloudformation.Bool(true), BlockPublicPolicy: cloudformation.Bool(true),
			IgnorePublicAcls: cloudformation.Bool(true), RestrictPublicBuckets: cloudformation.Bool(true),
		},
		BucketEncryption: &s3.Bucket_BucketEncryption{ServerSideEncryptionConfiguration: []s3.Bucket_ServerSideEncryptionRule{{
			BucketKeyEnabled: cloudformation.Bool(true),
			ServerSideEncryptionByDefault: &s3.Bucket_ServerSideEncryptionByDefault{
				SSEAlgorithm: "aws:kms", KMSMasterKeyID: str(kmsID),
			},
		}}},
		OwnershipControls:       &s3.Bucket_OwnershipControls{Rules: []s3.Bucket_OwnershipControlsRule{{ObjectOwnership: str("BucketOwnerEnforced")}}},
		VersioningConfiguration: &s3.Bucket_VersioningConfiguration{Status: "Enabled"},
		LifecycleConfiguration: &s3.Bucket_LifecycleConfiguration{Rules: []s3.Bucket_Rule{{
			Id: str("AbortIncompleteMultipartUploads"), Status: "Enabled",
			AbortIncompleteMultipartUpload: &s3.Bucket_AbortIncompleteMultipartUpload{DaysAfterInitiation: 1},
		}}},
		Tags:                                 qualifierTag,
		AWSCloudFormationDeletionPolicy:      retain,
		AWSCloudFormationUpdateReplacePolicy: policies.UpdateReplacePolicy("Retain"),
	}
	tlsOnly, err := subst(&policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{
		Sid: "TLSOnly", Effect: "Deny", Principal: &policy.Principal{All: true}, Action: policy.Values{"s3:*"},
		Resource:  policy.Values{"${ArtifactBucket.Arn}", "${ArtifactBucket.Arn}/*"},
		Condition: policy.Condition{"Bool": {"aws:SecureTransport": {"false"}}},
	}}})
	if err != nil {
		return nil, err
	}
	t.Resources["ArtifactBucketPolicy"] = &s3.BucketPolicy{Bucket: cloudformation.Ref("ArtifactBucket"), PolicyDocument: tlsOnly}
	t.Resources["BucketParameter"] = &ssm.Parameter{
		Name: str(n.BucketParameter), Type: "String", Value: cloudformation.Ref("ArtifactBucket"),
		Description: str("Name of the berth artifact bucket in this region"),
		Tags:        map[string]string{policy.QualifierTagKey: p.Qualifier},
	}
	tp := templateParams(p, "${ArtifactBucket}", keyARN)
	for _, kind := range []policy.Kind{policy.KindArtifactRead, policy.KindArtifactWrite, policy.KindConfigure} {
		logical := policyLogical("", string(kind))
		r, err := policy.RenderForTemplate(kind, tp)
		if err != nil {
			return nil, fmt.Errorf("render data plane template: %w", err)
		}
		doc, err := subst(r.Policy)
		if err != nil {
			return nil, err
		}
		t.Resources[logical] = &iam.ManagedPolicy{
			ManagedPolicyName: str(cloudformation.Sub(n.ManagedPolicy(kind))),
			Description:       str("berth " + string(kind) + " for the artifact bucket in this region"),
			PolicyDocument:    doc,
		}
		t.Outputs[strings.TrimSuffix(logical, "Policy")+"PolicyArn"] = cloudformation.Output{Value: cloudformation.Ref(logical)}
	}
	if p.HubPrincipal != "" {
		if err := addHubRoles(t, p); err != nil {
			return nil, fmt.Errorf("render data plane template: %w", err)
		}
	}
	if err := addCache(t, p, kmsID, keyARN, qualifierTag); err != nil {
		return nil, fmt.Errorf("render data plane template: %w", err)
	}
	t.Outputs["BucketName"] = cloudformation.Output{Value: cloudformation.Ref("ArtifactBucket")}
	t.Outputs["BucketArn"] = cloudformation.Output{Value: cloudformation.GetAtt("ArtifactBucket", "Arn")}
	t.Outputs["BucketParameterName"] = cloudformation.Output{Value: cloudformation.Ref("BucketParameter")}
	t.Outputs["KeyArn"] = cloudformation.Output{Value: kmsID}
	return &Result{Template: t}, nil
}

// hubPrincipalRe is the principal a hub may run as: a role or user of an
// account (the bootstrap's TrustPrincipal takes the same).
var hubPrincipalRe = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[\w+=,.@/-]{1,512}$`)

// CheckHubPrincipal checks the ARN a hub runs as.
func CheckHubPrincipal(arn string) error {
	if !hubPrincipalRe.MatchString(arn) {
		return fmt.Errorf("hub principal %q: want the ARN of an IAM role or user, such as arn:aws:iam::123456789012:role/berth-hub", arn)
	}
	return nil
}

// HubExternalIDParameter is the data plane stack parameter holding the
// external ID the hub passes when it assumes the artifact roles; it is
// NoEcho, so it shows neither in the template nor in DescribeStacks.
const HubExternalIDParameter = "HubExternalId"

// addHubRoles adds the artifact reader and writer roles a hub assumes to
// vend credentials. Each holds the stack's own managed policy of its kind,
// so the roles and the policies that people attach themselves grant the
// same, and trusts only the hub's principal with the external ID.
func addHubRoles(t *cloudformation.Template, p Params) error {
	if err := CheckHubPrincipal(p.HubPrincipal); err != nil {
		return err
	}
	t.Parameters[HubExternalIDParameter] = cloudformation.Parameter{
		Type: "String", Description: str("External ID the berth hub passes when it assumes the artifact roles (sts:ExternalId)"),
		NoEcho: cloudformation.Bool(true), MinLength: cloudformation.Int(2), MaxLength: cloudformation.Int(1224),
		AllowedPattern: str(`^[A-Za-z0-9+=,.@:/_-]+$`),
	}
	trust, err := subst(&policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{
		Sid: "BerthHub", Effect: "Allow", Principal: policy.AWSPrincipal(p.HubPrincipal), Action: policy.Values{"sts:AssumeRole"},
		Condition: policy.Condition{"StringEquals": {"sts:ExternalId": {"${" + HubExternalIDParameter + "}"}}},
	}}})
	if err != nil {
		return err
	}
	// The bootstrap stack creates the boundary (bootstrap version 4); the
	// provisioner may create these roles only with it.
	boundary := cloudformation.Sub(templateParams(p, "", "").DataPlaneBoundaryARN())
	for _, r := range policy.HubRoles() {
		logical := "Hub" + strings.ToUpper(r.Role[:1]) + r.Role[1:] + "Role"
		name := policy.HubRoleName(p.Qualifier, r.Role, "${AWS::Region}")
		t.Resources[logical] = &iam.Role{
			RoleName:                 str(cloudformation.Sub(name)),
			Description:              str("berth artifact " + r.Role + " role that the berth hub assumes to vend short-lived credentials"),
			AssumeRolePolicyDocument: trust,
			ManagedPolicyArns:        []string{cloudformation.Ref(policyLogical("", string(r.Kind)))},
			PermissionsBoundary:      str(boundary),
			MaxSessionDuration:       cloudformation.Int(3600),
			Tags:                     []tags.Tag{{Key: policy.QualifierTagKey, Value: p.Qualifier}},
		}
		t.Outputs[logical+"Arn"] = cloudformation.Output{Value: cloudformation.GetAtt(logical, "Arn")}
	}
	return nil
}

// policyLogical is the logical name of a managed policy: ArtifactReadPolicy
// for the data plane's artifact-read, ProvisionerNetworkManagePolicy for the
// provisioner's network-manage (prefix Provisioner).
func policyLogical(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, w := range strings.Split(name, "-") {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String() + "Policy"
}

// Bootstrap is the account bootstrap: the provisioner and ops roles trusted
// by one principal with an external ID (both stack parameters), and a
// version parameter and output.
func Bootstrap(p Params) (*Result, error) {
	p, err := p.check()
	if err != nil {
		return nil, fmt.Errorf("render bootstrap template: %w", err)
	}
	n, err := DeriveNames(p.Qualifier, p.ParameterPrefix)
	if err != nil {
		return nil, fmt.Errorf("render bootstrap template: %w", err)
	}
	t := cloudformation.NewTemplate()
	t.Description = fmt.Sprintf("berth bootstrap (qualifier %s, version %d): roles the trusted principal assumes to deploy the data plane", p.Qualifier, BootstrapVersion)
	t.Parameters["TrustPrincipal"] = cloudformation.Parameter{
		Type: "String", Description: str("ARN of the one principal allowed to assume the bootstrap roles"),
		AllowedPattern: str(`^arn:aws[a-z-]*:(iam::[0-9]{12}:(root|role/.+|user/.+))$`),
	}
	t.Parameters["ExternalId"] = cloudformation.Parameter{
		Type: "String", Description: str("External ID the trusted principal must pass (sts:ExternalId)"),
		NoEcho: cloudformation.Bool(true), MinLength: cloudformation.Int(2), MaxLength: cloudformation.Int(1224),
		AllowedPattern: str(`^[A-Za-z0-9+=,.@:/_-]+$`),
	}
	trust, err := subst(policy.TrustPolicy("${TrustPrincipal}", "${ExternalId}", p.Qualifier))
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, k := range []struct {
		kind    policy.Kind
		logical string
		name    string
	}{{policy.KindProvisioner, "ProvisionerRole", n.ProvisionerRole}, {policy.KindOps, "OpsRole", n.OpsRole}} {
		tp := templateParams(p, "", p.KMSKeyARN)
		tp.Region = "*" // the data plane is deployed to several regions
		tp.TrustPrincipal, tp.ExternalID, tp.Administrator = "${TrustPrincipal}", "${ExternalId}", p.Administrator
		r, err := policy.RenderForTemplate(k.kind, tp)
		if err != nil {
			return nil, fmt.Errorf("render bootstrap template: %w", err)
		}
		warnings = append(warnings, r.Warnings...)
		role := &iam.Role{
			RoleName:                 str(k.name),
			Description:              str("berth " + string(k.kind) + " role"),
			AssumeRolePolicyDocument: trust,
			MaxSessionDuration:       cloudformation.Int(3600),
			Tags:                     []tags.Tag{{Key: policy.QualifierTagKey, Value: p.Qualifier}},
		}
		for _, arn := range r.Role.ManagedPolicyARNs {
			role.ManagedPolicyArns = append(role.ManagedPolicyArns, cloudformation.Sub(arn))
		}
		if p.PermissionsBoundary != "" {
			role.PermissionsBoundary = str(p.PermissionsBoundary)
		}
		if r.Role.Policy != nil {
			doc, err := subst(r.Role.Policy)
			if err != nil {
				return nil, err
			}
			role.Policies = []iam.Role_Policy{{PolicyName: "berth-" + string(k.kind), PolicyDocument: doc}}
		}
		for _, m := range r.Role.Managed {
			doc, err := subst(m.Document)
			if err != nil {
				return nil, err
			}
			logical := policyLogical(strings.TrimSuffix(k.logical, "Role"), m.Part)
			t.Resources[logical] = &iam.ManagedPolicy{
				ManagedPolicyName: str(m.Name),
				Description:       str("berth " + string(k.kind) + " role's permissions (" + m.Name + ")"),
				PolicyDocument:    doc,
			}
			role.ManagedPolicyArns = append(role.ManagedPolicyArns, cloudformation.Ref(logical))
		}
		t.Resources[k.logical] = role
		t.Outputs[k.logical+"Arn"] = cloudformation.Output{Value: cloudformation.GetAtt(k.logical, "Arn")}
	}
	// The boundary of every role the data plane stack creates, also with
	// --administrator: the data plane template names it.
	boundary, err := policy.DataPlaneBoundary(templateParams(p, "", p.KMSKeyARN))
	if err != nil {
		return nil, fmt.Errorf("render bootstrap template: %w", err)
	}
	boundaryDoc, err := subst(boundary)
	if err != nil {
		return nil, err
	}
	t.Resources["DataPlaneBoundary"] = &iam.ManagedPolicy{
		ManagedPolicyName: str(policy.DataPlaneBoundaryName(p.Qualifier)),
		Description:       str("berth: permissions boundary of every role the data plane stack creates; the provisioner cannot change it"),
		PolicyDocument:    boundaryDoc,
	}
	t.Outputs["DataPlaneBoundaryArn"] = cloudformation.Output{Value: cloudformation.Ref("DataPlaneBoundary")}
	t.Resources["VersionParameter"] = &ssm.Parameter{
		Name: str(n.VersionParameter), Type: "String", Value: fmt.Sprint(BootstrapVersion),
		Description: str("berth bootstrap version; berth refuses to deploy with an older one"),
	}
	t.Outputs["BootstrapVersion"] = cloudformation.Output{Value: cloudformation.GetAtt("VersionParameter", "Value")}
	return &Result{Template: t, Warnings: warnings}, nil
}

// ErrUnknownTemplate is returned by RenderKind for an unknown kind.
var ErrUnknownTemplate = errors.New("unknown template kind")

// RenderKind renders "dataplane" or "bootstrap" in the given format: the
// entry point of `berth template render`.
func RenderKind(kind string, p Params, f Format) ([]byte, []string, error) {
	var (
		r   *Result
		err error
	)
	switch kind {
	case "dataplane":
		r, err = DataPlane(p)
	case "bootstrap":
		r, err = Bootstrap(p)
	default:
		return nil, nil, fmt.Errorf("render template %q: %w (known: dataplane, bootstrap)", kind, ErrUnknownTemplate)
	}
	if err != nil {
		return nil, nil, err
	}
	b, err := r.Render(f)
	return b, r.Warnings, err
}
