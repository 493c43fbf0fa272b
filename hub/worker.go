package hub

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/deploy"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/policy"
)

// Worker runs the background jobs of data planes. Every replica runs one;
// db.Claim hands each job to one worker at a time, under a lease the worker
// renews while the job runs. A job whose worker died (its lease ran out) is
// claimed again by another, except a deploy: executing a change set twice
// is not safe to repeat blindly, so a deploy claimed a second time fails
// and asks for a status job and a new plan.
type Worker struct {
	Server *Server
	ID     string        // names the replica in the jobs table and events
	Lease  time.Duration // 2 minutes when zero; renewed every third of it
	Idle   time.Duration // wait after finding no job; 2 seconds when zero
	// StackPoll is how often stack operations are polled (deploy's
	// default when zero).
	StackPoll time.Duration
}

// NewWorkerID names this process in the jobs it claims: host, process id
// and a random part, so two replicas on one host differ.
func NewWorkerID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// maxAttempts is how often a job is claimed before it is given up.
const maxAttempts = 3

func (w *Worker) lease() time.Duration {
	if w.Lease > 0 {
		return w.Lease
	}
	return 2 * time.Minute
}

func (w *Worker) idle() time.Duration {
	if w.Idle > 0 {
		return w.Idle
	}
	return 2 * time.Second
}

// Run claims and runs jobs until ctx is done.
func (w *Worker) Run(ctx context.Context) {
	for ctx.Err() == nil {
		ran, err := w.RunOne(ctx)
		if err != nil && ctx.Err() == nil {
			w.Server.log().Error("background job", "worker", w.ID, "err", err)
		}
		if ran && err == nil {
			continue
		}
		t := time.NewTimer(w.idle())
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// RunOne claims one job and runs it; ran is false when there was none.
func (w *Worker) RunOne(ctx context.Context) (ran bool, err error) {
	d := w.Server.DB
	j, err := d.Claim(ctx, w.ID, w.lease())
	if errors.Is(err, db.ErrNoJob) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	jctx, cancel := context.WithCancel(ctx)
	lost := make(chan error, 1)
	beating := make(chan struct{}) // closed when the heartbeat below has stopped
	defer func() { cancel(); <-beating }()
	go func() {
		defer close(beating)
		t := time.NewTicker(w.lease() / 3)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				if err := d.Renew(jctx, j.ID, w.ID, w.lease()); err != nil {
					if errors.Is(err, errkind.Conflict) {
						lost <- err
						cancel()
						return
					}
					w.Server.log().Warn("renew job lease", "job", j.ID, "err", err)
				}
			}
		}
	}()
	w.event(jctx, j.ID, fmt.Sprintf("attempt %d: claimed by %s", j.Attempts, w.ID))
	env, runErr := w.load(jctx, j)
	var result any
	if runErr == nil {
		result, runErr = w.run(jctx, j, env)
	}
	cancel()
	<-beating
	select {
	case err := <-lost:
		return true, fmt.Errorf("job %d: %w", j.ID, err) // another worker owns it now
	default:
	}
	if ctx.Err() != nil {
		// Shutting down: the job stays claimed until its lease runs out,
		// then another replica runs it again (a deploy fails instead).
		return true, fmt.Errorf("job %d: stopped with the hub: %w", j.ID, ctx.Err())
	}
	out := jobOutcome{}
	if result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			return true, fmt.Errorf("job %d: encode result: %w", j.ID, err)
		}
		out.Result = json.RawMessage(env.hide(string(b)))
	}
	fctx := context.WithoutCancel(ctx)
	if runErr != nil {
		out.Failure = env.hide(runErr.Error())
		w.event(fctx, j.ID, "failed: "+out.Failure)
	} else {
		w.event(fctx, j.ID, "succeeded")
	}
	b, _ := json.Marshal(out)
	return true, d.Finish(fctx, j.ID, w.ID, runErr == nil, string(b))
}

