package hub

import (
	"net/http"
	"time"

	"github.com/berth-dev/berth/hub/db"
)

// The read side of the API that lists what the write side creates, so that
// a page (or a script) can show everything the user may see without
// knowing names in advance.

func (s *Server) organisation(w http.ResponseWriter, r *http.Request, u *db.User) error {
	org, err := s.userOrg(r.Context(), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": org.Name, "role": org.Role, "enforce_own_dataplanes": org.EnforceOwnDataPlanes})
	return nil
}

type projectListing struct {
	Name      string    `json:"name"`
	DataPlane string    `json:"dataplane"`
	Prefix    string    `json:"prefix"`
	Role      string    `json:"role"`
	Created   time.Time `json:"created"`
}

// listProjects lists the projects of the request's organisation the user
// is a member of; organisation admins see every one, as admin.
func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, u *db.User) error {
	org, err := s.userOrg(r.Context(), u)
	if err != nil {
		return err
	}
	orgRole := org.Role
	list, err := s.DB.ListProjects(r.Context(), org.ID, u.ID, orgRole == "admin")
	if err != nil {
		return err
	}
	out := []projectListing{}
	for _, p := range list {
		if orgRole == "admin" {
			p.Role = "admin" // as s.project decides
		}
		out = append(out, projectListing{Name: p.Name, DataPlane: p.DataPlane, Prefix: p.Prefix, Role: p.Role, Created: p.Created})
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": out})
	return nil
}

// projectInfo returns a project's settings and members (project members).
func (s *Server) projectInfo(w http.ResponseWriter, r *http.Request, u *db.User) error {
	p, role, err := s.project(r.Context(), u, r.PathValue("project"))
	if err != nil {
		return err
	}
	settings, err := s.projectSettingsOut(r.Context(), p, role)
	if err != nil {
		return err
	}
	members, err := s.DB.ProjectMembers(r.Context(), p.ID)
	if err != nil {
		return err
	}
	type member struct {
		Email string `json:"email"`
		Name  string `json:"name"`
		Role  string `json:"role"`
	}
	out := struct {
		*projectSettingsOut
		Members []member `json:"members"`
	}{settings, []member{}}
	for _, m := range members {
		out.Members = append(out.Members, member{Email: m.Email, Name: m.Name, Role: m.Role})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// listTokens lists the signed-in user's tokens; the tokens themselves were
// shown once, at creation, and are not kept.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, u *db.User) error {
	list, err := s.DB.ListTokens(r.Context(), u.ID)
	if err != nil {
		return err
	}
	type token struct {
		ID       int64      `json:"id"`
		Name     string     `json:"name"`
		Created  time.Time  `json:"created"`
		Expires  time.Time  `json:"expires"`
		LastUsed *time.Time `json:"last_used"`
		Revoked  *time.Time `json:"revoked"`
	}
	out := []token{}
	for _, t := range list {
		tk := token{ID: t.ID, Name: t.Name, Created: t.Created, Expires: t.Expires}
		if !t.LastUsed.IsZero() {
			tk.LastUsed = &t.LastUsed
		}
		if !t.Revoked.IsZero() {
			tk.Revoked = &t.Revoked
		}
		out = append(out, tk)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}
