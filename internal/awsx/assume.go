package awsx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awserr"
)

// AssumeRoleInput says which role to assume and how.
type AssumeRoleInput struct {
	RoleARN     string
	ExternalID  string // required by roles that a third party assumes; empty sends none
	SessionName string // shows in CloudTrail; empty means "berth-<user>"
	Tags        map[string]string
	Duration    time.Duration // 0 means the stscreds default (15 minutes); the cache renews
}

// roleARNPattern matches arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME.
var roleARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)

// sessionNamePattern is STS's RoleSessionName: 2 to 64 of [\w+=,.@-].
var sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// AssumeRole returns a copy of cfg whose credentials come from assuming
// in.RoleARN with cfg's credentials. It assumes the role once before it
// returns, so a wrong ARN, external ID or trust policy fails here, where
// the message can say which role, and not at the first API call.
func AssumeRole(ctx context.Context, cfg aws.Config, in AssumeRoleInput) (aws.Config, error) {
	if !roleARNPattern.MatchString(in.RoleARN) {
		return aws.Config{}, fmt.Errorf("assume role %q: not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", in.RoleARN)
	}
	session := in.SessionName
	if session == "" {
		session = SessionName("berth-" + currentUser())
	} else if !sessionNamePattern.MatchString(session) {
		return aws.Config{}, fmt.Errorf("assume role %s: session name %q must be 2 to 64 letters, digits or +=,.@_-", in.RoleARN, session)
	}
	provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), in.RoleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = session
		o.Duration = in.Duration
		if in.ExternalID != "" {
			o.ExternalID = aws.String(in.ExternalID)
		}
		for k, v := range in.Tags {
			o.Tags = append(o.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		// Sorted, so requests (and their logs) are the same every time.
		sort.Slice(o.Tags, func(i, j int) bool { return *o.Tags[i].Key < *o.Tags[j].Key })
	})
	creds := aws.NewCredentialsCache(provider)
	if _, err := creds.Retrieve(ctx); err != nil {
		err = awserr.Classify(err)
		switch {
		case isExpired(err):
			return aws.Config{}, fmt.Errorf("assume role %s: %w; the credentials used to assume it have expired", in.RoleARN, err)
		case errorCode(err) == "AccessDenied":
			hint := "the role's trust policy may not allow the caller, or may require an external ID"
			if in.ExternalID != "" {
				hint = "the external ID may be wrong, or the role's trust policy may not allow the caller"
			}
			return aws.Config{}, fmt.Errorf("assume role %s: %w; %s", in.RoleARN, err, hint)
		}
		return aws.Config{}, fmt.Errorf("assume role %s: %w", in.RoleARN, err)
	}
	out := cfg.Copy()
	out.Credentials = creds
	return out, nil
}

// SessionName makes s a valid STS role session name: characters outside
// [\w+=,.@-] become '-', and the result is 2 to 64 characters long.
func SessionName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+=,.@-", c) >= 0) {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	for len(b) < 2 {
		b = append(b, '-')
	}
	return string(b)
}

// currentUser names the local user for the default session name, so
// CloudTrail shows who assumed the role.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, k := range []string{"USER", "USERNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "unknown"
}

// CallerIdentity is who AWS thinks the caller is.
type CallerIdentity struct {
	Account string `json:"account"`
	ARN     string `json:"arn"`
	UserID  string `json:"user_id"`
}

// Identity asks STS who cfg's credentials belong to. source describes where
// the credentials came from (see CredentialSource); errors name it, and say
// what to do when the credentials are missing or expired.
func Identity(ctx context.Context, cfg aws.Config, source string) (CallerIdentity, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return CallerIdentity{}, credentialError(source, err)
	}
	return CallerIdentity{
		Account: aws.ToString(out.Account),
		ARN:     aws.ToString(out.Arn),
		UserID:  aws.ToString(out.UserId),
	}, nil
}

func credentialError(source string, err error) error {
	const verb = "get caller identity"
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s with %s: %w", verb, source, err)
	}
	err = awserr.Classify(err)
	switch {
	case isExpired(err):
		hint := "get fresh credentials"
		if p, ok := profileIn(source); ok {
			hint = "run aws sso login --profile " + p
		} else if source == defaultChain {
			hint = "run aws sso login, or get fresh credentials"
		}
		return fmt.Errorf("%s: the credentials from %s have expired: %w; %s", verb, source, denied(err), hint)
	case errors.Is(err, errkind.PermissionDenied):
		return fmt.Errorf("%s: AWS rejected the credentials from %s: %w", verb, source, err)
	case isMissing(err):
		return fmt.Errorf("%s: no usable credentials in %s: %w; pass --profile, set AWS_PROFILE or run aws configure",
			verb, source, denied(err))
	}
	return fmt.Errorf("%s with %s: %w", verb, source, err)
}

const defaultChain = "the default credential chain"

// CredentialSource describes where the SDK will take credentials from, in
// the SDK's own order: a --profile flag, then AWS_ACCESS_KEY_ID with
// AWS_SECRET_ACCESS_KEY, then a web identity token, then AWS_PROFILE, then
// the default profile and instance roles. (Environment keys beat
// AWS_PROFILE in aws-sdk-go-v2, unlike --profile.) It never includes values
// other than profile names.
func CredentialSource(env func(string) string, profile string) string {
	switch {
	case profile != "":
		return fmt.Sprintf("profile %q", profile)
	case env("AWS_ACCESS_KEY_ID") != "" && env("AWS_SECRET_ACCESS_KEY") != "":
		return "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	case env("AWS_WEB_IDENTITY_TOKEN_FILE") != "":
		return "the web identity token in AWS_WEB_IDENTITY_TOKEN_FILE"
	case env("AWS_PROFILE") != "":
		return fmt.Sprintf("profile %q (from AWS_PROFILE)", env("AWS_PROFILE"))
	}
	return defaultChain
}

// profileIn returns the profile name from a CredentialSource description.
func profileIn(source string) (string, bool) {
	rest, ok := strings.CutPrefix(source, "profile ")
	if !ok {
		return "", false
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return "", false
	}
	p, err := strconv.Unquote(q)
	return p, err == nil
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// isExpired recognises expired session tokens and SSO sessions.
func isExpired(err error) bool {
	var sso *ssocreds.InvalidTokenError
	if errors.As(err, &sso) {
		return true
	}
	switch errorCode(err) {
	case "ExpiredToken", "ExpiredTokenException":
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "token has expired") || strings.Contains(msg, "cached sso token is expired") ||
		strings.Contains(msg, "sso session has expired")
}

// isMissing recognises the SDK failing to find any credentials: the error
// comes from the credential provider, not from an AWS answer.
func isMissing(err error) bool {
	return errorCode(err) == "" && strings.Contains(err.Error(), "get credentials")
}

// deniedError marks a credential failure that never reached AWS (an
// expired SSO session, no credentials at all) as errkind.PermissionDenied,
// which awserr cannot see, so exit codes and hints treat it like a refusal.
type deniedError struct{ err error }

func (e *deniedError) Error() string   { return e.err.Error() }
func (e *deniedError) Unwrap() []error { return []error{errkind.PermissionDenied, e.err} }

func denied(err error) error {
	if errors.Is(err, errkind.PermissionDenied) {
		return err
	}
	return &deniedError{err}
}
