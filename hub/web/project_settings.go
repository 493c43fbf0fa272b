package web

import (
	"net/http"
	"net/url"
	"strings"
)

// projectSettings are the settings a project's admins change on its page.
type projectSettings struct {
	Description   string   `json:"description"`
	TrustedKeys   []string `json:"trusted_keys"`
	TrustedKeyIDs []string `json:"trusted_key_ids"`
}

var projectSettingsFields = []string{"description", "trusted_keys"}

// readProjectSettings reads a project's settings and puts them in f as the
// edit form's values, unless f holds the values of a settings post.
func (u *UI) readProjectSettings(r *http.Request, name string, f *form) (*projectSettings, *form, error) {
	var st projectSettings
	if err := u.call(r, "GET", "/api/v1/projects/"+url.PathEscape(name)+"/settings", nil, &st); err != nil {
		return nil, f, err
	}
	if f == nil {
		f = &form{Values: map[string]string{}, Errors: map[string]string{}}
	}
	if _, posted := f.Values["description"]; !posted {
		f.Values["description"] = st.Description
		f.Values["trusted_keys"] = strings.Join(st.TrustedKeys, "\n")
	}
	return &st, f, nil
}

// saveProjectSettings sends the edit form: one trusted key a line, where
// the comment line of a pasted .pub file is left out.
func (u *UI) saveProjectSettings(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	keys := []string{}
	for _, line := range strings.Split(r.PostFormValue("trusted_keys"), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "untrusted comment:") {
			keys = append(keys, line)
		}
	}
	in := map[string]any{"description": r.PostFormValue("description"), "trusted_keys": keys}
	err := u.call(r, "PATCH", "/api/v1/projects/"+url.PathEscape(r.PathValue("project")), in, nil)
	if err == nil {
		u.showProject(w, r, http.StatusOK, nil, "The settings of this project are saved.")
		return
	}
	if !formError(err) {
		u.fail(w, r, err)
		return
	}
	u.showProject(w, r, statusOf(err), newForm(r, projectSettingsFields, nil, err), "")
}
