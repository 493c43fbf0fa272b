package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Kind names a policy berth renders.
type Kind string

const (
	KindArtifactRead  Kind = "artifact-read"
	KindArtifactWrite Kind = "artifact-write"
	KindConfigure     Kind = "configure"
	KindBackend       Kind = "backend"
	KindProvisioner   Kind = "provisioner"
	KindOps           Kind = "ops"
)

// Kinds lists every kind in the order the CLI documents them.
var Kinds = []Kind{KindArtifactRead, KindArtifactWrite, KindConfigure, KindBackend, KindProvisioner, KindOps,
	KindCacheRead, KindCacheWrite}

// Role is a rendered IAM role: what AWS::IAM::Role needs.
type Role struct {
	Trust  *Document
	Policy *Document // inline policy; nil when only managed policies are attached
	// Managed are customer managed policies created with the role and
	// attached to it (the bootstrap stack creates them).
	Managed             []ManagedPolicy
	ManagedPolicyARNs   []string
	PermissionsBoundary string
}

// ManagedPolicy is a customer managed policy berth creates.
type ManagedPolicy struct {
	Part     string // what it holds, the end of Name: "iam" in berth-provisioner-iam
	Name     string
	Document *Document
}

// Documents returns the role's identity policies: the inline one, then the
// managed ones it creates.
func (r *Role) Documents() []*Document {
	var out []*Document
	if r.Policy != nil {
		out = append(out, r.Policy)
	}
	for _, m := range r.Managed {
		out = append(out, m.Document)
	}
	return out
}

// Result is a rendered policy (Policy) or role (Role), with warnings the
// caller must show (for example when AdministratorAccess was asked for).
type Result struct {
	Kind     Kind
	Policy   *Document
	Role     *Role
	Warnings []string
}

// ErrUnknownKind is returned for a kind berth does not render.
var ErrUnknownKind = errors.New("unknown policy kind")

// Render renders one kind of policy from p.
//
// What each kind grants, and why (see also ACTIONS.md):
//
//	kind            action                          resource                               why
//	artifact-read   s3:ListBucket                   bucket, s3:prefix under PREFIX/        versions, exists, info list keys of a project
//	artifact-read   s3:GetObject                    PREFIX/*                               download data, read manifest.json and latest.json (GET and HEAD)
//	artifact-read   ssm:GetParameter                PARAMPREFIX/*                          read the bucket-name parameter and PROJECT/latest pointers
//	artifact-read   kms:Decrypt                     the key, via S3 only                   read SSE-KMS objects
//	artifact-write  (everything artifact-read has)                                         stage re-reads the manifest (same bytes: success) and latest
//	artifact-write  s3:ListBucketMultipartUploads   bucket                                 find and abort abandoned uploads (no s3:prefix key exists for it)
//	artifact-write  s3:PutObject                    PREFIX/*/*/data/*                      upload data objects; multipart create/upload part/complete are PutObject
//	artifact-write  s3:AbortMultipartUpload         PREFIX/*/*/data/*                      clean up a failed or abandoned multipart upload
//	artifact-write  s3:PutObject                    PREFIX/*/*/manifest.json               commit a version (create-only, If-None-Match: *)
//	artifact-write  s3:PutObject                    PREFIX/*/latest.json                   move the in-store latest pointer (If-Match)
//	artifact-write  ssm:PutParameter                PARAMPREFIX/*/latest                   move the SSM latest pointer
//	artifact-write  kms:GenerateDataKey             the key, via S3 only                   write SSE-KMS objects (with kms:Decrypt for multipart)
//	configure       ssm:GetParameter, PutParameter  PARAMPREFIX/bucket                     read and set the bucket-name configuration parameter
//	cache-read      see cachePolicy
//	cache-write     see cachePolicy
//	backend         see backendPolicy
//	provisioner     see provisionerPolicies and iamStatements
//	ops             see opsPolicy
//
// No kind grants s3:DeleteObject: a stager that loses a race leaves an orphan
// data object that verify and cleanup report; deleting it is an operator's
// decision, not a stager's.
func Render(kind Kind, p Params) (*Result, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("render %s: %w", kind, err)
	}
	return render(kind, p)
}

// RenderForTemplate renders like Render but without validating p, whose
// fields may hold CloudFormation substitutions such as "${AWS::Partition}"
// or "${ArtifactBucket}"; the cfn package wraps such strings in Fn::Sub.
func RenderForTemplate(kind Kind, p Params) (*Result, error) {
	return render(kind, p)
}

