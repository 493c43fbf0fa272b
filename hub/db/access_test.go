package db_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

func accessRequest(user string, n int, created time.Time) *access.Request {
	return &access.Request{
		Requester: user + "@acme.example", Account: "pay-prod", PermissionSet: "AdministratorAccess", Duration: time.Hour,
		Reason: "incident", Status: access.Pending, Created: created, Approvers: "leads",
		Key: access.GrantKey{PrincipalID: fmt.Sprintf("u-%s-%d", user, n), AccountID: "111122223333", PermissionSetARN: "arn:ps"},
	}
}

func TestAccessStoreDecide(t *testing.T) {
	engines(t, func(t *testing.T, open func() *db.DB) {
		ctx := context.Background()
		d := open()
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		s := d.Access()
		now := time.UnixMilli(1_800_000_000_000)
		r := accessRequest("ana", 0, now)
		if err := s.CreateRequest(ctx, r); err != nil || r.ID == 0 {
			t.Fatalf("create: %v", err)
		}
		r.Expires = now.Add(time.Hour)
		if err := s.Decide(ctx, r, access.Pending, access.Decision{RequestID: r.ID, Actor: "bo@acme.example", Status: access.Approved, Reason: "ok", Time: now}); err != nil {
			t.Fatal(err)
		}
		if r.Status != access.Approved || !r.Expires.Equal(now.Add(time.Hour)) || r.DecidedBy != "bo@acme.example" || r.Key.PrincipalID != "u-ana-0" {
			t.Errorf("after approve %+v", r)
		}
		// Two approvals of the same request: the second is a conflict.
		err := s.Decide(ctx, r, access.Pending, access.Decision{RequestID: r.ID, Actor: "cy", Status: access.Approved, Time: now})
		if !errors.Is(err, access.ErrNotPending) || !errors.Is(err, errkind.Conflict) {
			t.Errorf("second approval: %v", err)
		}
		if _, err := s.Request(ctx, 999); !errors.Is(err, errkind.NotFound) {
			t.Errorf("unknown request: %v", err)
		}
		// A revoke keeps the expiry; the grant was marked twice.
		if err := s.Decide(ctx, r, access.Approved, access.Decision{RequestID: r.ID, Actor: "ana@acme.example", Status: access.Revoked, Time: now}); err != nil {
			t.Fatal(err)
		}
		if !r.Expires.Equal(now.Add(time.Hour)) || r.Status != access.Revoked {
			t.Errorf("after revoke %+v", r)
		}
		gs, err := s.Grants(ctx, "u-ana-0")
		if err != nil || len(gs) != 1 || !gs[0].Due || gs[0].Version != 2 || gs[0].User != "ana@acme.example" {
			t.Fatalf("grants %+v %v", gs, err)
		}
		ds, err := s.Decisions(ctx, r.ID)
		if err != nil || len(ds) != 2 || ds[0].Status != access.Approved || ds[1].Status != access.Revoked {
			t.Errorf("decisions %+v %v", ds, err)
		}
		if mine, err := s.Requests(ctx, access.Filter{Requester: "ana@acme.example", Status: access.Revoked}); err != nil || len(mine) != 1 {
			t.Errorf("requests %+v %v", mine, err)
		}

		// A claim is exclusive until its lease ends; a mark while the
		// worker works keeps the grant due.
		g, err := s.ClaimGrant(ctx, "w1", nil, now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClaimGrant(ctx, "w2", &g.Key, now, time.Minute); !errors.Is(err, access.ErrNothingDue) {
			t.Errorf("claimed twice: %v", err)
		}
		r2 := accessRequest("ana", 0, now)
		if err := s.CreateRequest(ctx, r2); err != nil {
			t.Fatal(err)
		}
		r2.Expires = now.Add(time.Hour)
		if err := s.Decide(ctx, r2, access.Pending, access.Decision{RequestID: r2.ID, Actor: "bo", Status: access.Approved, Time: now}); err != nil {
			t.Fatal(err)
		}
		g.Due = false
		if err := s.FinishGrant(ctx, "w1", g); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishGrant(ctx, "w1", g); !errors.Is(err, errkind.Conflict) {
			t.Errorf("finish without a claim: %v", err)
		}
		if g2, err := s.ClaimGrant(ctx, "w2", nil, now, time.Minute); err != nil || g2.Key != g.Key {
			t.Errorf("the grant marked during work is not due: %v", err)
		}
		// A lease that ran out can be taken over.
		if _, err := s.ClaimGrant(ctx, "w3", nil, now.Add(2*time.Minute), time.Minute); err != nil {
			t.Errorf("take over an expired lease: %v", err)
		}
		if cov, err := s.Covering(ctx, g.Key, now); err != nil || len(cov) != 1 || cov[0].ID != r2.ID {
			t.Errorf("covering %+v %v", cov, err)
		}
	})
}

// TestAccessStoreRace: three replicas expire and claim at once; each
// request expires once and each grant is claimed by one worker.
func TestAccessStoreRace(t *testing.T) {
	engines(t, func(t *testing.T, open func() *db.DB) {
		ctx := context.Background()
		d := open()
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		now := time.UnixMilli(1_800_000_000_000)
		const n = 30
		for i := range n {
			r := accessRequest("u", i, now)
			if err := d.Access().CreateRequest(ctx, r); err != nil {
				t.Fatal(err)
			}
			r.Expires = now.Add(time.Hour)
			if err := d.Access().Decide(ctx, r, access.Pending, access.Decision{RequestID: r.ID, Actor: "bo", Status: access.Approved, Time: now}); err != nil {
				t.Fatal(err)
			}
		}
		// Claimed and finished by the approval (the grant is present).
		for {
			g, err := d.Access().ClaimGrant(ctx, "approve", nil, now, time.Minute)
			if errors.Is(err, access.ErrNothingDue) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			g.Present, g.Due = true, false
			if err := d.Access().FinishGrant(ctx, "approve", g); err != nil {
				t.Fatal(err)
			}
		}
		later := now.Add(time.Hour)
		var mu sync.Mutex
		expired := map[int64]string{}
		claimed := map[access.GrantKey]string{}
		var wg sync.WaitGroup
		for w := range 3 {
			s := open().Access()
			worker := fmt.Sprintf("replica-%d", w)
			wg.Go(func() {
				exp, err := s.ExpireDue(ctx, later)
				if err != nil {
					t.Error(err)
					return
				}
				for {
					g, err := s.ClaimGrant(ctx, worker, nil, later, time.Minute)
					if errors.Is(err, access.ErrNothingDue) {
						break
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if prev, ok := claimed[g.Key]; ok {
						t.Errorf("grant %s claimed by %s and %s", g.Key, prev, worker)
					}
					claimed[g.Key] = worker
					mu.Unlock()
					g.Present, g.Due = false, false
					if err := s.FinishGrant(ctx, worker, g); err != nil {
						t.Error(err)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				for _, r := range exp {
					if prev, ok := expired[r.ID]; ok {
						t.Errorf("request %d expired by %s and %s", r.ID, prev, worker)
					}
					expired[r.ID] = worker
				}
			})
		}
		wg.Wait()
		// A worker may claim before another replica's expiry commits; the
		// rest is claimed on the next pass, still once.
		for {
			g, err := d.Access().ClaimGrant(ctx, "last", nil, later, time.Minute)
			if err != nil {
				break
			}
			if _, ok := claimed[g.Key]; ok {
				t.Errorf("grant %s claimed again after its work was done", g.Key)
			}
			claimed[g.Key] = "last"
		}
		if len(expired) != n || len(claimed) != n {
			t.Errorf("%d requests expired and %d grants claimed, want %d each", len(expired), len(claimed), n)
		}
	})
}