func (w *Worker) event(ctx context.Context, jobID int64, msg string) {
	if err := w.Server.DB.AddJobEvent(ctx, jobID, msg); err != nil {
		w.Server.log().Warn("job event", "job", jobID, "err", err)
	}
}

// eventWriter turns the lines a Deployer prints into job events.
type eventWriter struct {
	ctx    context.Context
	w      *Worker
	job    int64
	prefix string
	env    *jobEnv
}

func (e *eventWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if strings.TrimSpace(line) != "" {
			e.w.event(e.ctx, e.job, e.prefix+e.env.hide(strings.TrimSpace(line)))
		}
	}
	return len(p), nil
}

// jobEnv is the data plane a job works on.
type jobEnv struct {
	dp       *db.DataPlane
	st       awsSettings
	ext      string
	redactor *strings.Replacer
}

// hide masks the external ID in what a job stores and shows: CloudFormation
// may echo a parameter's value in change set details or events.
func (e *jobEnv) hide(s string) string {
	if e == nil || e.redactor == nil {
		return s
	}
	return e.redactor.Replace(s)
}

// load reads the job's data plane and opens its external ID.
func (w *Worker) load(ctx context.Context, j *db.Job) (*jobEnv, error) {
	dp, err := w.Server.DB.DataPlaneByID(ctx, j.DataPlaneID)
	if err != nil {
		return nil, err
	}
	st, ext, err := w.Server.awsDataPlane(ctx, dp)
	if err != nil {
		return nil, err
	}
	return &jobEnv{dp: dp, st: st, ext: ext, redactor: strings.NewReplacer(ext, "****")}, nil
}

// run runs one claimed job and returns its result.
func (w *Worker) run(ctx context.Context, j *db.Job, env *jobEnv) (any, error) {
	if j.Attempts > maxAttempts {
		return nil, fmt.Errorf("given up after %d attempts whose workers stopped before finishing", maxAttempts)
	}
	if j.Kind == "deploy" && j.Attempts > 1 {
		return nil, errors.New("the worker running this deploy stopped before it finished, and a change set is not executed twice: queue a status job to see where the stacks are, then plan again")
	}
	dp, st, ext := env.dp, env.st, env.ext
	role := dataplane.Ops
	if j.Kind == "check" || j.Kind == "plan" || j.Kind == "deploy" {
		role = dataplane.Provisioner
	}
	cfg := w.Server.AWS.Copy()
	if cfg.Region == "" {
		cfg.Region = st.Regions[0] // STS is regional; any region of the data plane will do
	}
	a, err := dataplane.AssumeAWS(ctx, cfg, w.Server.AWSPrincipal, st.target(ext), role)
	if awserr.Code(err) == "AccessDenied" {
		return nil, fmt.Errorf("%w; if the account's bootstrap was deployed with another external ID or principal, deploy it again as GET /api/v1/dataplanes/%s/bootstrap says", err, dp.Name)
	}
	if err != nil {
		return nil, err
	}
	w.event(ctx, j.ID, "acting as "+a.RoleARN)
	a.Poll = w.StackPoll
	a.Events = func(region string) io.Writer {
		return &eventWriter{ctx: ctx, w: w, job: j.ID, prefix: region + ": ", env: env}
	}
	switch j.Kind {
	case "check":
		return w.check(ctx, a, st, ext)
	case "plan":
		return w.plan(ctx, j, a, st, ext)
	case "deploy":
		return w.deploy(ctx, j, a, dp, st)
	case "status":
		return a.Status(ctx)
	case "drift":
		reports, err := a.Drift(ctx)
		if err != nil {
			return nil, err
		}
		var text bytes.Buffer
		for _, r := range reports {
			if err := deploy.FormatDrift(&text, r); err != nil {
				return nil, err
			}
		}
		return map[string]any{"regions": reports, "table": text.String()}, nil
	}
	return nil, fmt.Errorf("unknown job kind %q", j.Kind)
}

