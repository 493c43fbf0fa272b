package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// A user may belong to several organisations; project and data plane names
// are unique per organisation only, so every request works in one: the one
// its Berth-Organisation header names (API clients, the CLI's --org), else
// the one its browser session selected, else the user's first (what
// clients that never choose have always had).

// OrgHeader names the organisation an API request is about.
const OrgHeader = "Berth-Organisation"

const orgKey ctxKey = 2

// orgSelection is the organisation of one request. A header is resolved
// at once (a wrong one fails every route); otherwise the lookup waits for
// the first handler that needs it, so routes such as /api/v1/me cost no
// query, and runs once.
type orgSelection struct {
	once    sync.Once
	resolve func(context.Context) (*db.Organisation, error)
	org     *db.Organisation
	err     error
}

func (sel *orgSelection) get(ctx context.Context) (*db.Organisation, error) {
	sel.once.Do(func() { sel.org, sel.err = sel.resolve(ctx) })
	return sel.org, sel.err
}

// selectOrganisation puts the request's organisation in its context. A
// header naming an organisation the user is not in is an error (404, as
// for one that does not exist), never a fallback: the caller asked for
// that one. A session's stale selection (the membership ended) falls back
// to the first organisation.
func (s *Server) selectOrganisation(r *http.Request, u *db.User, sessionOrg int64) (*http.Request, error) {
	sel := &orgSelection{resolve: func(ctx context.Context) (*db.Organisation, error) {
		if sessionOrg != 0 {
			org, err := s.DB.MemberOrganisationByID(ctx, u.ID, sessionOrg)
			if !errors.Is(err, errkind.NotFound) {
				return org, err
			}
		}
		return s.DB.UserOrganisation(ctx, u.ID)
	}}
	if name := r.Header.Get(OrgHeader); name != "" {
		org, err := s.DB.MemberOrganisation(r.Context(), u.ID, name)
		if errors.Is(err, errkind.NotFound) {
			return r, fmt.Errorf("organisation %q (header %s): you are not a member of an organisation of that name; berth org list shows yours: %w",
				truncate(name, 64), OrgHeader, errkind.NotFound)
		}
		if err != nil {
			return r, err
		}
		sel.resolve = func(context.Context) (*db.Organisation, error) { return org, nil }
	}
	return r.WithContext(context.WithValue(r.Context(), orgKey, sel)), nil
}

// userOrg returns the organisation the request works in (see
// selectOrganisation), with the user's role in it. Outside authorize (a
// public route that signs someone in) it is the user's first.
func (s *Server) userOrg(ctx context.Context, u *db.User) (*db.Organisation, error) {
	sel, ok := ctx.Value(orgKey).(*orgSelection)
	if !ok {
		return s.DB.UserOrganisation(ctx, u.ID)
	}
	org, err := sel.get(ctx)
	if errors.Is(err, errkind.NotFound) {
		return nil, fmt.Errorf("you belong to no organisation; ask an organisation admin to add you: %w", errkind.NotFound)
	}
	return org, err
}

type orgListing struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	Selected   bool   `json:"selected"`
	EnforceOwn bool   `json:"enforce_own_dataplanes"`
}

// listOrganisations lists the user's organisations with its role in each,
// marking the request's selection.
func (s *Server) listOrganisations(w http.ResponseWriter, r *http.Request, u *db.User) error {
	list, err := s.DB.UserOrganisations(r.Context(), u.ID)
	if err != nil {
		return err
	}
	selected := ""
	if org, err := s.userOrg(r.Context(), u); err == nil {
		selected = org.Name
	}
	out := []orgListing{}
	for _, o := range list {
		out = append(out, orgListing{Name: o.Name, Role: o.Role, Selected: o.Name == selected, EnforceOwn: o.EnforceOwnDataPlanes})
	}
	writeJSON(w, http.StatusOK, map[string]any{"organisations": out, "selected": selected})
	return nil
}

// createOrganisation makes a new organisation with the caller as its
// admin. Only admins of an organisation on this hub may: they already hold
// the hub's most trusted role, whereas letting any member create one would
// let anyone added for one project make themselves an admin of something.
// The entry goes to the new organisation's audit log, whose admin is the
// creator.
func (s *Server) createOrganisation(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	var created *db.Organisation
	defer func() {
		ar := r
		if created != nil {
			sel := &orgSelection{resolve: func(context.Context) (*db.Organisation, error) { return created, nil }}
			ar = r.WithContext(context.WithValue(r.Context(), orgKey, sel))
		}
		s.audit(ar, u, "organisation.create", "organisation/"+truncate(in.Name, 64), err)
	}()
	list, err := s.DB.UserOrganisations(r.Context(), u.ID)
	if err != nil {
		return err
	}
	admin := false
	for _, o := range list {
		admin = admin || o.Role == "admin"
	}
	if !admin {
		return fmt.Errorf("only an admin of an organisation on this hub may create organisations: %w", errkind.PermissionDenied)
	}
	if err := artifact.ValidateProject(in.Name); err != nil {
		return inField("name", fmt.Errorf("organisation name: %w", err))
	}
	created, err = s.DB.CreateOrganisation(r.Context(), in.Name, u.ID)
	if err != nil {
		return inField("name", err)
	}
	writeJSON(w, http.StatusCreated, orgListing{Name: created.Name, Role: created.Role})
	return nil
}

// selectSessionOrganisation keeps a browser session's choice of
// organisation (the web UI's switcher). API clients send the header on
// each request instead.
func (s *Server) selectSessionOrganisation(w http.ResponseWriter, r *http.Request, u *db.User) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Name == "" {
		return inField("name", fmt.Errorf("name: give the organisation to work in (GET /api/v1/organisations lists yours): %w", errkind.Invalid))
	}
	sess, ok := r.Context().Value(sessionKey).(*sessionAuth)
	if !ok {
		return fmt.Errorf("only a browser session keeps a selected organisation; API clients send the %s header with each request: %w", OrgHeader, errkind.Invalid)
	}
	org, err := s.DB.MemberOrganisation(r.Context(), u.ID, in.Name)
	if errors.Is(err, errkind.NotFound) {
		return inField("name", fmt.Errorf("organisation %q: you are not a member of an organisation of that name: %w", truncate(in.Name, 64), errkind.NotFound))
	}
	if err != nil {
		return err
	}
	if err := s.DB.SetSessionOrganisation(r.Context(), sess.session.ID, org.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, orgListing{Name: org.Name, Role: org.Role, Selected: true, EnforceOwn: org.EnforceOwnDataPlanes})
	return nil
}
