// Package hubclient is the CLI's side of the hub API: who am I, and
// short-lived credentials for one project, refreshed before they expire.
package hubclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/errkind"
)

// Client talks to one hub with one API token.
type Client struct {
	URL   string // https://hub.example.com
	Token string // berth_...
	// Org names the organisation every request works in; empty: the
	// user's first (the hub's default).
	Org  string
	HTTP *http.Client
}

// OrgHeader is the request header that names the organisation (the hub's
// hub.OrgHeader; this package imports nothing of the hub).
const OrgHeader = "Berth-Organisation"

// ErrUnauthenticated: the hub does not accept the token (revoked, expired,
// mistyped); log in again.
var ErrUnauthenticated = errkind.New("the hub does not accept this token", errkind.PermissionDenied)

// apiKinds maps the API's error codes to berth's kinds; the CLI maps those
// to exit codes.
var apiKinds = map[string]error{
	"invalid":         errkind.Invalid,
	"unauthenticated": ErrUnauthenticated,
	"forbidden":       errkind.PermissionDenied,
	"not_found":       errkind.NotFound,
	"conflict":        errkind.Conflict,
	"too_many":        errkind.TooMany,
	"unavailable":     errkind.Unavailable,
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("hub %s: %w: %w", c.URL, err, errkind.Invalid)
	}
	if c.Token != "" { // the login requests of berth login go without
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Org != "" {
		req.Header.Set(OrgHeader, c.Org)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reach hub %s: %w: %w", c.URL, err, errkind.Unavailable)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer of hub %s: %w: %w", c.URL, err, errkind.Unavailable)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			return fmt.Errorf("hub %s answered %s %s with %s, not an API error: %w", c.URL, method, path, resp.Status, errkind.Unavailable)
		}
		kind, ok := apiKinds[e.Error.Code]
		if !ok {
			kind = errkind.Unavailable
		}
		// The hub's message may end with the kind's words already.
		return fmt.Errorf("hub %s: %s: %w", c.URL, strings.TrimSuffix(e.Error.Message, ": "+errkind.Of(kind).Error()), kind)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("hub %s: unexpected answer to %s %s: %w: %w", c.URL, method, path, err, errkind.Unavailable)
		}
	}
	return nil
}

// User is the signed-in user.
type User struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

// Me returns who the token belongs to; berth login calls it to check a
// token before saving it.
func (c *Client) Me(ctx context.Context) (*User, error) {
	u := &User{}
	if err := c.do(ctx, http.MethodGet, "/api/v1/me", nil, u); err != nil {
		return nil, err
	}
	return u, nil
}

// Organisation is one of the user's organisations.
type Organisation struct {
	Name     string `json:"name"`
	Role     string `json:"role"`     // admin or member
	Selected bool   `json:"selected"` // the one the requests work in
}

// Organisations lists the user's organisations, marking the one the
// client's requests work in.
func (c *Client) Organisations(ctx context.Context) ([]Organisation, error) {
	var out struct {
		Organisations []Organisation `json:"organisations"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/organisations", nil, &out); err != nil {
		return nil, err
	}
	return out.Organisations, nil
}

// CreateOrganisation makes an organisation with the user as its admin.
func (c *Client) CreateOrganisation(ctx context.Context, name string) (*Organisation, error) {
	o := &Organisation{}
	if err := c.do(ctx, http.MethodPost, "/api/v1/organisations", map[string]string{"name": name}, o); err != nil {
		return nil, err
	}
	return o, nil
}

// Region is one region of a project's data plane with credentials for it.
type Region struct {
	Name            string    `json:"region"`
	Endpoint        string    `json:"endpoint"`
	Bucket          string    `json:"bucket"`
	AccessKeyID     string    `json:"access_key_id"`
	SecretAccessKey string    `json:"secret_access_key"`
	SessionToken    string    `json:"session_token"`
	Expiration      time.Time `json:"expiration"`
}

// Grant is what the hub vends for a project and role.
type Grant struct {
	Project string `json:"project"`
	Role    string `json:"role"`
	Prefix  string `json:"prefix"`
	// StorePrefix is the data plane's key prefix: artifact stores open
	// there and keep the project under it.
	StorePrefix string   `json:"store_prefix"`
	Regions     []Region `json:"regions"`
}

// Credentials asks for role ("read" or "write") on project.
func (c *Client) Credentials(ctx context.Context, project, role string) (*Grant, error) {
	g := &Grant{}
	if err := c.do(ctx, http.MethodPost, "/api/v1/projects/"+project+"/credentials", map[string]string{"role": role}, g); err != nil {
		return nil, err
	}
	return g, nil
}

// Provider returns an aws.CredentialsProvider for one region of a grant
// that asks the hub again when the credentials are about to expire, so a
// long transfer outlives them. Wrap it in aws.NewCredentialsCache.
func (c *Client) Provider(first *Grant, region string) aws.CredentialsProvider {
	return &provider{c: c, project: first.Project, role: first.Role, region: region, next: first}
}

type provider struct {
	mu                    sync.Mutex
	c                     *Client
	project, role, region string
	next                  *Grant // used once, then the hub is asked
}

func (p *provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.next
	p.next = nil
	if g == nil {
		var err error
		if g, err = p.c.Credentials(ctx, p.project, p.role); err != nil {
			return aws.Credentials{}, err
		}
	}
	for _, r := range g.Regions {
		if r.Name == p.region {
			return aws.Credentials{AccessKeyID: r.AccessKeyID, SecretAccessKey: r.SecretAccessKey, SessionToken: r.SessionToken,
				Source: "berth hub " + p.c.URL, CanExpire: true, Expires: r.Expiration}, nil
		}
	}
	return aws.Credentials{}, fmt.Errorf("hub %s no longer lists region %s for project %s: %w", p.c.URL, p.region, p.project, errkind.NotFound)
}

// RefreshVersion asks the hub to read project's version in every region
// into its version index, after the caller staged or repaired it with
// credentials the hub vended. The hub reads the stores itself; it takes
// nothing from the caller but the name.
func (c *Client) RefreshVersion(ctx context.Context, project, version string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/projects/"+url.PathEscape(project)+"/versions/"+url.PathEscape(version)+"/refresh", nil, nil)
}
