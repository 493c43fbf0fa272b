package policy

import (
	"fmt"
	"regexp"
	"strings"
)

// Params are the inputs of the renderers. Empty optional fields mean "any"
// where an ARN needs a value (Region, Account) and "not used" elsewhere.
type Params struct {
	Bucket              string // S3 bucket holding artifacts (artifact kinds, backend)
	Prefix              string // key prefix inside the bucket, without leading or trailing "/"
	ParameterPrefix     string // SSM parameter prefix, e.g. "/berth"
	Account             string // 12-digit account ID
	Region              string // e.g. "eu-west-1"
	Partition           string // "aws" when empty
	KMSKeyARN           string // key encrypting the bucket, if SSE-KMS with a customer key
	TrustPrincipal      string // provisioner/ops: the one principal ARN allowed to assume the role
	ExternalID          string // provisioner/ops: required sts:ExternalId
	PermissionsBoundary string // provisioner/ops: managed policy ARN set as the boundary
	Administrator       bool   // provisioner: AdministratorAccess instead of least privilege
	Qualifier           string // bootstrap: prefix of every name the data plane uses; "berth" when empty
}

// DefaultQualifier names berth's resources when no qualifier is given.
const DefaultQualifier = "berth"

// QualifierTagKey is the tag the provisioner's KMS permissions are
// conditioned on; the data plane template sets it on the key it creates.
const QualifierTagKey = "berth:qualifier"

var (
	bucketRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	prefixRe     = regexp.MustCompile(`^[A-Za-z0-9!_.'()/-]*$`)
	paramRe      = regexp.MustCompile(`^(/[A-Za-z0-9_.-]+)+$`)
	accountRe    = regexp.MustCompile(`^[0-9]{12}$`)
	regionRe     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	qualifierRe  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)
	externalIDRe = regexp.MustCompile(`^[A-Za-z0-9+=,.@:/_-]+$`)
	kmsKeyRe     = regexp.MustCompile(`^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+$`)
	principalRe  = regexp.MustCompile(`^arn:[a-z-]+:(iam::[0-9]{12}:(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)|sts::[0-9]{12}:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+)$`)
	boundaryRe   = regexp.MustCompile(`^arn:[a-z-]+:iam::([0-9]{12}|aws):policy/[\w+=,.@/-]+$`)
)

var partitions = map[string]bool{"aws": true, "aws-cn": true, "aws-us-gov": true, "aws-iso": true,
	"aws-iso-b": true, "aws-iso-e": true, "aws-iso-f": true, "aws-eusc": true}

// Validate checks the fields that are set; each renderer then checks the
// ones it requires.
func (p Params) Validate() error {
	check := func(ok bool, field, value, want string) error {
		if ok {
			return nil
		}
		return fmt.Errorf("invalid %s %q: %s", field, value, want)
	}
	for _, c := range []error{
		check(p.Bucket == "" || (bucketRe.MatchString(p.Bucket) && !strings.Contains(p.Bucket, "..")), "bucket", p.Bucket, "3-63 lower-case letters, digits, dots and hyphens"),
		check(prefixRe.MatchString(p.Prefix) && !strings.HasPrefix(p.Prefix, "/") && !strings.Contains(p.Prefix, "//"), "prefix", p.Prefix, "letters, digits and !_.'()/- without a leading slash"),
		check(p.ParameterPrefix == "" || paramRe.MatchString(strings.TrimSuffix(p.ParameterPrefix, "/")), "parameter prefix", p.ParameterPrefix, "a path such as /berth"),
		check(p.Account == "" || accountRe.MatchString(p.Account), "account", p.Account, "12 digits"),
		check(p.Region == "" || regionRe.MatchString(p.Region), "region", p.Region, "a region such as eu-west-1"),
		check(p.Partition == "" || partitions[p.Partition], "partition", p.Partition, "aws, aws-cn, aws-us-gov or an ISO partition"),
		check(p.KMSKeyARN == "" || kmsKeyRe.MatchString(p.KMSKeyARN), "KMS key ARN", p.KMSKeyARN, "arn:PARTITION:kms:REGION:ACCOUNT:key/ID"),
		check(p.TrustPrincipal == "" || principalRe.MatchString(p.TrustPrincipal), "trust principal", p.TrustPrincipal, "an IAM role, user or account root ARN"),
		check(p.ExternalID == "" || (externalIDRe.MatchString(p.ExternalID) && len(p.ExternalID) >= 2 && len(p.ExternalID) <= 1224), "external ID", p.ExternalID, "2-1224 characters of letters, digits and +=,.@:/_-"),
		check(p.PermissionsBoundary == "" || boundaryRe.MatchString(p.PermissionsBoundary), "permissions boundary", p.PermissionsBoundary, "a managed policy ARN"),
		check(p.Qualifier == "" || qualifierRe.MatchString(p.Qualifier), "qualifier", p.Qualifier, "1-20 lower-case letters, digits and hyphens"),
	} {
		if c != nil {
			return c
		}
	}
	return nil
}

