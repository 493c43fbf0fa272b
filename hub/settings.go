package hub

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

func (s *Server) orgSettings(w http.ResponseWriter, r *http.Request, u *db.User) error {
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"organisation": org.Name, "enforce_own_dataplanes": org.EnforceOwnDataPlanes})
	return nil
}

// putOrgSettings changes the organisation's settings. With
// enforce_own_dataplanes on, projects may be created only on data planes
// the organisation deployed through the hub, and credentials are refused
// for projects on any other (see ownDataPlane); existing projects are kept,
// so turning it off again restores them.
func (s *Server) putOrgSettings(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Enforce *bool `json:"enforce_own_dataplanes"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	object := "org/settings"
	if in.Enforce != nil {
		object += "/enforce_own_dataplanes=" + strconv.FormatBool(*in.Enforce)
	}
	defer func() { s.audit(r, u, "org.settings", object, err) }()
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	if in.Enforce == nil {
		return fmt.Errorf("enforce_own_dataplanes: give true or false: %w", errkind.Invalid)
	}
	if err := s.DB.SetEnforceOwnDataPlanes(r.Context(), org.ID, *in.Enforce); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"organisation": org.Name, "enforce_own_dataplanes": *in.Enforce})
	return nil
}