// check proves the hub can act in the account: the provisioner role trusts
// its principal with this external ID, and the bootstrap is recent enough.
func (w *Worker) check(ctx context.Context, a *dataplane.AWS, st awsSettings, ext string) (any, error) {
	cfg := a.Config.Copy()
	cfg.Region = st.Regions[0]
	id, err := awsx.Identity(ctx, cfg, "the provisioner role "+a.RoleARN)
	if err != nil {
		return nil, err
	}
	results, err := dataplane.Check(ctx, cfg, id, "the provisioner role assumed with the external ID", dataplane.CheckInput{Region: st.Regions[0]})
	if err != nil {
		return nil, err
	}
	bootstrap := dataplane.CheckResult{Field: "bootstrap", OK: true, Message: "the bootstrap is recent enough for this berth"}
	warning, err := a.CheckBootstrapVersion(ctx, st.Regions[0])
	switch {
	case err != nil:
		bootstrap.OK, bootstrap.Message = false, err.Error()
	case warning != "":
		bootstrap.Message = warning
	}
	results = append(results, bootstrap)
	results = append(results, w.checkHubRoles(ctx, st, ext)...)
	for _, r := range results {
		if !r.OK {
			return results, fmt.Errorf("check %s: %s", r.Field, r.Message)
		}
	}
	return results, nil
}

// checkHubRoles assumes, once the data plane is deployed, the artifact
// reader and writer roles of each region as credential requests will, with
// a session policy narrowed to a prefix no project has.
func (w *Worker) checkHubRoles(ctx context.Context, st awsSettings, ext string) []dataplane.CheckResult {
	if len(st.Buckets) == 0 {
		return nil
	}
	var names []string
	for _, b := range st.Buckets {
		names = append(names, b.Name)
	}
	part := dataplane.PartitionOf(w.Server.AWSPrincipal)
	probe, err := policy.SessionPolicy(policy.SessionParams{Partition: part, Account: st.Account, Buckets: names, Prefix: path.Join(st.Prefix, "berth-check")})
	if err != nil {
		return []dataplane.CheckResult{{Field: "hub roles", Message: err.Error(), Kind: errkind.Invalid}}
	}
	var out []dataplane.CheckResult
	for _, b := range st.Buckets {
		for _, role := range []string{"reader", "writer"} {
			arn := fmt.Sprintf("arn:%s:iam::%s:role/%s", part, st.Account, policy.HubRoleName(st.Qualifier, role, b.Region))
			r := dataplane.CheckResult{Field: "hub " + role + " role in " + b.Region, OK: true, Message: "the hub assumes " + arn}
			if _, err := vend(ctx, vendInput{Config: &w.Server.AWS, Region: b.Region, RoleARN: arn, ExternalID: ext,
				SessionName: "berth-hub-check", Policy: probe, Duration: 15 * time.Minute}); err != nil {
				r.OK, r.Message, r.Kind = false, err.Error(), errkind.PermissionDenied
			}
			out = append(out, r)
		}
	}
	return out
}

// planResult is a plan job's result: each region's change set, and the
// change table as `berth dataplane deploy` prints it.
type planResult struct {
	Regions []*deploy.Plan `json:"regions"`
	Changes bool           `json:"changes"`
	Table   string         `json:"table"`
}

func (w *Worker) plan(ctx context.Context, j *db.Job, a *dataplane.AWS, st awsSettings, ext string) (any, error) {
	warning, err := a.CheckBootstrapVersion(ctx, st.Regions[0])
	if err != nil {
		return nil, err
	}
	if warning != "" {
		w.event(ctx, j.ID, "warning: "+warning)
	}
	p, err := a.PlanDeploy(ctx, dataplane.DeployInput{Prefix: st.Prefix, HubPrincipal: w.Server.AWSPrincipal, HubExternalID: ext})
	if err != nil {
		return nil, err
	}
	out := planResult{Changes: p.Changes()}
	var text bytes.Buffer
	for _, r := range p.Regions {
		out.Regions = append(out.Regions, r.Plan)
		if err := deploy.FormatPlan(&text, r.Plan); err != nil {
			return nil, err
		}
	}
	out.Table = text.String()
	w.deleteReplacedPlan(ctx, j, a)
	return out, nil
}