func render(kind Kind, p Params) (*Result, error) {
	var (
		r   = &Result{Kind: kind}
		err error
	)
	switch kind {
	case KindArtifactRead:
		r.Policy, err = artifactPolicy(p, false)
	case KindArtifactWrite:
		r.Policy, err = artifactPolicy(p, true)
	case KindConfigure:
		r.Policy, err = configurePolicy(p)
	case KindCacheRead, KindCacheWrite:
		r.Policy, err = cachePolicy(p, kind == KindCacheWrite)
	case KindBackend:
		r.Policy, err = backendPolicy(p)
	case KindProvisioner, KindOps:
		r.Role, r.Warnings, err = bootstrapRole(kind, p)
	default:
		return nil, fmt.Errorf("render %q: %w (known: %s)", kind, ErrUnknownKind, kindList())
	}
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", kind, err)
	}
	return r, nil
}

func kindList() string {
	var s []string
	for _, k := range Kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// JSON renders a policy kind as its policy document and a role kind as the
// properties of an AWS::IAM::Role, which the linter also reads.
func (r *Result) JSON() []byte {
	if r.Policy != nil {
		return r.Policy.JSON()
	}
	b, err := json.Marshal(r.Role)
	if err != nil {
		panic("policy: marshal role: " + err.Error())
	}
	var buf bytes.Buffer
	_ = json.Indent(&buf, b, "", "  ")
	buf.WriteByte('\n')
	return buf.Bytes()
}

// MarshalJSON renders the role with AWS::IAM::Role property names.
func (r *Role) MarshalJSON() ([]byte, error) {
	type inline struct {
		PolicyName     string
		PolicyDocument *Document
	}
	type managed struct {
		ManagedPolicyName string
		PolicyDocument    *Document
	}
	// ManagedPolicies is berth's addition to the properties of an
	// AWS::IAM::Role: the managed policies to create and attach, as
	// AWS::IAM::ManagedPolicy properties, so the linter and simulator see
	// their documents.
	type out struct {
		AssumeRolePolicyDocument *Document
		ManagedPolicyArns        []string  `json:",omitempty"`
		ManagedPolicies          []managed `json:",omitempty"`
		PermissionsBoundary      string    `json:",omitempty"`
		Policies                 []inline  `json:",omitempty"`
	}
	o := out{AssumeRolePolicyDocument: r.Trust, PermissionsBoundary: r.PermissionsBoundary}
	for _, m := range r.Managed {
		o.ManagedPolicies = append(o.ManagedPolicies, managed{m.Name, m.Document})
	}
	o.ManagedPolicyArns = append([]string(nil), r.ManagedPolicyARNs...)
	sort.Strings(o.ManagedPolicyArns)
	if r.Policy != nil {
		o.Policies = []inline{{PolicyName: "berth", PolicyDocument: r.Policy}}
	}
	return json.Marshal(o)
}

func allow(sid string, actions []string, resources ...string) Statement {
	return Statement{Sid: sid, Effect: "Allow", Action: actions, Resource: resources}
}

func doc(statements ...Statement) *Document {
	return &Document{Version: Version2012, Statement: statements}
}

// listStatement grants ListBucket only under the key prefix: s3:prefix is
// what ListObjectsV2's Prefix parameter is matched against.
func listStatement(p Params) Statement {
	s := allow("ListArtifacts", []string{"s3:ListBucket"}, p.bucketARN())
	if pre := p.keyPrefix(); pre != "" {
		s.Condition = Condition{"StringLike": {"s3:prefix": {pre + "*"}}}
	}
	return s
}

// kmsStatement limits key use to calls S3 makes on the caller's behalf.
func kmsStatement(p Params, actions ...string) Statement {
	s := allow("UseArtifactKey", actions, p.KMSKeyARN)
	if p.Region != "" {
		s.Condition = Condition{"StringEquals": {"kms:ViaService": {"s3." + p.Region + ".amazonaws.com"}}}
	} else {
		s.Condition = Condition{"StringLike": {"kms:ViaService": {"s3.*.amazonaws.com"}}}
	}
	return s
}

func artifactPolicy(p Params, write bool) (*Document, error) {
	if p.Bucket == "" {
		return nil, errors.New("a bucket is required")
	}
	d := doc(
		listStatement(p),
		allow("ReadArtifacts", []string{"s3:GetObject"}, p.objectARN("*")),
	)
	if p.ParameterPrefix != "" {
		d.Statement = append(d.Statement, allow("ReadParameters", []string{"ssm:GetParameter"}, p.parameterARN(p.paramPrefix()+"/*")))
	}
	if write {
		d.Statement = append(d.Statement,
			allow("FindAbandonedUploads", []string{"s3:ListBucketMultipartUploads"}, p.bucketARN()),
			allow("StageData", []string{"s3:AbortMultipartUpload", "s3:PutObject"}, p.objectARN("*/*/data/*")),
			allow("CommitVersions", []string{"s3:PutObject"}, p.objectARN("*/*/manifest.json"), p.objectARN("*/latest.json")),
		)
		if p.ParameterPrefix != "" {
			d.Statement = append(d.Statement, allow("MoveLatest", []string{"ssm:PutParameter"}, p.parameterARN(p.paramPrefix()+"/*/latest")))
		}
	}
	if p.KMSKeyARN != "" {
		if write {
			d.Statement = append(d.Statement, kmsStatement(p, "kms:Decrypt", "kms:GenerateDataKey"))
		} else {
			d.Statement = append(d.Statement, kmsStatement(p, "kms:Decrypt"))
		}
	}
	return d, nil
}

func configurePolicy(p Params) (*Document, error) {
	if p.ParameterPrefix == "" {
		return nil, errors.New("a parameter prefix is required")
	}
	return doc(allow("Configure", []string{"ssm:GetParameter", "ssm:PutParameter"},
		p.parameterARN(BucketParameterName(p.paramPrefix())))), nil
}

// BackendNames are the IAM names a bucket-scoped backend creates, derived
// from the bucket the way dstack derives them ("." and "-" become "_").
type BackendNames struct {
	Role, Policy, InstanceProfile string
	LogGroupPrefix                string // "/berth/BUCKET/"
	SecretPrefix                  string // "berth/BUCKET/"
}

// DeriveBackendNames derives and checks the backend's names.
func DeriveBackendNames(bucket string) (BackendNames, error) {
	u := strings.NewReplacer(".", "_", "-", "_").Replace(bucket)
	n := BackendNames{
		Role:            "berth_role_" + u,
		Policy:          "berth_policy_" + u,
		InstanceProfile: "berth_role_" + u,
		LogGroupPrefix:  "/berth/" + bucket + "/",
		SecretPrefix:    "berth/" + bucket + "/",
	}
	for _, c := range []struct {
		kind, name string
		max        int
	}{
		{"role", n.Role, MaxRoleNameLen},
		{"policy", n.Policy, MaxPolicyNameLen},
		{"instance profile", n.InstanceProfile, MaxInstanceProfileNameLen},
	} {
		if err := CheckIAMName(c.kind, c.name, c.max); err != nil {
			return BackendNames{}, err
		}
	}
	return n, nil
}

// backendPolicy is a bucket-scoped tool backend like dstack's:
//
//	s3:ListBucket, GetBucketLocation              bucket            list state and artifacts
//	s3:GetObject, PutObject, DeleteObject         bucket/*          the backend owns the whole bucket's state
//	logs:DescribeLogGroups                        *                 wildcard-only; find existing groups
//	logs:CreateLogGroup, FilterLogEvents, TagResource  log-group:/berth/BUCKET/*         job and runner logs
//	logs:CreateLogStream, PutLogEvents, GetLogEvents   .../log-stream:*                  write and read log streams
//	secretsmanager:ListSecrets                    *                 wildcard-only
//	secretsmanager:Create/Get/Put/Update/Delete/Describe/TagResource  secret:berth/BUCKET/*  credentials and secrets of the backend
//	ec2:Describe*                                 *                 wildcard-only lookups for launching
//	ec2:RunInstances                              REGION:ACCOUNT:* and images     launch job instances
//	ec2:CreateTags                                REGION:ACCOUNT:*  only during RunInstances/CreateSecurityGroup
//	ec2:CreateSecurityGroup, AuthorizeSecurityGroupIngress  security groups and VPCs  job networking
//	ec2:TerminateInstances                        instance/*        only where tag dstack_bucket equals the bucket
//	iam:GetRole, CreateRole, TagRole, AttachRolePolicy, PassRole (to ec2)  role/berth_role_BUCKET   instance role
//	iam:CreatePolicy, GetPolicy, TagPolicy        policy/berth_policy_BUCKET                       instance policy
//	iam:Create/GetInstanceProfile, AddRoleToInstanceProfile, TagInstanceProfile  instance-profile/berth_role_BUCKET
func backendPolicy(p Params) (*Document, error) {
	if p.Bucket == "" {
		return nil, errors.New("a bucket is required")
	}
	n, err := DeriveBackendNames(p.Bucket)
	if err != nil {
		return nil, err
	}
	part, reg, acct := p.partition(), p.region(), p.account()
	logGroup := fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s*", part, reg, acct, n.LogGroupPrefix)
	iamARN := func(kind, name string) string { return fmt.Sprintf("arn:%s:iam::%s:%s/%s", part, acct, kind, name) }
	ec2ARN := func(res string) string { return fmt.Sprintf("arn:%s:ec2:%s:%s:%s", part, reg, acct, res) }
	terminate := allow("TerminateOwnInstances", []string{"ec2:TerminateInstances"}, ec2ARN("instance/*"))
	terminate.Condition = Condition{"StringEquals": {"aws:ResourceTag/dstack_bucket": {p.Bucket}}}
	tags := allow("TagOnCreate", []string{"ec2:CreateTags"}, ec2ARN("*"))
	tags.Condition = Condition{"StringEquals": {"ec2:CreateAction": {"RunInstances", "CreateSecurityGroup"}}}
	passRole := allow("PassInstanceRole", []string{"iam:PassRole"}, iamARN("role", n.Role))
	passRole.Condition = Condition{"StringEquals": {"iam:PassedToService": {"ec2.amazonaws.com"}}}
	return doc(
		allow("BucketList", []string{"s3:GetBucketLocation", "s3:ListBucket"}, p.bucketARN()),
		allow("BucketObjects", []string{"s3:DeleteObject", "s3:GetObject", "s3:PutObject"}, p.bucketARN()+"/*"),
		allow("FindLogGroups", []string{"logs:DescribeLogGroups"}, "*"),
		allow("LogGroups", []string{"logs:CreateLogGroup", "logs:FilterLogEvents", "logs:TagResource"}, logGroup),
		allow("LogStreams", []string{"logs:CreateLogStream", "logs:GetLogEvents", "logs:PutLogEvents"}, logGroup+":log-stream:*"),
		allow("FindSecrets", []string{"secretsmanager:ListSecrets"}, "*"),
		allow("Secrets", []string{"secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret",
			"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:TagResource", "secretsmanager:UpdateSecret"},
			fmt.Sprintf("arn:%s:secretsmanager:%s:%s:secret:%s*", part, reg, acct, n.SecretPrefix)),
		allow("DescribeCompute", []string{"ec2:DescribeImages", "ec2:DescribeInstanceTypes", "ec2:DescribeInstances",
			"ec2:DescribeSecurityGroups", "ec2:DescribeSubnets"}, "*"),
		allow("LaunchInstances", []string{"ec2:RunInstances"}, ec2ARN("*"), fmt.Sprintf("arn:%s:ec2:%s::image/*", part, reg)),
		tags,
		allow("Networking", []string{"ec2:AuthorizeSecurityGroupIngress", "ec2:CreateSecurityGroup"}, ec2ARN("security-group/*"), ec2ARN("vpc/*")),
		terminate,
		allow("InstanceRole", []string{"iam:AttachRolePolicy", "iam:CreateRole", "iam:GetRole", "iam:TagRole"}, iamARN("role", n.Role)),
		passRole,
		allow("InstancePolicy", []string{"iam:CreatePolicy", "iam:GetPolicy", "iam:TagPolicy"}, iamARN("policy", n.Policy)),
		allow("InstanceProfile", []string{"iam:AddRoleToInstanceProfile", "iam:CreateInstanceProfile", "iam:GetInstanceProfile",
			"iam:TagInstanceProfile"}, iamARN("instance-profile", n.InstanceProfile)),
	), nil
}

// AdministratorAccessARN is AWS's managed administrator policy.
func AdministratorAccessARN(partition string) string {
	if partition == "" {
		partition = "aws"
	}
	return "arn:" + partition + ":iam::aws:policy/AdministratorAccess"
}

// TrustPolicy lets exactly one principal assume a role, and only with the
// external ID: the confused-deputy guard for a vendor acting for many
// customers.
//
// berth tags its sessions with berth:qualifier=Q (visible in CloudTrail), and
// STS refuses session tags unless the trust policy allows sts:TagSession.
// TagSession has its own statement without the external ID: whether STS puts
// sts:ExternalId in TagSession's request context is not documented, and a
// statement needing it could refuse every tagged AssumeRole. The statement
// still names only the trusted principal and allows only the qualifier tag
// with the role's own qualifier; on its own it grants nothing, since
// AssumeRole keeps its external ID condition.
func TrustPolicy(principal, externalID, qualifier string) *Document {
	if qualifier == "" {
		qualifier = DefaultQualifier
	}
	assume := Statement{Sid: "TrustedPrincipal", Effect: "Allow", Principal: AWSPrincipal(principal), Action: Values{"sts:AssumeRole"},
		Condition: Condition{"StringEquals": {"sts:ExternalId": {externalID}}}}
	tags := Statement{Sid: "QualifierSessionTag", Effect: "Allow", Principal: AWSPrincipal(principal), Action: Values{"sts:TagSession"},
		Condition: Condition{
			"StringEquals":              {"aws:RequestTag/" + QualifierTagKey: {qualifier}},
			"ForAllValues:StringEquals": {"aws:TagKeys": {QualifierTagKey}},
		}}
	return doc(assume, tags)
}

func bootstrapRole(kind Kind, p Params) (*Role, []string, error) {
	if p.TrustPrincipal == "" {
		return nil, nil, errors.New("a trust principal ARN is required")
	}
	if p.ExternalID == "" {
		return nil, nil, errors.New("an external ID is required: without it any customer of the trusted principal could make it act on this account")
	}
	r := &Role{Trust: TrustPolicy(p.TrustPrincipal, p.ExternalID, p.qualifier()), PermissionsBoundary: p.PermissionsBoundary}
	if kind == KindProvisioner && p.Administrator {
		r.ManagedPolicyARNs = []string{AdministratorAccessARN(p.Partition)}
		return r, []string{"the provisioner role gets AdministratorAccess: the trusted principal can do anything in this account; prefer the least-privilege default"}, nil
	}
	if kind == KindProvisioner {
		r.Managed = provisionerPolicies(p)
	} else {
		r.Policy = opsPolicy(p)
	}
	return r, nil, nil
}

// DataPlaneStackName is the name of the data plane stack in each region.
func DataPlaneStackName(qualifier string) string {
	if qualifier == "" {
		qualifier = DefaultQualifier
	}
	return qualifier + "-dataplane"
}

// bootstrapNames are the names the data plane stack uses, all derived from
// the qualifier, which is what the bootstrap roles are scoped to.
type bootstrapNames struct {
	stackARN, bucketARN, policyARN, keyARN, bucketParamARN, versionParamARN, hubRoleARN string
}

func (p Params) bootstrapNames() bootstrapNames {
	q, part, reg, acct := p.qualifier(), p.partition(), p.region(), p.account()
	pp := p.paramPrefix()
	if pp == "" {
		pp = "/" + q
	}
	return bootstrapNames{
		stackARN:        fmt.Sprintf("arn:%s:cloudformation:%s:%s:stack/%s*/*", part, reg, acct, DataPlaneStackName(q)),
		bucketARN:       fmt.Sprintf("arn:%s:s3:::%s-*", part, q),
		policyARN:       fmt.Sprintf("arn:%s:iam::%s:policy/%s-*", part, acct, q),
		hubRoleARN:      fmt.Sprintf("arn:%s:iam::%s:role/%s", part, acct, HubRoleName(q, "*", "*")),
		keyARN:          fmt.Sprintf("arn:%s:kms:%s:%s:key/*", part, reg, acct),
		bucketParamARN:  p.parameterARN(BucketParameterName(pp)),
		versionParamARN: p.parameterARN(BootstrapVersionParameterName(q)),
	}
}

func tagged(s Statement, q string) Statement {
	s.Condition = Condition{"StringEquals": {"aws:ResourceTag/" + QualifierTagKey: {q}}}
	return s
}

// provisionerPolicies allow what deploying the data plane stack needs, on
// names with the qualifier prefix and keys with the qualifier tag. They are
// managed policies, not one inline policy: a role's inline policies share
// 10,240 characters, which the provisioner was close to, while each managed
// policy has 6,144 and a role holds 10 (see MaxManagedPolicySize).
//
//	Q-provisioner-deploy:
//	cloudformation:Create/Describe/Execute/DeleteChangeSet, DescribeStacks,
//	  DescribeStackEvents, DescribeStackResources, ListStackResources,
//	  GetTemplate, DeleteStack, TagResource, DetectStackDrift,
//	  DescribeStackResourceDrifts                    stack/Q-*/*   deploy through change sets, watch, remove
//	cloudformation:DescribeStackDriftDetectionStatus, ValidateTemplate   *   wildcard-only
//	s3:CreateBucket, ListBucket, Get/PutBucketPolicy, DeleteBucketPolicy, Get/PutBucketPublicAccessBlock,
//	  Get/PutEncryptionConfiguration, Get/PutBucketVersioning, Get/PutLifecycleConfiguration
//	  (also what DeleteBucketEncryption/DeleteBucketLifecycle need), Get/PutBucketOwnershipControls,
//	  Get/PutBucketTagging, GetBucketLocation        Q-*           the data plane bucket (retained on delete: no DeleteBucket)
//	kms:CreateKey, TagResource                       with request tag berth:qualifier=Q   the bucket key
//	kms:DescribeKey, Get/PutKeyPolicy, Enable/DisableKeyRotation, GetKeyRotationStatus,
//	  UpdateKeyDescription, ListResourceTags         keys tagged berth:qualifier=Q (key retained: no ScheduleKeyDeletion)
//	kms:UntagResource                                tagged keys, any tag but berth:qualifier
//	ssm:GetParameter(s), PutParameter, DeleteParameter, AddTagsToResource,
//	  RemoveTagsFromResource, ListTagsForResource    PARAMPREFIX/bucket   the bucket-name parameter
//	ssm:GetParameter                                 /berth-bootstrap/Q/version   refuse an older bootstrap
//
//	Q-provisioner-iam: see iamStatements
//	Q-provisioner-network, Q-provisioner-network-manage: see networkCreateStatements
func provisionerPolicies(p Params) []ManagedPolicy {
	n, q := p.bootstrapNames(), p.qualifier()
	deploy := doc(
		allow("DeployDataPlaneStacks", []string{"cloudformation:CreateChangeSet", "cloudformation:DeleteChangeSet",
			"cloudformation:DeleteStack", "cloudformation:DescribeChangeSet", "cloudformation:DescribeStackEvents",
			"cloudformation:DescribeStackResourceDrifts", "cloudformation:DescribeStackResources", "cloudformation:DescribeStacks",
			"cloudformation:DetectStackDrift", "cloudformation:ExecuteChangeSet", "cloudformation:GetTemplate",
			"cloudformation:ListStackResources", "cloudformation:TagResource"}, n.stackARN),
		allow("StackChecks", []string{"cloudformation:DescribeStackDriftDetectionStatus", "cloudformation:ValidateTemplate"}, "*"),
		allow("DataPlaneBuckets", []string{"s3:CreateBucket", "s3:DeleteBucketPolicy", "s3:GetBucketLocation", "s3:GetBucketOwnershipControls", "s3:GetBucketPolicy",
			"s3:GetBucketPublicAccessBlock", "s3:GetBucketTagging", "s3:GetBucketVersioning", "s3:GetEncryptionConfiguration",
			"s3:GetLifecycleConfiguration", "s3:ListBucket", "s3:PutBucketOwnershipControls", "s3:PutBucketPolicy",
			"s3:PutBucketPublicAccessBlock", "s3:PutBucketTagging", "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration",
			"s3:PutLifecycleConfiguration"}, n.bucketARN),
		allow("DataPlaneParameters", []string{"ssm:AddTagsToResource", "ssm:DeleteParameter", "ssm:GetParameter", "ssm:GetParameters",
			"ssm:ListTagsForResource", "ssm:PutParameter", "ssm:RemoveTagsFromResource"}, n.bucketParamARN),
		allow("ReadBootstrapVersion", []string{"ssm:GetParameter"}, n.versionParamARN),
	)
	if p.KMSKeyARN == "" {
		create := allow("CreateDataPlaneKeys", []string{"kms:CreateKey"}, "*")
		create.Condition = Condition{"StringEquals": {"aws:RequestTag/" + QualifierTagKey: {q}}}
		tag := allow("TagDataPlaneKeys", []string{"kms:TagResource"}, n.keyARN)
		tag.Condition = Condition{"StringEquals": {"aws:RequestTag/" + QualifierTagKey: {q}}}
		// Untagging may remove tags the template no longer sets, never the
		// qualifier tag every other key statement depends on.
		untag := tagged(allow("UntagDataPlaneKeys", []string{"kms:UntagResource"}, n.keyARN), q)
		untag.Condition["ForAllValues:StringNotEquals"] = map[string]Values{"aws:TagKeys": {QualifierTagKey}}
		deploy.Statement = append(deploy.Statement, create, tag,
			tagged(allow("ManageDataPlaneKeys", []string{"kms:DescribeKey", "kms:DisableKeyRotation", "kms:EnableKeyRotation",
				"kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags", "kms:PutKeyPolicy",
				"kms:UpdateKeyDescription"}, n.keyARN), q),
			untag)
	}
	out := []ManagedPolicy{
		{Part: "deploy", Document: deploy},
		{Part: "iam", Document: doc(iamStatements(p)...)},
		{Part: "network", Document: doc(networkCreateStatements(p)...)},        // see network.go
		{Part: "network-manage", Document: doc(networkManageStatements(p)...)}, // see network.go
	}
	for i := range out {
		out[i].Name = ProvisionerPolicyName(q, out[i].Part)
	}
	return out
}

// ProvisionerPolicyName is the name of one of the provisioner's managed
// policies, which the bootstrap stack creates.
func ProvisionerPolicyName(qualifier, part string) string {
	if qualifier == "" {
		qualifier = DefaultQualifier
	}
	return qualifier + "-provisioner-" + part
}

// iamStatements are the provisioner's IAM permissions. Every role it creates
// must carry the data plane boundary (DataPlaneBoundary), and it cannot
// remove or change that boundary, so a role it creates, trusted by itself and
// holding a policy it wrote, gets no more than the data plane roles need:
//
//	iam:Create/Delete/GetPolicy, Create/Delete/Get/ListPolicyVersion(s),
//	  TagPolicy, UntagPolicy                         policy/Q-*    the artifact and cache managed policies
//	iam:Delete/Get/UpdateRole, UpdateRoleDescription, Tag/UntagRole,
//	  GetRolePolicy, List(Attached)RolePolicies      role/Q-hub-*  the artifact roles a hub assumes
//	iam:CreateRole, PutRolePermissionsBoundary, UpdateAssumeRolePolicy
//	                                                 role/Q-hub-*, only with iam:PermissionsBoundary = the boundary
//	iam:AttachRolePolicy                             role/Q-hub-* with the boundary, only policies policy/Q-*
//	iam:DetachRolePolicy                             role/Q-hub-*, only policies policy/Q-*
//	deny iam:DeleteRolePermissionsBoundary           every role
//	deny iam:CreatePolicyVersion, SetDefaultPolicyVersion, DeletePolicy(Version)
//	                                                 the boundary and the provisioner's own policies
//
// Which actions take iam:PermissionsBoundary is AWS's table (Service
// Authorization Reference, "Actions, resources, and condition keys for AWS
// Identity and Access Management (IAM)",
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html):
// CreateRole, PutRolePermissionsBoundary, AttachRolePolicy, PutRolePolicy,
// UpdateAssumeRolePolicy and the other role writes take it; the policy
// version actions take none, hence the deny by resource. For CreateRole and
// PutRolePermissionsBoundary the key is the boundary requested, for the
// others the one the role has, so a role without the boundary (a hub role
// of an older bootstrap) can be given it, and nothing else, until it has it.
// UpdateAssumeRolePolicy needs it too: re-trusting such a role to the
// provisioner after rewriting a policy it holds would bypass the boundary.
// PutRolePolicy is not granted at all: berth's roles hold only managed
// policies. TestIAMConditionKeys checks these against the embedded table.
func iamStatements(p Params) []Statement {
	n := p.bootstrapNames()
	boundary := p.DataPlaneBoundaryARN()
	bounded := func(s Statement) Statement {
		if s.Condition == nil {
			s.Condition = Condition{}
		}
		s.Condition["ArnEquals"] = map[string]Values{"iam:PermissionsBoundary": {boundary}}
		return s
	}
	denyBoundaryRemoval := Statement{Sid: "KeepRoleBoundaries", Effect: "Deny", Action: Values{"iam:DeleteRolePermissionsBoundary"},
		Resource: Values{fmt.Sprintf("arn:%s:iam::%s:role/*", p.partition(), p.account())}}
	protect := Statement{Sid: "ProtectBootstrapPolicies", Effect: "Deny", Action: Values{"iam:CreatePolicyVersion", "iam:DeletePolicy",
		"iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion"},
		Resource: Values{boundary, fmt.Sprintf("arn:%s:iam::%s:policy/%s", p.partition(), p.account(), ProvisionerPolicyName(p.qualifier(), "*"))}}
	return []Statement{
		allow("DataPlanePolicies", []string{"iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
			"iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions", "iam:TagPolicy", "iam:UntagPolicy"}, n.policyARN),
		allow("DataPlaneHubRoles", []string{"iam:DeleteRole", "iam:GetRole", "iam:GetRolePolicy",
			"iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:TagRole", "iam:UntagRole",
			"iam:UpdateRole", "iam:UpdateRoleDescription"}, n.hubRoleARN),
		bounded(allow("BoundedHubRoles", []string{"iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:UpdateAssumeRolePolicy"}, n.hubRoleARN)),
		bounded(attachOwnPolicies(allow("AttachToBoundedHubRoles", []string{"iam:AttachRolePolicy"}, n.hubRoleARN), n.policyARN)),
		attachOwnPolicies(allow("DetachFromHubRoles", []string{"iam:DetachRolePolicy"}, n.hubRoleARN), n.policyARN),
		denyBoundaryRemoval,
		protect,
	}
}

