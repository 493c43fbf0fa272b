package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The AWS side of data planes: the connect form, the bootstrap
// instructions, and the background jobs (check, plan, approve and deploy,
// status, drift) with their events.

var awsFields = []string{"name", "account_id", "regions", "qualifier", "prefix"}

func (u *UI) awsForm(w http.ResponseWriter, r *http.Request) {
	u.showAWSForm(w, r, http.StatusOK, nil)
}

func (u *UI) showAWSForm(w http.ResponseWriter, r *http.Request, status int, f *form) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	u.render(w, r, status, "dataplane-aws", &page{Title: "Connect an AWS account", Nav: "dataplanes", Viewer: v, Form: f})
}

func (u *UI) createAWSDataPlane(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	in := map[string]any{"kind": "aws", "name": r.PostFormValue("name"), "account_id": strings.TrimSpace(r.PostFormValue("account_id")),
		"regions":   strings.Fields(strings.ReplaceAll(r.PostFormValue("regions"), ",", " ")),
		"qualifier": r.PostFormValue("qualifier"), "prefix": r.PostFormValue("prefix")}
	err := u.call(r, "POST", "/api/v1/dataplanes", in, nil)
	if err == nil {
		http.Redirect(w, r, "/dataplanes/"+url.PathEscape(r.PostFormValue("name")), http.StatusSeeOther)
		return
	}
	if !formError(err) {
		u.fail(w, r, err)
		return
	}
	f := newForm(r, awsFields, nil, err)
	if msg := f.Error; strings.HasPrefix(msg, "data plane name") { // the API's words for the name field
		f.Errors["name"], f.Error = msg, ""
	}
	u.showAWSForm(w, r, statusOf(err), f)
}

type dataPlaneDetail struct {
	Name      string     `json:"name"`
	Kind      string     `json:"kind"`
	Created   time.Time  `json:"created"`
	Deployed  *time.Time `json:"deployed"`
	Own       bool       `json:"own"`
	Account   string     `json:"account_id"`
	Regions   []string   `json:"regions"`
	Qualifier string     `json:"qualifier"`
	Prefix    string     `json:"prefix"`
	Bucket    string     `json:"bucket"`
	Endpoints []endpoint `json:"endpoints"`
	Buckets   []struct {
		Region string `json:"region"`
		Name   string `json:"name"`
		KeyARN string `json:"key_arn"`
	} `json:"buckets"`
}

type bootstrap struct {
	StackName      string            `json:"stack_name"`
	Region         string            `json:"region"`
	Command        string            `json:"command"`
	Parameters     map[string]string `json:"parameters"`
	QuickCreateURL string            `json:"quick_create_url"`
	QuickCreateNot string            `json:"quick_create_note"`
}

type dataPlaneView struct {
	DataPlane dataPlaneDetail
	Bootstrap *bootstrap
	Problem   string // why the bootstrap instructions are missing
}

// dataPlane finds one data plane in the API's list.
func (u *UI) dataPlane(r *http.Request, name string) (*dataPlaneDetail, error) {
	var dps struct {
		DataPlanes []dataPlaneDetail `json:"dataplanes"`
	}
	if err := u.call(r, "GET", "/api/v1/dataplanes", nil, &dps); err != nil {
		return nil, err
	}
	for i := range dps.DataPlanes {
		if dps.DataPlanes[i].Name == name {
			return &dps.DataPlanes[i], nil
		}
	}
	return nil, &APIError{Status: http.StatusNotFound, Code: "not_found", Message: "data plane " + name + ": not found"}
}

func (u *UI) dataPlanePage(w http.ResponseWriter, r *http.Request) {
	u.showDataPlane(w, r, http.StatusOK, nil)
}

