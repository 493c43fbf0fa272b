package web

import "net/http"

// switchOrganisation keeps the organisation the browser session works in
// (the layout's switcher) and shows that organisation's projects: the
// page the user was on may name something the other one lacks.
func (u *UI) switchOrganisation(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	if err := u.call(r, "PUT", "/api/v1/session/organisation", map[string]string{"name": r.PostFormValue("org")}, nil); err != nil {
		u.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/projects", http.StatusSeeOther)
}
