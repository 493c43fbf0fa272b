package access_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/errkind"
)

// memStore is a Store in memory for the library's tests; the hub's
// database implements the same contract and has its own tests.
type memStore struct {
	mu        sync.Mutex
	requests  []*access.Request
	decisions []access.Decision
	grants    map[access.GrantKey]*memGrant
}

type memGrant struct {
	g          access.Grant
	worker     string
	leaseUntil time.Time
}

func newMemStore() *memStore { return &memStore{grants: map[access.GrantKey]*memGrant{}} }

func (m *memStore) CreateRequest(_ context.Context, r *access.Request) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.ID = int64(len(m.requests) + 1)
	c := *r
	m.requests = append(m.requests, &c)
	return nil
}

func (m *memStore) Request(_ context.Context, id int64) (*access.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id < 1 || int(id) > len(m.requests) {
		return nil, fmt.Errorf("request %d: %w", id, errkind.NotFound)
	}
	c := *m.requests[id-1]
	return &c, nil
}

func (m *memStore) Requests(_ context.Context, f access.Filter) ([]access.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []access.Request
	for i := len(m.requests) - 1; i >= 0; i-- {
		r := m.requests[i]
		if (f.Requester == "" || r.Requester == f.Requester) && (f.Status == "" || r.Status == f.Status) {
			out = append(out, *r)
		}
	}
	return out, nil
}

func (m *memStore) mark(r *access.Request, now time.Time) {
	g := m.grants[r.Key]
	if g == nil {
		g = &memGrant{g: access.Grant{Key: r.Key, User: r.Requester, Account: r.Account, PermissionSet: r.PermissionSet}}
		m.grants[r.Key] = g
	}
	g.g.Due, g.g.NextAttempt = true, now
	g.g.Version++
}

func (m *memStore) Decide(_ context.Context, r *access.Request, from access.Status, d access.Decision) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.requests[r.ID-1]
	if s.Status != from {
		return fmt.Errorf("request %d is %s: %w", r.ID, s.Status, access.ErrNotPending)
	}
	s.Status, s.DecidedBy, s.Decided, s.DecisionReason = d.Status, d.Actor, d.Time, d.Reason
	if d.Status == access.Approved {
		s.Expires = r.Expires
	}
	*r = *s
	m.decisions = append(m.decisions, d)
	m.mark(s, d.Time)
	return nil
}

func (m *memStore) ExpireDue(_ context.Context, now time.Time) ([]access.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []access.Request
	for _, r := range m.requests {
		if r.Status == access.Approved && !now.Before(r.Expires) {
			r.Status = access.Expired
			m.decisions = append(m.decisions, access.Decision{RequestID: r.ID, Actor: "berth", Status: access.Expired, Time: now})
			m.mark(r, now)
			out = append(out, *r)
		}
	}
	return out, nil
}

func (m *memStore) ClaimGrant(_ context.Context, worker string, key *access.GrantKey, now time.Time, lease time.Duration) (*access.Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]access.GrantKey, 0, len(m.grants))
	for k := range m.grants {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		g := m.grants[k]
		if key != nil && k != *key {
			continue
		}
		if g.g.Due && !now.Before(g.g.NextAttempt) && (g.worker == "" || now.After(g.leaseUntil)) {
			g.worker, g.leaseUntil = worker, now.Add(lease)
			c := g.g
			return &c, nil
		}
	}
	return nil, access.ErrNothingDue
}

func (m *memStore) Covering(_ context.Context, key access.GrantKey, now time.Time) ([]access.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []access.Request
	for _, r := range m.requests {
		if r.Key == key && r.Active(now) {
			out = append(out, *r)
		}
	}
	return out, nil
}

func (m *memStore) FinishGrant(_ context.Context, worker string, g *access.Grant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.grants[g.Key]
	if s == nil || s.worker != worker {
		return fmt.Errorf("grant %s: %s no longer holds it: %w", g.Key, worker, errkind.Conflict)
	}
	s.worker = ""
	s.g.Present, s.g.Attempts, s.g.LastError = g.Present, g.Attempts, g.LastError
	if s.g.Version == g.Version {
		s.g.Due, s.g.NextAttempt = g.Due, g.NextAttempt
	}
	return nil
}

func (m *memStore) Grants(_ context.Context, principal string) ([]access.Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []access.Grant
	for _, g := range m.grants {
		if principal == "" || g.g.Key.PrincipalID == principal {
			out = append(out, g.g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out, nil
}