func (u *UI) showDataPlane(w http.ResponseWriter, r *http.Request, status int, f *form) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	dp, err := u.dataPlane(r, r.PathValue("dataplane"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	view := dataPlaneView{DataPlane: *dp}
	if dp.Kind == "aws" {
		var b bootstrap
		if err := u.call(r, "GET", "/api/v1/dataplanes/"+url.PathEscape(dp.Name)+"/bootstrap", nil, &b); err != nil {
			view.Problem = err.Error()
		} else {
			view.Bootstrap = &b
		}
	}
	u.render(w, r, status, "dataplane", &page{Title: "Data plane " + dp.Name, Nav: "dataplanes", Viewer: v, Form: f, Data: view})
}

// bootstrapTemplate hands out the bootstrap template as a file to deploy.
func (u *UI) bootstrapTemplate(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Template string `json:"template"`
	}
	if err := u.call(r, "GET", "/api/v1/dataplanes/"+url.PathEscape(r.PathValue("dataplane"))+"/bootstrap", nil, &b); err != nil {
		u.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Disposition", `attachment; filename="berth-bootstrap.yaml"`)
	_, _ = w.Write([]byte(b.Template))
}

func (u *UI) createJob(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	var out struct {
		ID int64 `json:"id"`
	}
	err := u.call(r, "POST", "/api/v1/dataplanes/"+url.PathEscape(r.PathValue("dataplane"))+"/jobs", map[string]string{"kind": r.PostFormValue("kind")}, &out)
	if err == nil {
		http.Redirect(w, r, "/jobs/"+strconv.FormatInt(out.ID, 10), http.StatusSeeOther)
		return
	}
	if !formError(err) {
		u.fail(w, r, err)
		return
	}
	u.showDataPlane(w, r, statusOf(err), newForm(r, nil, nil, err))
}

type jobEvent struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

type jobDetail struct {
	ID         int64           `json:"id"`
	Kind       string          `json:"kind"`
	Status     string          `json:"status"`
	DataPlane  string          `json:"dataplane"`
	Created    time.Time       `json:"created"`
	Updated    time.Time       `json:"updated"`
	Events     []jobEvent      `json:"events"`
	Failure    string          `json:"failure"`
	Result     json.RawMessage `json:"result"`
	PlanJob    int64           `json:"plan_job"`
	Approved   *time.Time      `json:"approved"`
	ApprovedBy string          `json:"approved_by"`
	DeployJob  int64           `json:"deploy_job"`
}

type checkResult struct {
	Field   string `json:"field"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
	Missing []struct {
		Action   string `json:"action"`
		Resource string `json:"resource"`
	} `json:"missing"`
	Snippet json.RawMessage `json:"snippet"`
}

type planChange struct {
	Action      string `json:"action"`
	LogicalID   string `json:"logical_id"`
	PhysicalID  string `json:"physical_id"`
	Type        string `json:"type"`
	Replacement string `json:"replacement"`
}

type planRegion struct {
	Stack     string       `json:"stack"`
	Region    string       `json:"region"`
	Type      string       `json:"type"`
	NoChanges bool         `json:"no_changes"`
	Changes   []planChange `json:"changes"`
}

type failedOp struct {
	Op       string `json:"op"`
	Stack    string `json:"stack"`
	Region   string `json:"region"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Resource *struct {
		LogicalID string `json:"logical_id"`
		Type      string `json:"type"`
		Status    string `json:"status"`
		Reason    string `json:"reason"`
	} `json:"resource"`
}

// jobView is a job with its result decoded by kind, for the template.
type jobView struct {
	Job    jobDetail
	Live   bool // queued or running: the page refreshes itself
	Checks []checkResult
	Plan   struct {
		Regions []planRegion `json:"regions"`
		Changes bool         `json:"changes"`
		Table   string       `json:"table"`
	}
	Replacements int // changes that replace a resource
	Failed       []failedOp
	Status       []regionStatus
	Drift        []driftReport
	Table        string // drift: the text the CLI prints
	Raw          string // any other result, as indented JSON
}

// regionStatus is one region of a status job (dataplane.RegionStatus).
type regionStatus struct {
	Region   string `json:"region"`
	Deployed bool   `json:"deployed"`
	Stack    *struct {
		Name         string            `json:"name"`
		ID           string            `json:"id"`
		Status       string            `json:"status"`
		StatusReason string            `json:"status_reason"`
		Outputs      map[string]string `json:"outputs"`
		Parameters   map[string]string `json:"parameters"`
		Created      time.Time         `json:"created"`
		LastUpdated  *time.Time        `json:"last_updated"`
		DriftStatus  string            `json:"drift_status"`
	} `json:"stack"`
}

// Failed: the stack's last operation failed or was rolled back.
func (rs regionStatus) Failed() bool {
	return rs.Stack != nil && (strings.Contains(rs.Stack.Status, "FAILED") || strings.Contains(rs.Stack.Status, "ROLLBACK"))
}

// driftReport is one region of a drift job (deploy.DriftReport).
type driftReport struct {
	Stack           string          `json:"stack"`
	Region          string          `json:"region"`
	Status          string          `json:"status"`
	DetectionStatus string          `json:"detection_status"`
	Reason          string          `json:"reason"`
	Drifted         int             `json:"drifted"`
	Resources       []resourceDrift `json:"resources"`
}

type resourceDrift struct {
	LogicalID   string `json:"logical_id"`
	PhysicalID  string `json:"physical_id"`
	Type        string `json:"type"`
	Status      string `json:"status"`
	Differences []struct {
		Path     string `json:"path"`
		Expected string `json:"expected"`
		Actual   string `json:"actual"`
		Type     string `json:"type"`
	} `json:"differences"`
}

// sortDrift puts drifted resources first: deleted, modified, then those
// not checked, then those in sync.
func sortDrift(reports []driftReport) {
	rank := func(status string) int {
		return slices.Index([]string{"DELETED", "MODIFIED", "NOT_CHECKED", "IN_SYNC"}, status)
	}
	for _, rep := range reports {
		slices.SortStableFunc(rep.Resources, func(a, b resourceDrift) int { return rank(a.Status) - rank(b.Status) })
	}
}

func (u *UI) job(w http.ResponseWriter, r *http.Request) {
	u.showJob(w, r, http.StatusOK, nil)
}

func (u *UI) showJob(w http.ResponseWriter, r *http.Request, status int, f *form) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	var view jobView
	if err := u.call(r, "GET", "/api/v1/jobs/"+url.PathEscape(r.PathValue("id")), nil, &view.Job); err != nil {
		u.fail(w, r, err)
		return
	}
	view.Live = view.Job.Status == "queued" || view.Job.Status == "running"
	if len(view.Job.Result) > 0 {
		// A result the page cannot read as its kind's is shown raw.
		var err error
		switch view.Job.Kind {
		case "check":
			err = json.Unmarshal(view.Job.Result, &view.Checks)
		case "plan":
			err = json.Unmarshal(view.Job.Result, &view.Plan)
			for _, rg := range view.Plan.Regions {
				for _, c := range rg.Changes {
					if c.Replacement == "True" || c.Replacement == "Conditional" {
						view.Replacements++
					}
				}
			}
		case "deploy":
			var d struct {
				Failed []failedOp `json:"failed"`
			}
			err = json.Unmarshal(view.Job.Result, &d)
			view.Failed = d.Failed
		case "status":
			err = json.Unmarshal(view.Job.Result, &view.Status)
		case "drift":
			var d struct {
				Regions []driftReport `json:"regions"`
				Table   string        `json:"table"`
			}
			err = json.Unmarshal(view.Job.Result, &d)
			view.Drift, view.Table = d.Regions, d.Table
			sortDrift(view.Drift)
		}
		if err != nil {
			var buf strings.Builder
			var anyv any
			if json.Unmarshal(view.Job.Result, &anyv) == nil {
				b, _ := json.MarshalIndent(anyv, "", "  ")
				buf.Write(b)
			}
			view.Raw = buf.String()
		}
	}
	title := strings.ToUpper(view.Job.Kind[:1]) + view.Job.Kind[1:] + " job " + strconv.FormatInt(view.Job.ID, 10)
	u.render(w, r, status, "job", &page{Title: title, Nav: "dataplanes", Viewer: v, Form: f, Data: view})
}

