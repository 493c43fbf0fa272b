package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The API's answers, as far as the pages show them.

type projectItem struct {
	Name      string    `json:"name"`
	DataPlane string    `json:"dataplane"`
	Prefix    string    `json:"prefix"`
	Role      string    `json:"role"`
	Created   time.Time `json:"created"`
}

type endpoint struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

type dataPlaneItem struct {
	Name      string     `json:"name"`
	Kind      string     `json:"kind"`
	Own       bool       `json:"own"`
	Deployed  *time.Time `json:"deployed"`
	Account   string     `json:"account_id"`
	Regions   []string   `json:"regions"`
	Bucket    string     `json:"bucket"`
	Prefix    string     `json:"prefix"`
	Endpoints []endpoint `json:"endpoints"`
}

// projectsData reads the projects and, for an organisation admin (who may
// create projects), the data planes to create them on.
func (u *UI) projectsData(r *http.Request, v *viewer) ([]projectItem, []dataPlaneItem, error) {
	var ps struct {
		Projects []projectItem `json:"projects"`
	}
	if err := u.call(r, "GET", "/api/v1/projects", nil, &ps); err != nil {
		return nil, nil, err
	}
	if !v.OrgAdmin {
		return ps.Projects, nil, nil
	}
	var dps struct {
		DataPlanes []dataPlaneItem `json:"dataplanes"`
	}
	if err := u.call(r, "GET", "/api/v1/dataplanes", nil, &dps); err != nil {
		return nil, nil, err
	}
	return ps.Projects, dps.DataPlanes, nil
}

type projectsView struct {
	Projects   []projectItem
	DataPlanes []dataPlaneItem
}

func (u *UI) projects(w http.ResponseWriter, r *http.Request) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	ps, dps, err := u.projectsData(r, v)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "projects", &page{Title: "Projects", Nav: "projects", Viewer: v, Data: projectsView{ps, dps}})
}

var projectFields = []string{"name", "dataplane"}

func (u *UI) createProject(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	in := map[string]string{"name": r.PostFormValue("name"), "dataplane": r.PostFormValue("dataplane")}
	err := u.call(r, "POST", "/api/v1/projects", in, nil)
	if err == nil {
		http.Redirect(w, r, "/projects/"+url.PathEscape(in["name"]), http.StatusSeeOther)
		return
	}
	if !formError(err) {
		u.fail(w, r, err)
		return
	}
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	ps, dps, lerr := u.projectsData(r, v)
	if lerr != nil {
		u.fail(w, r, lerr)
		return
	}
	u.render(w, r, statusOf(err), "projects", &page{Title: "Projects", Nav: "projects", Viewer: v,
		Form: newForm(r, projectFields, nil, err), Data: projectsView{ps, dps}})
}

// formError: an answer about the form (its content, or the user's right to
// send it), shown beside it; anything else (signed out, a stale form
// without the session's CSRF token, the hub failing) is a page of its own.
func formError(err error) bool {
	switch statusOf(err) {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict:
		return true
	case http.StatusForbidden:
		return !strings.Contains(err.Error(), "CSRF")
	}
	return false
}

func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return http.StatusInternalServerError
}

type member struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

type projectView struct {
	Name      string   `json:"name"`
	DataPlane string   `json:"dataplane"`
	Prefix    string   `json:"prefix"`
	Role      string   `json:"role"`
	Members   []member `json:"members"`
	Settings  *projectSettings
}

func (u *UI) project(w http.ResponseWriter, r *http.Request) {
	u.showProject(w, r, http.StatusOK, nil, "")
}

func (u *UI) showProject(w http.ResponseWriter, r *http.Request, status int, f *form, notice string) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	var p projectView
	if err := u.call(r, "GET", "/api/v1/projects/"+url.PathEscape(r.PathValue("project")), nil, &p); err != nil {
		u.fail(w, r, err)
		return
	}
	var err error
	if p.Settings, f, err = u.readProjectSettings(r, p.Name, f); err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, status, "project", &page{Title: "Project " + p.Name, Nav: "projects", Viewer: v, Form: f, Notice: notice, Data: p})
}

var memberFields = []string{"email", "role"}

func (u *UI) setMember(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	email, role := strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("role")
	err := u.call(r, "PUT", "/api/v1/projects/"+url.PathEscape(r.PathValue("project"))+"/members/"+url.PathEscape(email),
		map[string]string{"role": role}, nil)
	if err == nil {
		u.showProject(w, r, http.StatusOK, nil, email+" is now "+role+" of this project.")
		return
	}
	if !formError(err) || email == "" && statusOf(err) == http.StatusNotFound {
		if email == "" { // the API has no member "" to name
			err = &APIError{Status: http.StatusBadRequest, Code: "invalid", Field: "email", Message: "email: give the e-mail address of a user of this hub"}
		} else {
			u.fail(w, r, err)
			return
		}
	}
	u.showProject(w, r, statusOf(err), newForm(r, memberFields, nil, err), "")
}