// attachOwnPolicies limits a statement to berth's own managed policies.
func attachOwnPolicies(s Statement, policyARN string) Statement {
	s.Condition = Condition{"ArnLike": {"iam:PolicyARN": {policyARN}}}
	return s
}

// HubRoleName is the name of a data plane's artifact role that a hub
// assumes: role is reader or writer. IAM is global and the data plane
// stack is regional, so the name carries the region.
func HubRoleName(qualifier, role, region string) string {
	if qualifier == "" {
		qualifier = DefaultQualifier
	}
	if role == "*" && region == "*" {
		return qualifier + "-hub-*"
	}
	return qualifier + "-hub-" + role + "-" + region
}

// opsBucketReads is what AWS::S3::Bucket's read handler calls: drift
// detection reads every bucket property, set or not (cfn/testdata/handlers.json).
// s3:ListBucket is its existence check (HeadBucket); it lets ops list
// artifact names, not read them.
var opsBucketReads = []string{"s3:GetAccelerateConfiguration", "s3:GetAnalyticsConfiguration", "s3:GetBucketCORS",
	"s3:GetBucketLocation", "s3:GetBucketLogging", "s3:GetBucketMetadataTableConfiguration", "s3:GetBucketNotification",
	"s3:GetBucketObjectLockConfiguration", "s3:GetBucketOwnershipControls", "s3:GetBucketPolicy", "s3:GetBucketPublicAccessBlock",
	"s3:GetBucketTagging", "s3:GetBucketVersioning", "s3:GetBucketWebsite", "s3:GetEncryptionConfiguration",
	"s3:GetIntelligentTieringConfiguration", "s3:GetInventoryConfiguration", "s3:GetLifecycleConfiguration",
	"s3:GetMetricsConfiguration", "s3:GetReplicationConfiguration", "s3:ListBucket"}