func (u *UI) approveJob(w http.ResponseWriter, r *http.Request) {
	parseForm(w, r)
	var out struct {
		DeployJob int64 `json:"deploy_job"`
	}
	err := u.call(r, "POST", "/api/v1/jobs/"+url.PathEscape(r.PathValue("id"))+"/approve", map[string]any{}, &out)
	if err == nil {
		http.Redirect(w, r, "/jobs/"+strconv.FormatInt(out.DeployJob, 10), http.StatusSeeOther)
		return
	}
	if !formError(err) {
		u.fail(w, r, err)
		return
	}
	u.showJob(w, r, statusOf(err), newForm(r, nil, nil, err))
}

type downloadView struct {
	Project string
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
	Region  string    `json:"region"`
	File    string    `json:"file"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Version string    `json:"version"`
}

// download asks the API for a short-lived link to a version's file; the
// bytes then come from the bucket, not through the hub.
func (u *UI) download(w http.ResponseWriter, r *http.Request) {
	v, ok := u.start(w, r)
	if !ok {
		return
	}
	d := downloadView{Project: r.PathValue("project")}
	path := "/api/v1/projects/" + url.PathEscape(d.Project) + "/versions/" + url.PathEscape(r.PathValue("version")) +
		"/download?" + url.Values{"file": {r.URL.Query().Get("file")}}.Encode()
	if err := u.call(r, "GET", path, nil, &d); err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "download", &page{Title: "Download " + d.File, Nav: "projects", Viewer: v, Data: d})
}
