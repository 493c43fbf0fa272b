package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Just-in-time access: the request form, my requests, the requests the
// user may decide, and the grants the user holds now.

type accessRequest struct {
	ID             int64      `json:"id"`
	Requester      string     `json:"requester"`
	Account        string     `json:"account"`
	AccountID      string     `json:"account_id"`
	PermissionSet  string     `json:"permission_set"`
	Duration       string     `json:"duration"`
	Reason         string     `json:"reason"`
	Status         string     `json:"status"`
	Created        time.Time  `json:"created"`
	Approvers      string     `json:"approvers"`
	DecidedBy      string     `json:"decided_by"`
	Decided        *time.Time `json:"decided"`
	DecisionReason string     `json:"decision_reason"`
	Expires        *time.Time `json:"expires"`
}

type accessIdentity struct {
	Email    string   `json:"email"`
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
		LastError     string        `json:"last_error"`
	} `json:"active"`
}

type accessView struct {
	Off      string // why access is not available on this hub
	Identity accessIdentity
	Mine     []accessRequest
	Pending  []accessRequest
}

func (u *UI) access(w http.ResponseWriter, r *http.Request) {
	u.showAccess(w, r, http.StatusOK, nil, "")
}

func (u *UI) showAccess(w http.ResponseWriter, r *http.Request, status int, f *form, notice string) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	var view accessView
	err := u.call(r, "GET", "/api/v1/access/whoami", nil, &view.Identity)
	if statusOf(err) == http.StatusServiceUnavailable || statusOf(err) == http.StatusNotFound || statusOf(err) == http.StatusForbidden {
		// Not configured, or the user is not in the Identity Store: the
		// page says so instead of failing.
		view.Off = err.Error()
		u.render(w, r, status, "access", &page{Title: "Access", Nav: "access", Viewer: v, Form: f, Notice: notice, Data: view})
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, q := range []struct {
		which string
		dst   *[]accessRequest
	}{{"mine", &view.Mine}, {"pending", &view.Pending}} {
		var out struct {
			Requests []accessRequest `json:"requests"`
		}
		if err := u.call(r, "GET", "/api/v1/access/requests?"+q.which+"=1", nil, &out); err != nil {
			u.fail(w, r, err)
			return
		}
		*q.dst = out.Requests
	}
	u.render(w, r, status, "access", &page{Title: "Access", Nav: "access", Viewer: v, Form: f, Notice: notice, Data: view})
}

var accessFields = []string{"escalation", "duration", "reason"}

func (u *UI) requestAccess(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	// The select's value is ACCOUNT/PERMISSION-SET, one of the eligible
	// escalations the page listed.
	account, set, _ := strings.Cut(r.PostFormValue("escalation"), "/")
	in := map[string]string{"account": account, "permission_set": set, "duration": strings.TrimSpace(r.PostFormValue("duration")), "reason": r.PostFormValue("reason")}
	var out accessRequest
	err := u.call(r, "POST", "/api/v1/access/requests", in, &out)
	if err == nil {
		u.showAccess(w, r, http.StatusCreated, nil, "Requested "+out.PermissionSet+" on "+out.Account+" for "+out.Duration+": approvers ("+out.Approvers+") are asked.")
		return
	}
	if !formError(err) {
		u.fail(w, r, err)
		return
	}
	f := newForm(r, accessFields, nil, err)
	if ae, ok := err.(*APIError); ok && f.Error != "" && (ae.Field == "account" || ae.Field == "permission_set") {
		f.Errors["escalation"], f.Error = f.Error, ""
	}
	u.showAccess(w, r, statusOf(err), f, "")
}

func (u *UI) decideAccess(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	action := r.PathValue("action")
	switch action {
	case "approve", "deny", "revoke":
	default:
		u.fail(w, r, &APIError{Status: http.StatusNotFound, Code: "not_found", Message: "there is no page " + r.URL.Path})
		return
	}
	var out accessRequest
	err := u.call(r, "POST", "/api/v1/access/requests/"+url.PathEscape(r.PathValue("id"))+"/"+action, map[string]string{"reason": r.PostFormValue("reason")}, &out)
	if err == nil {
		u.showAccess(w, r, http.StatusOK, nil, "Request "+r.PathValue("id")+" of "+out.Requester+" is "+out.Status+".")
		return
	}
	if !formError(err) {
		u.fail(w, r, err)
		return
	}
	u.showAccess(w, r, statusOf(err), newForm(r, nil, nil, err), "")
}