// opsPolicy is read-only on the data plane: status and drift.
//
//	cloudformation:DescribeStacks, DescribeStackEvents, DescribeStackResources,
//	  ListStackResources, GetTemplate, DetectStackDrift, DescribeStackResourceDrifts   stack/Q-*/*
//	cloudformation:DescribeStackDriftDetectionStatus  *   wildcard-only
//	s3:Get* of every bucket property, ListBucket     Q-*   drift detection runs the bucket's read handler
//	ssm:GetParameter(s), ListTagsForResource         PARAMPREFIX/bucket, bootstrap version
//	iam:GetPolicy, GetPolicyVersion, ListEntitiesForPolicy   policy/Q-*
//	iam:GetRole, GetRolePolicy, List(Attached)RolePolicies   role/Q-hub-*
//	kms:DescribeKey, GetKeyPolicy, GetKeyRotationStatus, ListResourceTags   keys tagged berth:qualifier=Q
//
// The read handlers' actions are listed in cfn/testdata/handlers.json;
// cfn's TestHandlerPermissions checks both roles against it.
func opsPolicy(p Params) *Document {
	n, q := p.bootstrapNames(), p.qualifier()
	d := doc(
		allow("InspectDataPlaneStacks", []string{"cloudformation:DescribeStackEvents", "cloudformation:DescribeStackResourceDrifts",
			"cloudformation:DescribeStackResources", "cloudformation:DescribeStacks", "cloudformation:DetectStackDrift",
			"cloudformation:GetTemplate", "cloudformation:ListStackResources"}, n.stackARN),
		allow("DriftStatus", []string{"cloudformation:DescribeStackDriftDetectionStatus"}, "*"),
		allow("InspectDataPlaneBuckets", opsBucketReads, n.bucketARN),
		allow("ReadParameters", []string{"ssm:GetParameter", "ssm:GetParameters", "ssm:ListTagsForResource"}, n.bucketParamARN, n.versionParamARN),
		allow("InspectDataPlanePolicies", []string{"iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListEntitiesForPolicy"}, n.policyARN),
		allow("InspectDataPlaneHubRoles", []string{"iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies",
			"iam:ListRolePolicies"}, n.hubRoleARN),
		tagged(allow("InspectDataPlaneKeys", []string{"kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus",
			"kms:ListResourceTags"}, n.keyARN), q),
	)
	d.Statement = append(d.Statement, opsNetworkStatements(p)...) // see network.go
	return d
}
