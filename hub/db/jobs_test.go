package db_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// newOrg migrates d and makes an organisation with its first user and a
// data plane.
func newOrg(t *testing.T, d *db.DB) (orgID, userID int64, dp *db.DataPlane) {
	t.Helper()
	ctx := context.Background()
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := d.CreateFirstUser(ctx, "admin@example.com", "", "default")
	if err != nil {
		t.Fatal(err)
	}
	org, err := d.UserOrganisation(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	dp = &db.DataPlane{OrgID: org.ID, Name: "prod", Kind: "aws", Settings: "{}", Secrets: "{}"}
	if err := d.CreateDataPlane(ctx, dp); err != nil {
		t.Fatal(err)
	}
	return org.ID, u.ID, dp
}

// planJob makes an organisation, a data plane and a succeeded plan job.
func planJob(t *testing.T, d *db.DB) (orgID, userID, planID int64) {
	t.Helper()
	ctx := context.Background()
	orgID, userID, dp := newOrg(t, d)
	id, err := d.EnqueueJob(ctx, db.NewJob{Kind: "plan", Payload: "{}", OrgID: orgID, DataPlaneID: dp.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Claim(ctx, "w", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := d.Finish(ctx, id, "w", true, "{}"); err != nil {
		t.Fatal(err)
	}
	return orgID, userID, id
}

// Two admins approving one plan on two replicas at once queue one deploy.
func TestApprovePlanOnce(t *testing.T) {
	engines(t, func(t *testing.T, open func() *db.DB) {
		ctx := context.Background()
		d := open()
		org, user, plan := planJob(t, d)
		var wg sync.WaitGroup
		ids, errs := make([]int64, 2), make([]error, 2)
		for i, r := range []*db.DB{d, open()} {
			wg.Go(func() { ids[i], errs[i] = r.ApprovePlan(ctx, org, plan, user, `{"plan_job":1}`) })
		}
		wg.Wait()
		ok := 0
		for i := range errs {
			switch {
			case errs[i] == nil:
				ok++
			case !errors.Is(errs[i], errkind.Conflict):
				t.Errorf("approval %d: %v", i, errs[i])
			}
		}
		if ok != 1 {
			t.Fatalf("%d approvals succeeded (%v), want 1", ok, errs)
		}
		j, err := d.JobByID(ctx, org, plan)
		if err != nil || j.DeployJob == 0 || j.ApprovedBy != user || j.Approved.IsZero() {
			t.Errorf("plan after approval: %+v, %v", j, err)
		}
		deploys := 0
		for {
			c, err := d.Claim(ctx, "w", time.Minute)
			if errors.Is(err, db.ErrNoJob) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Kind == "deploy" && c.ID == j.DeployJob && c.OrgID == org {
				deploys++
			}
		}
		if deploys != 1 {
			t.Errorf("%d deploy jobs queued", deploys)
		}
		if _, err := d.JobByID(ctx, org+1, plan); !errors.Is(err, errkind.NotFound) {
			t.Errorf("another organisation's job: %v", err)
		}
	})
}

func TestRenewAndEvents(t *testing.T) {
	engines(t, func(t *testing.T, open func() *db.DB) {
		ctx := context.Background()
		d := open()
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		id, err := d.Enqueue(ctx, "status", "{}")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Claim(ctx, "a", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := d.Renew(ctx, id, "a", time.Minute); err != nil {
			t.Errorf("holder renews: %v", err)
		}
		if err := d.Renew(ctx, id, "b", time.Minute); !errors.Is(err, errkind.Conflict) {
			t.Errorf("another worker renewed: %v", err)
		}
		for _, m := range []string{"one", "two", "three"} {
			if err := d.AddJobEvent(ctx, id, m); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Finish(ctx, id, "a", true, "{}"); err != nil {
			t.Fatal(err)
		}
		if err := d.Renew(ctx, id, "a", time.Minute); !errors.Is(err, errkind.Conflict) {
			t.Errorf("renewed a finished job: %v", err)
		}
		ev, err := d.JobEvents(ctx, id)
		if err != nil || len(ev) != 3 || ev[0].Message != "one" || ev[2].Message != "three" {
			t.Errorf("events %+v, %v", ev, err)
		}
	})
}
