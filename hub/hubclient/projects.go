package hubclient

import (
	"context"
	"net/http"
	"net/url"
)

// ProjectSettings are a project's settings as the hub shows them.
type ProjectSettings struct {
	Name          string   `json:"name"`
	DataPlane     string   `json:"dataplane"`
	Prefix        string   `json:"prefix"`
	Role          string   `json:"role"`
	Description   string   `json:"description"`
	TrustedKeys   []string `json:"trusted_keys"`
	TrustedKeyIDs []string `json:"trusted_key_ids"`
	Changed       []string `json:"changed,omitempty"` // the answer to a change: what it changed
}

// ProjectSettingsChange names the settings to change; nil leaves one as it is.
type ProjectSettingsChange struct {
	Description *string   `json:"description,omitempty"`
	TrustedKeys *[]string `json:"trusted_keys,omitempty"`
}

// ProjectSettings reads a project's settings (project members).
func (c *Client) ProjectSettings(ctx context.Context, project string) (*ProjectSettings, error) {
	out := &ProjectSettings{}
	if err := c.do(ctx, http.MethodGet, "/api/v1/projects/"+url.PathEscape(project)+"/settings", nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// SetProjectSettings changes a project's settings (project admins).
func (c *Client) SetProjectSettings(ctx context.Context, project string, ch ProjectSettingsChange) (*ProjectSettings, error) {
	out := &ProjectSettings{}
	if err := c.do(ctx, http.MethodPatch, "/api/v1/projects/"+url.PathEscape(project), ch, out); err != nil {
		return nil, err
	}
	return out, nil
}