func (p Params) partition() string {
	if p.Partition == "" {
		return "aws"
	}
	return p.Partition
}

func (p Params) region() string {
	if p.Region == "" {
		return "*"
	}
	return p.Region
}

func (p Params) account() string {
	if p.Account == "" {
		return "*"
	}
	return p.Account
}

func (p Params) qualifier() string {
	if p.Qualifier == "" {
		return DefaultQualifier
	}
	return p.Qualifier
}

// keyPrefix is the artifact key prefix with a trailing "/", or "" for the
// bucket root.
func (p Params) keyPrefix() string {
	pre := strings.Trim(p.Prefix, "/")
	if pre == "" {
		return ""
	}
	return pre + "/"
}

// paramPrefix is the SSM parameter prefix without a trailing "/".
func (p Params) paramPrefix() string {
	return strings.TrimSuffix(p.ParameterPrefix, "/")
}

func (p Params) bucketARN() string {
	return fmt.Sprintf("arn:%s:s3:::%s", p.partition(), p.Bucket)
}

// objectARN is the ARN of keys matching pattern under the key prefix.
func (p Params) objectARN(pattern string) string {
	return fmt.Sprintf("arn:%s:s3:::%s/%s%s", p.partition(), p.Bucket, p.keyPrefix(), pattern)
}

// parameterARN is the ARN of an SSM parameter; IAM drops the name's leading
// "/" after "parameter".
func (p Params) parameterARN(name string) string {
	return fmt.Sprintf("arn:%s:ssm:%s:%s:parameter/%s", p.partition(), p.region(), p.account(), strings.TrimPrefix(name, "/"))
}

// BucketParameterName is the SSM parameter holding the data plane's bucket
// name, under the parameter prefix.
func BucketParameterName(parameterPrefix string) string {
	return strings.TrimSuffix(parameterPrefix, "/") + "/bucket"
}

// LatestParameterName is the SSM parameter holding a project's latest
// version.
func LatestParameterName(parameterPrefix, project string) string {
	return strings.TrimSuffix(parameterPrefix, "/") + "/" + project + "/latest"
}

// BootstrapVersionParameterName is the SSM parameter the bootstrap stack
// writes its version to, so berth can refuse an older bootstrap.
func BootstrapVersionParameterName(qualifier string) string {
	if qualifier == "" {
		qualifier = DefaultQualifier
	}
	return "/berth-bootstrap/" + qualifier + "/version"
}

// IAM name limits: role names 64 characters, policy and instance profile
// names 128, all of [A-Za-z0-9+=,.@_-].
const (
	MaxRoleNameLen            = 64
	MaxPolicyNameLen          = 128
	MaxInstanceProfileNameLen = 128
)

var iamNameRe = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]+$`)

// CheckIAMName checks a role, policy or instance-profile name against IAM's
// character set and the given length limit.
func CheckIAMName(kind, name string, max int) error {
	if !iamNameRe.MatchString(name) {
		return fmt.Errorf("invalid IAM %s name %q: only letters, digits and +=,.@_- are allowed", kind, name)
	}
	if len(name) > max {
		return fmt.Errorf("invalid IAM %s name %q: %d characters, IAM allows %d; use a shorter bucket or qualifier", kind, name, len(name), max)
	}
	return nil
}
