package awsconfig

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sso"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awserr"
)

// Portal is the part of the AWS access portal API berth calls: the
// accounts and permission sets the signed-in user may use. berth asks the
// portal rather than the account catalog because only the portal knows
// the account IDs and this user's assignments (standing ones, and
// escalations approved right now).
type Portal interface {
	sso.ListAccountsAPIClient
	sso.ListAccountRolesAPIClient
}

// Assignment is one account and permission set the user may use.
type Assignment struct {
	AccountID   string `json:"account_id"`
	AccountName string `json:"account_name"`
	RoleName    string `json:"permission_set"`
}

// ListAssignments returns every account and permission set the holder of
// token may use, sorted by account name and permission set.
func ListAssignments(ctx context.Context, p Portal, token string) ([]Assignment, error) {
	var out []Assignment
	accounts := sso.NewListAccountsPaginator(p, &sso.ListAccountsInput{AccessToken: aws.String(token)})
	for accounts.HasMorePages() {
		page, err := accounts.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list accounts in the AWS access portal: %w", awserr.Classify(err))
		}
		for _, a := range page.AccountList {
			id, name := aws.ToString(a.AccountId), aws.ToString(a.AccountName)
			roles := sso.NewListAccountRolesPaginator(p, &sso.ListAccountRolesInput{AccessToken: aws.String(token), AccountId: a.AccountId})
			for roles.HasMorePages() {
				page, err := roles.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("list permission sets of account %s (%s) in the AWS access portal: %w", name, id, awserr.Classify(err))
				}
				for _, r := range page.RoleList {
					out = append(out, Assignment{AccountID: id, AccountName: name, RoleName: aws.ToString(r.RoleName)})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].AccountName != out[j].AccountName {
			return out[i].AccountName < out[j].AccountName
		}
		return out[i].RoleName < out[j].RoleName
	})
	return out, nil
}

// Profiles names one profile per assignment (ProfileName) with the given
// region and output defaults.
func Profiles(as []Assignment, region, output string) []Profile {
	ps := make([]Profile, len(as))
	for i, a := range as {
		ps[i] = Profile{Name: ProfileName(a.AccountName, a.RoleName), AccountID: a.AccountID, RoleName: a.RoleName, Region: region, Output: output}
	}
	return ps
}

// ErrNotSignedIn is the kind of a missing, expired or foreign cached
// portal token: the user must run "aws sso login --sso-session NAME".
var ErrNotSignedIn = errkind.New("not signed in to the AWS access portal", errkind.PermissionDenied)

// cachedToken is the part of the AWS CLI's SSO token cache file
// (~/.aws/sso/cache/SHA1(SESSION).json) berth reads.
type cachedToken struct {
	AccessToken string    `json:"accessToken"`
	ExpiresAt   time.Time `json:"expiresAt"`
	StartURL    string    `json:"startUrl"`
}

// ReadToken reads the portal access token "aws sso login" cached at path
// for session s. The token must be unexpired at now and issued for s's
// start URL; otherwise the error is ErrNotSignedIn and never holds the
// token.
func ReadToken(path string, s Session, now time.Time) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no cached token at %s: %w", path, ErrNotSignedIn)
	}
	if err != nil {
		return "", fmt.Errorf("read cached SSO token: %w", err)
	}
	var t cachedToken
	if err := json.Unmarshal(data, &t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("cached token at %s is not an SSO token cache file: %w", path, ErrNotSignedIn)
	}
	switch {
	case t.StartURL != "" && t.StartURL != s.StartURL:
		return "", fmt.Errorf("the cached token at %s is for %s, not %s: %w", path, t.StartURL, s.StartURL, ErrNotSignedIn)
	case !t.ExpiresAt.After(now):
		return "", fmt.Errorf("the cached token at %s expired at %s: %w", path, t.ExpiresAt.UTC().Format(time.RFC3339), ErrNotSignedIn)
	}
	return t.AccessToken, nil
}

// TokenPath is where the AWS CLI's "aws sso login --sso-session NAME"
// caches the portal token: ~/.aws/sso/cache/SHA1(NAME).json.
func TokenPath(env func(string) string, session string) (string, error) {
	home := env("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("find the SSO token cache: set HOME: %w", err)
		}
	}
	sum := sha1.Sum([]byte(session))
	return filepath.Join(home, ".aws", "sso", "cache", hex.EncodeToString(sum[:])+".json"), nil
}
