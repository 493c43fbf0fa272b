package hubclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// AccessRequest is a just-in-time access request as the hub shows it.
type AccessRequest struct {
	ID             int64        `json:"id"`
	Requester      string       `json:"requester"`
	Account        string       `json:"account"`
	AccountID      string       `json:"account_id"`
	PermissionSet  string       `json:"permission_set"`
	Duration       string       `json:"duration"`
	Reason         string       `json:"reason"`
	Status         string       `json:"status"`
	Created        time.Time    `json:"created"`
	Approvers      string       `json:"approvers"`
	DecidedBy      string       `json:"decided_by,omitempty"`
	Decided        *time.Time   `json:"decided,omitempty"`
	DecisionReason string       `json:"decision_reason,omitempty"`
	Expires        *time.Time   `json:"expires,omitempty"`
	Grant          *AccessGrant `json:"grant,omitempty"`
}

// AccessGrant is the assignment behind a request after a decision worked
// on it; Pending means Identity Center does not match yet and the hub
// retries.
type AccessGrant struct {
	Present     bool       `json:"present"`
	Pending     bool       `json:"pending"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
}

// RequestAccess asks for permission set ps on account for d.
func (c *Client) RequestAccess(ctx context.Context, account, ps string, d time.Duration, reason string) (*AccessRequest, error) {
	r := &AccessRequest{}
	in := map[string]string{"account": account, "permission_set": ps, "duration": d.String(), "reason": reason}
	if err := c.do(ctx, http.MethodPost, "/api/v1/access/requests", in, r); err != nil {
		return nil, err
	}
	return r, nil
}

// AccessRequests lists requests: "mine", "pending", or "" for both.
func (c *Client) AccessRequests(ctx context.Context, which string) ([]AccessRequest, error) {
	q := url.Values{}
	if which != "" {
		q.Set(which, "1")
	}
	var out struct {
		Requests []AccessRequest `json:"requests"`
	}
	path := "/api/v1/access/requests"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return out.Requests, nil
}

// DecideAccess approves, denies or revokes request id.
func (c *Client) DecideAccess(ctx context.Context, id int64, action, reason string) (*AccessRequest, error) {
	r := &AccessRequest{}
	if err := c.do(ctx, http.MethodPost, "/api/v1/access/requests/"+strconv.FormatInt(id, 10)+"/"+action, map[string]string{"reason": reason}, r); err != nil {
		return nil, err
	}
	return r, nil
}

// AccessIdentity is what whoami shows.
type AccessIdentity struct {
	Email    string   `json:"email"`
	UserID   string   `json:"user_id"`
	Groups   []string `json:"groups"`
	Eligible []struct {
		Account       string        `json:"account"`
		PermissionSet string        `json:"permission_set"`
		MaxDuration   time.Duration `json:"max_duration_ns"`
		Approvers     string        `json:"approvers"`
	} `json:"eligible"`
	Active []struct {
		Account       string        `json:"account"`
		PermissionSet string        `json:"permission_set"`
		Expires       time.Time     `json:"expires"`
		Left          time.Duration `json:"left_ns"`
		State         string        `json:"state"`
		LastError     string        `json:"last_error,omitempty"`
	} `json:"active"`
	Removing []struct {
		Account       string    `json:"account"`
		PermissionSet string    `json:"permission_set"`
		Attempts      int       `json:"attempts"`
		LastError     string    `json:"last_error,omitempty"`
		NextAttempt   time.Time `json:"next_attempt"`
	} `json:"removing"`
}

// AccessWhoAmI returns the caller's identity, eligibility and grants.
func (c *Client) AccessWhoAmI(ctx context.Context) (*AccessIdentity, error) {
	id := &AccessIdentity{}
	if err := c.do(ctx, http.MethodGet, "/api/v1/access/whoami", nil, id); err != nil {
		return nil, err
	}
	return id, nil
}
