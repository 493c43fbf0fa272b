package policy

import (
	"errors"
	"fmt"
	"strings"
)

// MaxSessionPolicyLen is what STS accepts for an inline session policy,
// counted without whitespace.
const MaxSessionPolicyLen = 2048

// SessionParams say what one project's vended credentials may reach.
type SessionParams struct {
	Partition string // "aws" when empty
	Account   string // owner of the parameters and keys; empty on S3-compatible services
	// Buckets are the data plane's artifact buckets, one per region.
	Buckets []string
	// Prefix is the project's key prefix in every bucket (the data plane's
	// prefix and the project name), without a trailing slash.
	Prefix string
	// ParameterPrefix is the latest-pointer parameter path of the project,
	// such as /berth/myapp; empty when pointers live in the store.
	ParameterPrefix string
}

// SessionPolicy renders the inline session policy the hub passes to
// AssumeRole when it vends credentials for one project. A session may do
// only what both the role's policies and this one allow, so this policy
// names resources and leaves the choice of actions to the role (artifact
// read or write): it stays small enough for STS's 2,048-character limit,
// which berth's full artifact policies exceed for long prefixes.
func SessionPolicy(p SessionParams) (*Document, error) {
	part := p.Partition
	if part == "" {
		part = "aws"
	}
	if len(p.Buckets) == 0 {
		return nil, errors.New("session policy: no bucket")
	}
	prefix := strings.Trim(p.Prefix, "/")
	for _, b := range p.Buckets {
		if err := (Params{Bucket: b, Prefix: prefix, Partition: p.Partition, Account: p.Account, ParameterPrefix: p.ParameterPrefix}).Validate(); err != nil {
			return nil, fmt.Errorf("session policy: %w", err)
		}
	}
	if prefix == "" {
		return nil, errors.New("session policy: a project prefix is required; without one the session would reach every project")
	}
	var objects, buckets Values
	for _, b := range p.Buckets {
		objects = append(objects, fmt.Sprintf("arn:%s:s3:::%s/%s/*", part, b, prefix))
		buckets = append(buckets, fmt.Sprintf("arn:%s:s3:::%s", part, b))
	}
	doc := &Document{Version: Version2012, Statement: []Statement{
		{Sid: "ProjectObjects", Effect: "Allow", Action: Values{"s3:*"}, Resource: objects},
		{Sid: "ProjectListing", Effect: "Allow", Action: Values{"s3:ListBucket"}, Resource: buckets,
			Condition: Condition{"StringLike": {"s3:prefix": Values{prefix + "/*"}}}},
		// No s3:prefix key exists for this action; the writer role grants it
		// to find its own abandoned uploads.
		{Sid: "ProjectUploads", Effect: "Allow", Action: Values{"s3:ListBucketMultipartUploads"}, Resource: buckets},
	}}
	if p.ParameterPrefix != "" && p.Account != "" {
		doc.Statement = append(doc.Statement, Statement{Sid: "ProjectPointers", Effect: "Allow",
			Action:   Values{"ssm:GetParameter", "ssm:PutParameter"},
			Resource: Values{fmt.Sprintf("arn:%s:ssm:*:%s:parameter%s/*", part, p.Account, strings.TrimSuffix(p.ParameterPrefix, "/"))}})
	}
	if p.Account != "" {
		// The role allows its key only through S3 (kms:ViaService); the
		// session must not take that away.
		doc.Statement = append(doc.Statement, Statement{Sid: "BucketKeys", Effect: "Allow",
			Action:   Values{"kms:Decrypt", "kms:GenerateDataKey"},
			Resource: Values{fmt.Sprintf("arn:%s:kms:*:%s:key/*", part, p.Account)}})
	}
	if n := doc.CompactLen(); n > MaxSessionPolicyLen {
		return nil, fmt.Errorf("session policy for prefix %q and %d bucket(s) is %d characters; STS accepts %d: use a shorter project name or data plane prefix",
			truncateForMessage(prefix, 40), len(p.Buckets), n, MaxSessionPolicyLen)
	}
	return doc, nil
}

func truncateForMessage(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