type versionsView struct {
	Project          string
	Versions         []versionItem `json:"versions"`
	Total            int           `json:"total"`
	NextCursor       string        `json:"next_cursor"`
	Latest           string        `json:"latest"`
	LatestPrerelease string        `json:"latest_prerelease"`
	Warning          string        `json:"warning"`
	IndexedAt        time.Time     `json:"indexed_at"`
	Cursor           string
}

type versionItem struct {
	Version    string    `json:"version"`
	Created    time.Time `json:"created"`
	Regions    []string  `json:"regions"`
	Prerelease bool      `json:"prerelease"`
	StagedBy   string    `json:"staged_by"`
}

// versionsPageSize is how many versions one page lists.
const versionsPageSize = 50

func (u *UI) versions(w http.ResponseWriter, r *http.Request) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	name := r.PathValue("project")
	q := url.Values{"order": {"newest"}, "limit": {strconv.Itoa(versionsPageSize)}}
	cursor := r.URL.Query().Get("cursor")
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	vv := versionsView{Project: name, Cursor: cursor}
	if err := u.call(r, "GET", "/api/v1/projects/"+url.PathEscape(name)+"/versions?"+q.Encode(), nil, &vv); err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "versions", &page{Title: "Versions of " + name, Nav: "projects", Viewer: v, Data: vv})
}

type versionDetail struct {
	Project  string            `json:"project"`
	Version  string            `json:"version"`
	Size     int64             `json:"size"`
	SHA256   string            `json:"sha256"`
	Metadata map[string]string `json:"metadata"`
	Filename string            `json:"filename"`
	Mode     string            `json:"mode"`
	Created  time.Time         `json:"created"`
	StagedBy string            `json:"staged_by"`
	Object   string            `json:"object"`
	Latest   string            `json:"latest"`
	Pre      string            `json:"latest_prerelease"`
	Regions  []struct {
		Name      string `json:"name"`
		Present   bool   `json:"present"`
		Error     string `json:"error"`
		Signature string `json:"signature"`
	} `json:"regions"`
	Signature struct {
		Status string `json:"status"`
		KeyID  string `json:"key_id"`
		Error  string `json:"error"`
	} `json:"signature_status"`
}

func (u *UI) version(w http.ResponseWriter, r *http.Request) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	var d versionDetail
	path := "/api/v1/projects/" + url.PathEscape(r.PathValue("project")) + "/versions/" + url.PathEscape(r.PathValue("version"))
	if err := u.call(r, "GET", path, nil, &d); err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "version", &page{Title: d.Project + " " + d.Version, Nav: "projects", Viewer: v, Data: d})
}

func (u *UI) dataPlanes(w http.ResponseWriter, r *http.Request) {
	u.showDataPlanes(w, r, http.StatusOK, nil, "")
}

func (u *UI) showDataPlanes(w http.ResponseWriter, r *http.Request, status int, f *form, notice string) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	var dps struct {
		DataPlanes []dataPlaneItem `json:"dataplanes"`
	}
	if err := u.call(r, "GET", "/api/v1/dataplanes", nil, &dps); err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, status, "dataplanes", &page{Title: "Data planes", Nav: "dataplanes", Viewer: v, Form: f, Notice: notice, Data: dps.DataPlanes})
}

var dataPlaneFields = []string{"name", "endpoints", "bucket", "prefix", "writer", "writer_secret", "reader", "reader_secret"}

// Secrets are never put back into a page, not even the one that reports
// the form's error.
var dataPlaneSecrets = map[string]bool{"writer_secret": true, "reader_secret": true}

func (u *UI) createDataPlane(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	var endpoints []string
	for _, line := range strings.Split(r.PostFormValue("endpoints"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			endpoints = append(endpoints, line)
		}
	}
	in := map[string]any{"name": r.PostFormValue("name"), "kind": "s3compat", "endpoints": endpoints,
		"bucket": r.PostFormValue("bucket"), "prefix": r.PostFormValue("prefix"),
		"writer": map[string]string{"access_key_id": r.PostFormValue("writer"), "secret_access_key": r.PostFormValue("writer_secret")},
		"reader": map[string]string{"access_key_id": r.PostFormValue("reader"), "secret_access_key": r.PostFormValue("reader_secret")}}
	err := u.call(r, "POST", "/api/v1/dataplanes", in, nil)
	if err == nil {
		u.showDataPlanes(w, r, http.StatusCreated, nil, "Data plane "+r.PostFormValue("name")+" is connected: its identities were checked in every region.")
		return
	}
	if !formError(err) {
		u.fail(w, r, err)
		return
	}
	u.showDataPlanes(w, r, statusOf(err), newForm(r, dataPlaneFields, dataPlaneSecrets, err), "")
}

