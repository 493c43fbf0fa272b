package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"aead.dev/minisign"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

const (
	// maxDescription is the longest project description, in characters:
	// a paragraph, not a document.
	maxDescription = 2000
	// maxTrustedKeys bounds the keys a project trusts: a few release
	// keys and their successors during a rotation.
	maxTrustedKeys = 16
)

// projectSettingsOut is a project's settings as the API shows them.
type projectSettingsOut struct {
	Name          string   `json:"name"`
	DataPlane     string   `json:"dataplane"`
	Prefix        string   `json:"prefix"`
	Role          string   `json:"role"`
	Description   string   `json:"description"`
	TrustedKeys   []string `json:"trusted_keys"`    // minisign public keys, RWQ...
	TrustedKeyIDs []string `json:"trusted_key_ids"` // their IDs, as minisign prints them
	Changed       []string `json:"changed,omitempty"`
}

func (s *Server) projectSettingsOut(ctx context.Context, p *db.Project, role string) (*projectSettingsOut, error) {
	dp, err := s.DB.DataPlaneByID(ctx, p.DataPlaneID)
	if err != nil {
		return nil, err
	}
	st, err := s.DB.ProjectSettings(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	keys, err := parseTrustedKeys(st.TrustedKeys)
	if err != nil {
		return nil, fmt.Errorf("read trusted keys of project %s: %v", p.Name, err) // stored keys were checked: the hub's fault
	}
	out := &projectSettingsOut{Name: p.Name, DataPlane: dp.Name, Prefix: p.Prefix, Role: role, Description: st.Description,
		TrustedKeys: []string{}, TrustedKeyIDs: []string{}}
	for _, k := range keys {
		out.TrustedKeys = append(out.TrustedKeys, k.String())
		out.TrustedKeyIDs = append(out.TrustedKeyIDs, artifact.KeyID(k.ID()))
	}
	return out, nil
}

// projectSettings shows a project's settings (project members).
func (s *Server) projectSettings(w http.ResponseWriter, r *http.Request, u *db.User) error {
	p, role, err := s.project(r.Context(), u, r.PathValue("project"))
	if err != nil {
		return err
	}
	out, err := s.projectSettingsOut(r.Context(), p, role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// patchProject changes a project's description and trusted keys (project
// admins). Nothing is stored unless every given field is valid. The audit
// entry names the fields, never their values.
func (s *Server) patchProject(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Description *string   `json:"description"`
		TrustedKeys *[]string `json:"trusted_keys"`
		// Fixed at creation; named here to say why they cannot change.
		Name      *string `json:"name"`
		DataPlane *string `json:"dataplane"`
		Prefix    *string `json:"prefix"`
	}
	name := r.PathValue("project")
	var fields []string
	defer func() {
		s.audit(r, u, "project.settings.set", "project/"+truncate(name, 64)+"/settings="+strings.Join(fields, ","), err)
	}()
	if err := decode(r, &in); err != nil {
		return err
	}
	for f, given := range map[string]bool{"description": in.Description != nil, "trusted_keys": in.TrustedKeys != nil} {
		if given {
			fields = append(fields, f)
		}
	}
	slices.Sort(fields)
	p, role, err := s.project(r.Context(), u, name)
	if err != nil {
		return err
	}
	if role != "admin" {
		return fmt.Errorf("only an admin of project %s may change its settings: %w", p.Name, errkind.PermissionDenied)
	}
	if err := s.fixedProjectFields(r.Context(), p, in.Name, in.DataPlane, in.Prefix); err != nil {
		return err
	}
	if len(fields) == 0 {
		return fmt.Errorf("nothing to change: give description or trusted_keys: %w", errkind.Invalid)
	}
	old, err := s.DB.ProjectSettings(r.Context(), p.ID)
	if err != nil {
		return err
	}
	var ch db.ProjectSettingsChange
	var changed []string
	if in.Description != nil {
		d, err := validDescription(*in.Description)
		if err != nil {
			return inField("description", err)
		}
		if d != old.Description {
			ch.Description, changed = &d, append(changed, "description")
		}
	}
	if in.TrustedKeys != nil {
		keys, err := parseTrustedKeys(*in.TrustedKeys)
		if err != nil {
			return inField("trusted_keys", err)
		}
		text := make([]string, len(keys))
		for i, k := range keys {
			text[i] = k.String()
		}
		if !slices.Equal(text, old.TrustedKeys) {
			ch.TrustedKeys, changed = &text, append(changed, "trusted_keys")
		}
	}
	fields = changed
	if err := s.DB.SetProjectSettings(r.Context(), p.ID, ch); err != nil {
		return err
	}
	out, err := s.projectSettingsOut(r.Context(), p, role)
	if err != nil {
		return err
	}
	out.Changed = append([]string{}, changed...)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// fixedProjectFields refuses a change of what a project's artifacts are
// stored under. Giving the current value is no change.
func (s *Server) fixedProjectFields(ctx context.Context, p *db.Project, name, dataPlane, prefix *string) error {
	if name != nil && *name != p.Name {
		return inField("name", fmt.Errorf("name: a project's name cannot change: its versions and credentials are bound to it; create a project with the new name and stage there: %w", errkind.Invalid))
	}
	if dataPlane != nil {
		dp, err := s.DB.DataPlaneByID(ctx, p.DataPlaneID)
		if err != nil {
			return err
		}
		if *dataPlane != dp.Name {
			return inField("dataplane", fmt.Errorf("dataplane: a project's data plane cannot change: its versions are in that data plane's buckets; create a project on the other data plane and stage there: %w", errkind.Invalid))
		}
	}
	if prefix != nil && *prefix != p.Prefix {
		return inField("prefix", fmt.Errorf("prefix: a project's key prefix cannot change: the versions staged under it would be orphaned: %w", errkind.Invalid))
	}
	return nil
}

// validDescription returns the description as stored: line ends as \n,
// without surrounding space. It is plain text of at most maxDescription
// characters: line breaks and tabs, but no other control characters and
// no bidirectional overrides, which can make a page read other than it is.
func validDescription(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("description: not valid UTF-8 text: %w", errkind.Invalid)
	}
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	if n := utf8.RuneCountInString(s); n > maxDescription {
		return "", fmt.Errorf("description: %d characters, more than the %d allowed: shorten it, and link to longer documents: %w", n, maxDescription, errkind.Invalid)
	}
	for i, c := range s {
		if c == '\n' || c == '\t' {
			continue
		}
		if unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) {
			return "", fmt.Errorf("description: control character %U at byte %d: use plain text (line breaks and tabs are fine): %w", c, i, errkind.Invalid)
		}
	}
	return s, nil
}

// parseTrustedKeys reads minisign public keys (RWQ... lines, or the
// contents of .pub files), at most maxTrustedKeys and each once.
func parseTrustedKeys(entries []string) ([]minisign.PublicKey, error) {
	if len(entries) > maxTrustedKeys {
		return nil, fmt.Errorf("trusted_keys: %d keys, more than the %d a project may trust: %w", len(entries), maxTrustedKeys, errkind.Invalid)
	}
	keys := make([]minisign.PublicKey, 0, len(entries))
	for i, e := range entries {
		k, err := artifact.ParsePublicKey(e)
		if err != nil {
			return nil, fmt.Errorf("trusted_keys: key %d (give the RWQ... line of a .pub file that berth keygen wrote): %w", i+1, err)
		}
		if slices.ContainsFunc(keys, func(o minisign.PublicKey) bool { return o.ID() == k.ID() }) {
			return nil, fmt.Errorf("trusted_keys: key %d: key %s is given twice: %w", i+1, artifact.KeyID(k.ID()), errkind.Invalid)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// trustedKeys are the keys the hub checks the signatures of a project's
// versions against.
func (s *Server) trustedKeys(ctx context.Context, p *db.Project) ([]minisign.PublicKey, error) {
	st, err := s.DB.ProjectSettings(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	keys, err := parseTrustedKeys(st.TrustedKeys)
	if err != nil {
		return nil, errors.New("read trusted keys of project " + p.Name + ": " + err.Error())
	}
	return keys, nil
}
