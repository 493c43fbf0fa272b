package hub_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/internal/testenv"
)

// waitJobs polls the API until every job has finished.
func waitJobs(t *testing.T, c *client, ids []int64) map[int64]*jobView {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	out := map[int64]*jobView{}
	for len(out) < len(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs finished in time", len(out), len(ids))
		}
		for _, id := range ids {
			if out[id] != nil {
				continue
			}
			var j jobView
			if code := c.do("GET", "/api/v1/jobs/"+itoa(id), "", &j); code != 200 {
				t.Fatalf("get job %d: %d", id, code)
			}
			if j.Status == "succeeded" || j.Status == "failed" {
				out[id] = &j
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

// Two hub replicas on one PostgreSQL, each with its worker polling: every
// job runs exactly once, and so does the deploy an approval queues.
func TestReplicasRunJobsOnce(t *testing.T) {
	pg := testenv.StartPostgres(t)
	h := newAWSHub(t, pg.URL)
	b := newServer(t, pg.URL)
	awsConfig(t, b, h.s.Secrets)
	srvB := httptest.NewServer(b.Handler())
	defer srvB.Close()
	onB := &client{t: t, url: srvB.URL, token: h.admin.token}
	h.createDataPlane("prod", "eu-west-1")
	dataPlaneStack(h.fake, "eu-west-1")

	const n = 12
	var ids []int64
	for i := 0; i < n; i++ {
		c := h.admin
		if i%2 == 1 {
			c = onB
		}
		var out struct{ ID int64 }
		if code := c.do("POST", "/api/v1/dataplanes/prod/jobs", `{"kind":"check"}`, &out); code != 202 {
			t.Fatalf("queue: %d", code)
		}
		ids = append(ids, out.ID)
	}
	plan := h.queue("prod", "plan")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, s := range []*hub.Server{h.s, b} {
		w := &hub.Worker{Server: s, ID: []string{"replica-a", "replica-b"}[i], Idle: 5 * time.Millisecond, StackPoll: time.Millisecond}
		wg.Go(func() { w.Run(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()

	done := waitJobs(t, onB, append(ids, plan))
	var approved struct {
		DeployJob int64 `json:"deploy_job"`
	}
	if code := onB.do("POST", "/api/v1/jobs/"+itoa(plan)+"/approve", "", &approved); code != 202 {
		t.Fatalf("approve: %d", code)
	}
	for id, j := range waitJobs(t, h.admin, []int64{approved.DeployJob}) {
		done[id] = j
	}
	claimedBy := map[string]int{}
	for id, j := range done {
		if j.Status != "succeeded" || j.Attempts != 1 || strings.Count(j.events(), "claimed by") != 1 {
			t.Errorf("job %d (%s): %s after %d attempts: %s\n%s", id, j.Kind, j.Status, j.Attempts, j.Failure, j.events())
		}
		for _, r := range []string{"replica-a", "replica-b"} {
			if strings.Contains(j.events(), "claimed by "+r) {
				claimedBy[r]++
			}
		}
	}
	t.Logf("jobs per replica: %v", claimedBy)
	if got := len(h.fake.Called("sts", "AssumeRole")); got != n+2 {
		t.Errorf("%d AssumeRole calls for %d checks, a plan and a deploy", got, n)
	}
	if got := len(h.fake.Called("cloudformation", "ExecuteChangeSet")); got != 1 {
		t.Errorf("the deploy executed %d change sets, want 1", got)
	}
	// The cluster's files hold the external ID only sealed.
	filepath.Walk(pg.Dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), h.externalID) {
				t.Errorf("%s holds the external ID in clear", p)
			}
		}
		return nil
	})
}

// A job whose worker stopped (its lease ran out) is run by another worker;
// a deploy is not executed a second time.
func TestLeaseExpiry(t *testing.T) {
	h := newAWSHub(t, "sqlite:"+t.TempDir()+"/hub.db")
	h.createDataPlane("prod", "eu-west-1")
	dataPlaneStack(h.fake, "eu-west-1")
	ctx := context.Background()

	// A negative lease has run out already: the worker "stopped".
	id := h.queue("prod", "check")
	if _, err := h.s.DB.Claim(ctx, "stopped-worker", -time.Second); err != nil {
		t.Fatal(err)
	}
	j := h.run(id)
	if j.Status != "succeeded" || j.Attempts != 2 || !strings.Contains(j.events(), "attempt 2: claimed by worker-1") {
		t.Errorf("retried check: %s, %d attempts\n%s", j.Status, j.Attempts, j.events())
	}
	if err := h.s.DB.Finish(ctx, id, "stopped-worker", true, "{}"); !errors.Is(err, errkind.Conflict) {
		t.Errorf("the stopped worker finished a job it lost: %v", err)
	}

	plan := h.run(h.queue("prod", "plan"))
	var approved struct {
		DeployJob int64 `json:"deploy_job"`
	}
	h.admin.do("POST", "/api/v1/jobs/"+itoa(plan.ID)+"/approve", "", &approved)
	if _, err := h.s.DB.Claim(ctx, "stopped-worker", -time.Second); err != nil {
		t.Fatal(err)
	}
	dep := h.run(approved.DeployJob)
	if dep.Status != "failed" || !strings.Contains(dep.Failure, "not executed twice") {
		t.Errorf("retried deploy: %s %s", dep.Status, dep.Failure)
	}
	if n := len(h.fake.Called("cloudformation", "ExecuteChangeSet")); n != 0 {
		t.Errorf("%d change sets executed by a retried deploy", n)
	}
}

// A worker renews its lease while a job runs longer than the lease, so
// another worker polling meanwhile never takes the job over.
func TestLeaseRenewed(t *testing.T) {
	h := newAWSHub(t, "sqlite:"+t.TempDir()+"/hub.db")
	h.createDataPlane("prod", "eu-west-1")
	st := dataPlaneStack(h.fake, "eu-west-1")
	for i := 0; i < 8; i++ { // a slow create: 8 polls of 150 ms, twice the lease
		st.Steps = append([]awsfake.Step{{Status: "CREATE_IN_PROGRESS"}}, st.Steps...)
	}
	plan := h.run(h.queue("prod", "plan"))
	var approved struct {
		DeployJob int64 `json:"deploy_job"`
	}
	h.admin.do("POST", "/api/v1/jobs/"+itoa(plan.ID)+"/approve", "", &approved)

	h.worker.Lease, h.worker.StackPoll = 600*time.Millisecond, 150*time.Millisecond
	other := &hub.Worker{Server: h.s, ID: "worker-2", Lease: 600 * time.Millisecond, Idle: 10 * time.Millisecond}
	first := make(chan error, 1)
	go func() {
		ran, err := h.worker.RunOne(context.Background())
		if !ran && err == nil {
			err = errors.New("no job")
		}
		first <- err
	}()
	for h.job(approved.DeployJob).Status != "running" {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { other.Run(ctx) })
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
	dep := h.job(approved.DeployJob)
	if dep.Status != "succeeded" || dep.Attempts != 1 || strings.Contains(dep.events(), "worker-2") {
		t.Errorf("deploy: %s after %d attempts: %s\n%s", dep.Status, dep.Attempts, dep.Failure, dep.events())
	}
}