type tokenItem struct {
	ID       int64      `json:"id"`
	Name     string     `json:"name"`
	Token    string     `json:"token"`
	Created  time.Time  `json:"created"`
	Expires  time.Time  `json:"expires"`
	LastUsed *time.Time `json:"last_used"`
	Revoked  *time.Time `json:"revoked"`
}

type tokensView struct {
	Tokens  []tokenItem
	Created *tokenItem // the token just created, shown this once
	Now     time.Time
}

func (u *UI) tokens(w http.ResponseWriter, r *http.Request) {
	u.showTokens(w, r, http.StatusOK, nil, nil, "")
}

func (u *UI) showTokens(w http.ResponseWriter, r *http.Request, status int, created *tokenItem, f *form, notice string) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	var ts struct {
		Tokens []tokenItem `json:"tokens"`
	}
	if err := u.call(r, "GET", "/api/v1/tokens", nil, &ts); err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, status, "tokens", &page{Title: "API tokens", Nav: "tokens", Viewer: v, Form: f, Notice: notice,
		Data: tokensView{Tokens: ts.Tokens, Created: created, Now: time.Now()}})
}

func (u *UI) createToken(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	var t tokenItem
	err := u.call(r, "POST", "/api/v1/tokens", map[string]string{"name": r.PostFormValue("name")}, &t)
	if err == nil {
		u.showTokens(w, r, http.StatusCreated, &t, nil, "")
		return
	}
	if !formError(err) {
		u.fail(w, r, err)
		return
	}
	u.showTokens(w, r, statusOf(err), nil, newForm(r, []string{"name"}, nil, err), "")
}

func (u *UI) revokeToken(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	if err := u.call(r, "DELETE", "/api/v1/tokens/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		u.fail(w, r, err)
		return
	}
	u.showTokens(w, r, http.StatusOK, nil, nil, "Token "+r.PostFormValue("name")+" is revoked: it no longer works anywhere.")
}

type auditEntry struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	RequestID string    `json:"request_id"`
	Action    string    `json:"action"`
	Object    string    `json:"object"`
	Outcome   string    `json:"outcome"`
	SourceIP  string    `json:"source_ip"`
}

type auditView struct {
	Entries []auditEntry
	Export  string // the JSON-lines export of the same filter
	Next    string // the next page, when this one is full
}

var auditFields = []string{"actor", "object", "action", "outcome", "since", "until"}

// auditPageSize is how many entries one page lists.
const auditPageSize = 100

func (u *UI) audit(w http.ResponseWriter, r *http.Request) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	q := url.Values{}
	f := &form{Values: map[string]string{}, Errors: map[string]string{}}
	for _, name := range auditFields {
		if val := strings.TrimSpace(r.URL.Query().Get(name)); val != "" {
			q.Set(name, val)
			f.Values[name] = val
		}
	}
	export := "/api/v1/audit?" + q.Encode() + "&format=jsonl"
	q.Set("limit", strconv.Itoa(auditPageSize))
	if after := r.URL.Query().Get("after"); after != "" {
		q.Set("after", after)
	}
	var out struct {
		Entries []auditEntry `json:"entries"`
	}
	view := auditView{Export: strings.Replace(export, "?&", "?", 1)}
	if err := u.call(r, "GET", "/api/v1/audit?"+q.Encode(), nil, &out); err != nil {
		if !formError(err) {
			u.fail(w, r, err)
			return
		}
		// The filter fields are in the query, where newForm reads them.
		f = newForm(r, auditFields, nil, err)
		u.render(w, r, http.StatusBadRequest, "audit", &page{Title: "Audit log", Nav: "audit", Viewer: v, Form: f, Data: view})
		return
	}
	view.Entries = out.Entries
	if len(out.Entries) == auditPageSize {
		next := url.Values{}
		for k, vs := range r.URL.Query() {
			next[k] = vs
		}
		next.Set("after", strconv.FormatInt(out.Entries[len(out.Entries)-1].ID, 10))
		view.Next = "/audit?" + next.Encode()
	}
	u.render(w, r, http.StatusOK, "audit", &page{Title: "Audit log", Nav: "audit", Viewer: v, Form: f, Data: view})
}
