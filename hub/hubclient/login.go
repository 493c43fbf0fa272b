package hubclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// LoginRequest is a berth login waiting for approval in a browser.
type LoginRequest struct {
	ID         string    `json:"id"`
	UserCode   string    `json:"user_code"`
	ApproveURL string    `json:"approve_url"`
	PollSecret string    `json:"poll_secret"`
	Expires    time.Time `json:"expires"`
	Interval   float64   `json:"interval"` // seconds between polls
}

// StartLogin opens a login request for this machine (host) and program
// (clientName). It needs no token.
func (c *Client) StartLogin(ctx context.Context, host, clientName string) (*LoginRequest, error) {
	l := &LoginRequest{}
	if err := c.do(ctx, http.MethodPost, "/api/v1/login-requests", map[string]string{"host": host, "client_name": clientName}, l); err != nil {
		return nil, err
	}
	return l, nil
}

// Login is an approved login: the new API token, shown once, and its user.
type Login struct {
	Token string
	User  User
}

// ErrLoginPending: nobody has approved or denied the request yet.
var ErrLoginPending = errkind.New("the login request waits for approval", errkind.Unavailable)

// ErrLoginRefused: the login request was denied in the browser or expired
// before anyone decided (also errkind.PermissionDenied).
var ErrLoginRefused = errkind.New("login refused", errkind.PermissionDenied)

type loginRefused struct{ err error }

func (e loginRefused) Error() string   { return e.err.Error() }
func (e loginRefused) Unwrap() []error { return []error{e.err, ErrLoginRefused} }

// PollLogin asks once: ErrLoginPending while nobody decided; a denied or
// expired request is errkind.PermissionDenied.
func (c *Client) PollLogin(ctx context.Context, l *LoginRequest) (*Login, error) {
	var out struct {
		Status string `json:"status"`
		User   User   `json:"user"`
		Token  struct {
			Token string `json:"token"`
		} `json:"token"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/login-requests/"+url.PathEscape(l.ID)+"/token", map[string]string{"poll_secret": l.PollSecret}, &out); err != nil {
		if errors.Is(err, errkind.PermissionDenied) {
			return nil, loginRefused{err}
		}
		return nil, err
	}
	switch {
	case out.Status == "pending":
		return nil, ErrLoginPending
	case out.Status == "approved" && out.Token.Token != "":
		return &Login{Token: out.Token.Token, User: out.User}, nil
	}
	return nil, fmt.Errorf("hub %s: unexpected login status %q: %w", c.URL, out.Status, errkind.Unavailable)
}

// WaitLogin polls at the hub's interval until the request is approved
// (the login), denied or expired (errkind.PermissionDenied), or ctx ends.
func (c *Client) WaitLogin(ctx context.Context, l *LoginRequest) (*Login, error) {
	// The hub sets the pace; bounds keep a wrong answer from spinning or
	// stalling the CLI.
	interval := min(max(time.Duration(l.Interval*float64(time.Second)), 10*time.Millisecond), 30*time.Second)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		login, err := c.PollLogin(ctx, l)
		// Held back (other failures from this address): ask again later.
		if err != ErrLoginPending && !errors.Is(err, errkind.TooMany) {
			return login, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
