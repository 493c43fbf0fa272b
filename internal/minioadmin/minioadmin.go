// Package minioadmin calls the four endpoints of MinIO's admin API that
// berth needs to create identities: look up a user, create a user or change
// its secret, put a policy and attach it. Requests are signed with AWS
// Signature V4 (service "s3"), and secrets travel encrypted with a key
// derived from the caller's secret key, as the admin API requires.
//
// It replaces MinIO's own admin client library, which links about 30 MB and
// 29 modules (Prometheus among them) for these four calls.
package minioadmin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

const apiPrefix = "/minio/admin/v3"

// maxResponse bounds what is read of any answer; the four calls return a
// few hundred bytes.
const maxResponse = 1 << 20

// ErrNoSuchUser is returned (wrapped in *Error) when a user does not exist.
var ErrNoSuchUser = errors.New("no such user")

// Error is an error answer of the admin API. It satisfies smithy.APIError,
// so callers sort it into kinds the way they sort S3 errors.
type Error struct {
	StatusCode int
	Code       string
	Message    string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("minio admin API: %s: %s (HTTP %d)", e.Code, msg, e.StatusCode)
}

// ErrorCode, ErrorMessage and ErrorFault make *Error a smithy.APIError.
func (e *Error) ErrorCode() string    { return e.Code }
func (e *Error) ErrorMessage() string { return e.Message }
func (e *Error) ErrorFault() smithy.ErrorFault {
	if e.StatusCode >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// Is lets callers test for ErrNoSuchUser with errors.Is.
func (e *Error) Is(target error) bool {
	return target == ErrNoSuchUser && e.Code == "XMinioAdminNoSuchUser"
}

// Client calls one MinIO server's admin API.
type Client struct {
	base   *url.URL
	region string
	creds  aws.Credentials
	http   *http.Client
	now    func() time.Time
}

// New returns a client for the server at endpoint (scheme and host), signing
// for region with creds. hc may be nil.
func New(endpoint, region string, creds aws.Credentials, hc *http.Client) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("admin endpoint %q: want http(s)://HOST[:PORT]", endpoint)
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return nil, errors.New("admin credentials: access key and secret key are required")
	}
	if region == "" {
		region = "us-east-1"
	}
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: &url.URL{Scheme: u.Scheme, Host: u.Host}, region: region, creds: creds, http: hc, now: time.Now}, nil
}

// UserInfo is what the server says about a user.
type UserInfo struct {
	Status   string   // enabled or disabled
	Policies []string // attached policies
}

// UserInfo looks up a user; a missing user is ErrNoSuchUser.
func (c *Client) UserInfo(ctx context.Context, name string) (UserInfo, error) {
	body, err := c.do(ctx, http.MethodGet, "/user-info", url.Values{"accessKey": {name}}, nil)
	if err != nil {
		return UserInfo{}, err
	}
	var raw struct {
		Status     string `json:"status"`
		PolicyName string `json:"policyName"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return UserInfo{}, fmt.Errorf("decode user info of %s: %w", name, err)
	}
	info := UserInfo{Status: raw.Status}
	for _, p := range strings.Split(raw.PolicyName, ",") {
		if p = strings.TrimSpace(p); p != "" {
			info.Policies = append(info.Policies, p)
		}
	}
	return info, nil
}

// SetUser creates an enabled user with secret, or gives an existing user
// that secret (and enables it). Its policies stay as they were.
func (c *Client) SetUser(ctx context.Context, name, secret string) error {
	plain, err := json.Marshal(struct {
		SecretKey string `json:"secretKey"`
		Status    string `json:"status"`
	}{secret, "enabled"})
	if err != nil {
		return err
	}
	sealed, err := seal(c.creds.SecretAccessKey, plain)
	if err != nil {
		return fmt.Errorf("encrypt secret of %s: %w", name, err)
	}
	_, err = c.do(ctx, http.MethodPut, "/add-user", url.Values{"accessKey": {name}}, sealed)
	return err
}

// PutPolicy creates or replaces the IAM policy document doc under name.
func (c *Client) PutPolicy(ctx context.Context, name string, doc []byte) error {
	if len(doc) == 0 {
		return errors.New("put policy: empty document")
	}
	_, err := c.do(ctx, http.MethodPut, "/add-canned-policy", url.Values{"name": {name}}, doc)
	return err
}

// AttachPolicy attaches policies to user. Policies already attached are
// not an error.
func (c *Client) AttachPolicy(ctx context.Context, user string, policies ...string) error {
	plain, err := json.Marshal(struct {
		Policies []string `json:"policies"`
		User     string   `json:"user"`
	}{policies, user})
	if err != nil {
		return err
	}
	sealed, err := seal(c.creds.SecretAccessKey, plain)
	if err != nil {
		return fmt.Errorf("encrypt policy attachment for %s: %w", user, err)
	}
	body, err := c.do(ctx, http.MethodPost, "/idp/builtin/policy/attach", nil, sealed)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Code == "XMinioAdminPolicyChangeAlreadyApplied" {
		return nil
	}
	if err != nil || len(body) == 0 {
		return err
	}
	// The answer is encrypted too; reading it proves the server derived the
	// same key, so the attachment is the one this client asked for.
	plainResp, err := open(c.creds.SecretAccessKey, body)
	if err != nil {
		return fmt.Errorf("read policy attachment answer for %s: %w", user, err)
	}
	var resp struct {
		Attached []string `json:"policiesAttached"`
	}
	if err := json.Unmarshal(plainResp, &resp); err != nil {
		return fmt.Errorf("decode policy attachment answer for %s: %w", user, err)
	}
	return nil
}

// retries bounds how often a call is sent again to a server that says it is
// not ready (503: MinIO answers so until its IAM subsystem has loaded, for
// a while after it reports itself healthy). All four calls are idempotent.
var retries = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}

// do sends one signed request and returns the body of a 2xx answer,
// retrying while the server is not ready.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	for _, wait := range retries {
		data, err := c.once(ctx, method, path, query, body)
		var e *Error
		if !errors.As(err, &e) || e.StatusCode != http.StatusServiceUnavailable {
			return data, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	return c.once(ctx, method, path, query, body)
}

func (c *Client) once(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	u := *c.base
	u.Path = apiPrefix + path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if err := v4.NewSigner().SignHTTP(ctx, c.creds, req, hash, "s3", c.region, c.now()); err != nil {
		return nil, fmt.Errorf("sign %s %s: %w", method, path, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("read answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, parseError(resp.StatusCode, data)
	}
	return data, nil
}

// parseError reads an error answer: JSON from the admin API, XML from an
// S3 server without one.
func parseError(status int, body []byte) error {
	e := &Error{StatusCode: status}
	var fields struct {
		Code    string
		Message string
	}
	if json.Unmarshal(body, &fields) == nil || xml.Unmarshal(body, &fields) == nil {
		e.Code, e.Message = fields.Code, fields.Message
	}
	if e.Code == "" {
		e.Code = strings.ReplaceAll(http.StatusText(status), " ", "")
	}
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "..."
	}
	return e
}
