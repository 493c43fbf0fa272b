package web

import "net/http"

// The organisation's settings (organisation admins).

type orgSettings struct {
	Organisation string `json:"organisation"`
	Enforce      bool   `json:"enforce_own_dataplanes"`
}

func (u *UI) settings(w http.ResponseWriter, r *http.Request) {
	u.showSettings(w, r, http.StatusOK, nil, "")
}

func (u *UI) showSettings(w http.ResponseWriter, r *http.Request, status int, f *form, notice string) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	var st orgSettings
	if err := u.call(r, "GET", "/api/v1/org/settings", nil, &st); err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, status, "settings", &page{Title: "Organisation settings", Nav: "settings", Viewer: v, Form: f, Notice: notice, Data: st})
}

func (u *UI) saveSettings(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	// An unchecked box is absent from the form: that is "off".
	var out orgSettings
	err := u.call(r, "PUT", "/api/v1/org/settings", map[string]bool{"enforce_own_dataplanes": r.PostFormValue("enforce_own_dataplanes") == "on"}, &out)
	if err == nil {
		msg := "Projects may use any of the organisation's data planes."
		if out.Enforce {
			msg = "Projects may now use only AWS data planes this hub deployed; credentials for other projects are refused."
		}
		u.showSettings(w, r, http.StatusOK, nil, msg)
		return
	}
	if !formError(err) {
		u.fail(w, r, err)
		return
	}
	u.showSettings(w, r, statusOf(err), newForm(r, []string{"enforce_own_dataplanes"}, nil, err), "")
}