// deleteReplacedPlan deletes the change sets of the data plane's previous
// plan when nobody approved it: this plan replaces it (it can no longer be
// approved, see db.ApprovePlan), and CloudFormation would keep its change
// sets until the stack's next execution. A failure is reported, not fatal:
// the new plan stands.
func (w *Worker) deleteReplacedPlan(ctx context.Context, j *db.Job, a *dataplane.AWS) {
	old, err := w.Server.DB.ReplacedPlan(ctx, j.DataPlaneID, j.ID)
	if err != nil || old == nil {
		if err != nil {
			w.event(ctx, j.ID, "warning: "+err.Error())
		}
		return
	}
	var r struct {
		Result planResult `json:"result"`
	}
	err = json.Unmarshal([]byte(old.Result), &r)
	if err == nil && r.Result.Changes {
		var p *dataplane.AWSDeploy
		if p, err = a.Resume(r.Result.Regions); err == nil {
			err = p.DeleteChangeSets(ctx)
		}
	}
	if err != nil {
		w.event(ctx, j.ID, fmt.Sprintf("warning: plan job %d, which this plan replaces, keeps its change sets: %v", old.ID, err))
		return
	}
	w.event(ctx, j.ID, fmt.Sprintf("this plan replaces plan job %d; its change sets are deleted", old.ID))
}

// deploy applies exactly the change sets of the approved plan job and
// records the buckets the stacks report.
func (w *Worker) deploy(ctx context.Context, j *db.Job, a *dataplane.AWS, dp *db.DataPlane, st awsSettings) (any, error) {
	var payload deployPayload
	if err := json.Unmarshal([]byte(j.Payload), &payload); err != nil {
		return nil, fmt.Errorf("read deploy job: %w", err)
	}
	planJob, err := w.Server.DB.JobByID(ctx, j.OrgID, payload.PlanJob)
	if err != nil {
		return nil, err
	}
	if planJob.Approved.IsZero() || planJob.DeployJob != j.ID {
		return nil, fmt.Errorf("plan job %d was not approved for this deploy", planJob.ID)
	}
	var o struct {
		Result planResult `json:"result"`
	}
	if err := json.Unmarshal([]byte(planJob.Result), &o); err != nil {
		return nil, fmt.Errorf("read plan job %d: %w", planJob.ID, err)
	}
	p, err := a.Resume(o.Result.Regions)
	if err != nil {
		return nil, err
	}
	w.event(ctx, j.ID, fmt.Sprintf("applying the change sets of plan job %d", planJob.ID))
	if err := p.Apply(ctx); err != nil {
		return map[string]any{"regions": p.Regions, "failed": failures(err)}, err
	}
	buckets, err := p.Buckets()
	if err != nil {
		return nil, err
	}
	st.Buckets = nil
	for _, b := range buckets {
		st.Buckets = append(st.Buckets, awsBucket{Region: b.Region, Name: b.Name, KeyARN: b.KeyARN})
	}
	settings, _ := json.Marshal(st)
	if err := w.Server.DB.MarkDataPlaneDeployed(ctx, dp.ID, string(settings)); err != nil {
		return nil, err
	}
	return map[string]any{"regions": p.Regions, "buckets": st.Buckets}, nil
}

// failures lists the stack operations CloudFormation could not finish,
// with the resource that failed first and its reason.
func failures(err error) []*deploy.FailedError {
	var out []*deploy.FailedError
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*deploy.FailedError); ok {
			out = append(out, fe)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if u := errors.Unwrap(err); u != nil {
			walk(u)
		}
	}
	walk(err)
	return out
}
