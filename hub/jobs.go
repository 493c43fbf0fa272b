package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// Job kinds an admin queues on an AWS data plane; deploy is queued only by
// approving a plan.
var jobKinds = map[string]bool{"check": true, "plan": true, "status": true, "drift": true}

// jobOutcome is what a finished job stores as its result.
type jobOutcome struct {
	Result  json.RawMessage `json:"result,omitempty"`
	Failure string          `json:"failure,omitempty"`
}

// deployPayload names the plan job whose change sets a deploy applies.
type deployPayload struct {
	PlanJob int64 `json:"plan_job"`
}

func (s *Server) createJob(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Kind string `json:"kind"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	name := r.PathValue("dataplane")
	defer func() {
		s.audit(r, u, "job.create", "dataplane/"+truncate(name, 64)+"/job/"+truncate(in.Kind, 16), err)
	}()
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	if in.Kind == "deploy" {
		return fmt.Errorf("kind deploy: a deploy applies an approved plan: queue a plan job, then POST /api/v1/jobs/{id}/approve: %w", errkind.Invalid)
	}
	if !jobKinds[in.Kind] {
		return fmt.Errorf("kind %q: use check, plan, status or drift: %w", truncate(in.Kind, 16), errkind.Invalid)
	}
	dp, err := s.DB.DataPlaneByName(r.Context(), org.ID, name)
	if err != nil {
		return fmt.Errorf("dataplane %q: %w", truncate(name, 64), err)
	}
	if dp.Kind != "aws" {
		return fmt.Errorf("data plane %s is %s: background jobs run on AWS data planes: %w", dp.Name, dp.Kind, errkind.Invalid)
	}
	if s.AWSPrincipal == "" {
		return errNoAWSPrincipal
	}
	id, err := s.DB.EnqueueJob(r.Context(), db.NewJob{Kind: in.Kind, Payload: "{}", OrgID: org.ID, DataPlaneID: dp.ID})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "kind": in.Kind, "status": "queued", "dataplane": dp.Name, "url": "/api/v1/jobs/" + strconv.FormatInt(id, 10)})
	return nil
}

// listJobs lists a data plane's latest 100 jobs, newest first, without
// their events and results (GET /api/v1/jobs/{id} has them).
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, u *db.User) error {
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	name := r.PathValue("dataplane")
	dp, err := s.DB.DataPlaneByName(r.Context(), org.ID, name)
	if err != nil {
		return fmt.Errorf("dataplane %q: %w", truncate(name, 64), err)
	}
	jobs, err := s.DB.ListJobs(r.Context(), org.ID, dp.ID, 100)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, j := range jobs {
		item := map[string]any{"id": j.ID, "kind": j.Kind, "status": j.Status, "attempts": j.Attempts, "created": j.Created, "updated": j.Updated}
		if !j.Approved.IsZero() {
			item["approved"], item["deploy_job"] = j.Approved, j.DeployJob
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, map[string]any{"dataplane": dp.Name, "jobs": out})
	return nil
}

func jobID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("job id %q: want a number: %w", truncate(r.PathValue("id"), 32), errkind.Invalid)
	}
	return id, nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, u *db.User) error {
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	id, err := jobID(r)
	if err != nil {
		return err
	}
	j, err := s.DB.JobByID(r.Context(), org.ID, id)
	if err != nil {
		return err
	}
	events, err := s.DB.JobEvents(r.Context(), j.ID)
	if err != nil {
		return err
	}
	out := map[string]any{"id": j.ID, "kind": j.Kind, "status": j.Status, "attempts": j.Attempts,
		"created": j.Created, "updated": j.Updated, "events": events}
	if dp, err := s.DB.DataPlaneByID(r.Context(), j.DataPlaneID); err == nil {
		out["dataplane"] = dp.Name
	}
	if j.Result != "" {
		var o jobOutcome
		if err := json.Unmarshal([]byte(j.Result), &o); err != nil {
			return fmt.Errorf("read result of job %d: %w", j.ID, err)
		}
		if o.Result != nil {
			out["result"] = o.Result
		}
		if o.Failure != "" {
			out["failure"] = o.Failure
		}
	}
	if j.Kind == "deploy" {
		var p deployPayload
		if json.Unmarshal([]byte(j.Payload), &p) == nil {
			out["plan_job"] = p.PlanJob
		}
	}
	if !j.Approved.IsZero() {
		out["approved"] = j.Approved
		if a, err := s.DB.UserByID(r.Context(), j.ApprovedBy); err == nil {
			out["approved_by"] = a.Email
		}
		out["deploy_job"] = j.DeployJob
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// approveJob is an organisation admin's explicit approval of a plan: it
// queues the one deploy job that applies exactly the plan's change sets.
func (s *Server) approveJob(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	defer func() { s.audit(r, u, "job.approve", "job/"+truncate(r.PathValue("id"), 20), err) }()
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	id, err := jobID(r)
	if err != nil {
		return err
	}
	j, err := s.DB.JobByID(r.Context(), org.ID, id)
	if err != nil {
		return err
	}
	if j.Kind != "plan" || j.Status != "succeeded" {
		return fmt.Errorf("job %d is a %s job that is %s: only a plan job that succeeded can be approved: %w", j.ID, j.Kind, j.Status, errkind.Conflict)
	}
	payload, _ := json.Marshal(deployPayload{PlanJob: j.ID})
	deployID, err := s.DB.ApprovePlan(r.Context(), org.ID, j.ID, u.ID, string(payload))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"plan_job": j.ID, "deploy_job": deployID, "url": "/api/v1/jobs/" + strconv.FormatInt(deployID, 10)})
	return nil
}
