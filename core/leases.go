package core

import (
	"context"
	"fmt"
	"regexp"
	"time"
)

// Lease bounds (compat-v1.md §7) and this project's blocking-acquire bound.
const (
	LeaseTTLDefaultMs = 60_000
	LeaseTTLMinMs     = 1_000
	LeaseTTLMaxMs     = 3_600_000
	LeaseWaitMaxMs    = 60_000
)

// Lease statuses.
const (
	LeaseActive   = "active"
	LeaseReleased = "released"
	LeaseExpired  = "expired"
)

// Lease is v1's lease object plus its status.
type Lease struct {
	ID           string `json:"id"`
	StateKey     string `json:"state_key"`
	Holder       string `json:"holder"`
	FencingToken int64  `json:"fencing_token" jsonschema_description:"Strictly increasing per key; pass it on state writes (fencing_token) and to your own storage."`
	ExpiresAt    int64  `json:"expires_at"`
	CreatedAt    int64  `json:"created_at"`
	RenewedAt    int64  `json:"renewed_at"`
	Status       string `json:"status" jsonschema:"enum=active,enum=released,enum=expired"`
	RequestID    string `json:"-"`
}

// LeaseEvent is one lease transition.
type LeaseEvent struct {
	ID           string `json:"id" jsonschema_description:"Stream id; pass as after to read on."`
	Type         string `json:"type" jsonschema:"enum=acquired,enum=renewed,enum=released,enum=expired"`
	LeaseID      string `json:"lease_id"`
	StateKey     string `json:"state_key"`
	Holder       string `json:"holder"`
	FencingToken int64  `json:"fencing_token"`
	At           int64  `json:"at"`
}

// AcquireLease is the body of POST /api/v1/states/{state_key}/lease.
type AcquireLease struct {
	Holder    string `json:"holder" jsonschema:"minLength=1,maxLength=255" jsonschema_description:"Who holds the lease (informational)."`
	TTLMs     *int64 `json:"ttl_ms,omitempty" jsonschema:"minimum=1000,maximum=3600000" jsonschema_description:"Lease duration in ms (default 60000)."`
	WaitMs    *int64 `json:"wait_ms,omitempty" jsonschema:"minimum=0,maximum=60000" jsonschema_description:"Wait up to this long for the key instead of failing at once; waiters are served first come first served."`
	RequestID string `json:"request_id,omitempty" jsonschema:"maxLength=255" jsonschema_description:"Retry-safe acquire: the same holder and request_id get the same live lease back."`
}

// RenewLease is the body of POST /api/v1/leases/{id}/renew.
type RenewLease struct {
	TTLMs *int64 `json:"ttl_ms,omitempty" jsonschema:"minimum=1000,maximum=3600000" jsonschema_description:"New duration from now in ms (default 60000)."`
}

// LeasePage is a page of active leases.
type LeasePage struct {
	Data       []Lease    `json:"data"`
	Pagination Pagination `json:"pagination"`
}

// LeaseEventPage is a page of lease events.
type LeaseEventPage struct {
	Data       []LeaseEvent `json:"data"`
	Pagination Pagination   `json:"pagination"`
}

// LeaseStore is what the Leases service needs from storage.
type LeaseStore interface {
	// TryLock takes the key's lock for ttl with the lease id as its value (redsync).
	TryLock(ctx context.Context, project, key, id string, ttl time.Duration) (bool, error)
	// Grant records a lease on a lock TryLock took; ErrLost-style failure returns ok=false.
	Grant(ctx context.Context, project string, l Lease, ttlMs int64, waiter string) (Lease, bool, error)
	// ExpireDue ends the key's current lease if its expires_at has passed.
	ExpireDue(ctx context.Context, project, key string, now int64) error
	Renew(ctx context.Context, project, id string, ttlMs, now int64) (Lease, error)
	Release(ctx context.Context, project, id string, now int64) (bool, error)
	Lease(ctx context.Context, project, id string) (*Lease, error)
	LeaseOnKey(ctx context.Context, project, key string) (*Lease, error)
	ActiveLeases(ctx context.Context, project string, after string, limit int) ([]Lease, error)
	LeaseEvents(ctx context.Context, project, after string, limit int) ([]LeaseEvent, error)
	// Enqueue adds a waiter at the back of the key's FIFO queue.
	Enqueue(ctx context.Context, project, key, waiter string) error
	// Head returns the first live waiter of the key's queue ("" when empty), dropping dead ones.
	Head(ctx context.Context, project, key string) (string, error)
	// KeepWaiting marks a waiter alive; Dequeue removes it.
	KeepWaiting(ctx context.Context, project, waiter string) error
	Dequeue(ctx context.Context, project, key, waiter string) error
	// SweepExpired ends every due lease in every project and reports how many.
	SweepExpired(ctx context.Context, now int64) (int, error)
}

// Leases is the Leases service.
type Leases struct {
	store LeaseStore
	clock Clock
	// Poll is how often a blocked acquire looks again.
	Poll time.Duration
}

// NewLeases builds the service.
func NewLeases(store LeaseStore, clock Clock) *Leases {
	return &Leases{store: store, clock: clock, Poll: 20 * time.Millisecond}
}

var leaseIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func validTTL(op string, ttl *int64) (int64, error) {
	if ttl == nil {
		return LeaseTTLDefaultMs, nil
	}
	switch {
	case *ttl < LeaseTTLMinMs:
		return 0, BadRequest(op, "ttl_ms", fmt.Sprintf("Number must be greater than or equal to %d", LeaseTTLMinMs))
	case *ttl > LeaseTTLMaxMs:
		return 0, BadRequest(op, "ttl_ms", fmt.Sprintf("Number must be less than or equal to %d", LeaseTTLMaxMs))
	}
	return *ttl, nil
}

// live reports whether l is held now; a record not yet swept can be past its expiry.
func (s *Leases) view(l Lease) Lease {
	if l.Status == LeaseActive && l.ExpiresAt <= NowMs(s.clock) {
		l.Status = LeaseExpired
	}
	return l
}

// Acquire takes the lease on key. With wait_ms it waits, first come first served, instead of
// failing with LEASE_CONFLICT; a waiter that gives up leaves the queue.
func (s *Leases) Acquire(ctx context.Context, p Principal, key string, in AcquireLease) (Lease, error) {
	const op = "core.Leases.Acquire"
	if err := p.Authorize(OpLeaseAcquire); err != nil {
		return Lease{}, err
	}
	if err := validateStateKey(op, key); err != nil {
		return Lease{}, err
	}
	if err := p.RequireResource(op, key); err != nil {
		return Lease{}, err
	}
	if p.AgentID != "" {
		// A bound credential holds leases as its agent, never as someone else.
		if in.Holder != "" && in.Holder != p.AgentID {
			return Lease{}, E(op, CodeForbidden, MsgBoundAgent+p.AgentID)
		}
		in.Holder = p.AgentID
	}
	if in.Holder == "" || len(in.Holder) > 255 {
		return Lease{}, BadRequest(op, "holder", "holder is required (1..255 characters)")
	}
	if len(in.RequestID) > 255 {
		return Lease{}, BadRequest(op, "request_id", "request_id must be at most 255 characters")
	}
	ttl, err := validTTL(op, in.TTLMs)
	if err != nil {
		return Lease{}, err
	}
	var wait int64
	if in.WaitMs != nil {
		if wait = *in.WaitMs; wait < 0 || wait > LeaseWaitMaxMs {
			return Lease{}, BadRequest(op, "wait_ms", fmt.Sprintf("wait_ms must be between 0 and %d", LeaseWaitMaxMs))
		}
	}
	if in.RequestID != "" {
		cur, err := s.store.LeaseOnKey(ctx, p.ProjectID, key)
		if err != nil {
			return Lease{}, Internal(op, err)
		}
		if cur != nil && cur.Holder == in.Holder && cur.RequestID == in.RequestID && s.view(*cur).Status == LeaseActive {
			return s.view(*cur), nil
		}
	}

	deadline := time.NewTimer(time.Duration(wait) * time.Millisecond)
	defer deadline.Stop()
	waiter := ""
	defer func() {
		if waiter != "" {
			_ = s.store.Dequeue(context.WithoutCancel(ctx), p.ProjectID, key, waiter)
		}
	}()
	for {
		l, ok, err := s.tryAcquire(ctx, p.ProjectID, key, in, ttl, waiter)
		if err != nil {
			return Lease{}, Internal(op, err)
		}
		if ok {
			waiter = "" // granted: the grant already dequeued it
			return l, nil
		}
		if wait == 0 {
			return Lease{}, s.conflict(ctx, op, p.ProjectID, key)
		}
		if waiter == "" {
			waiter = NewID()
			if err := s.store.Enqueue(ctx, p.ProjectID, key, waiter); err != nil {
				return Lease{}, Internal(op, err)
			}
		} else if err := s.store.KeepWaiting(ctx, p.ProjectID, waiter); err != nil && ctx.Err() == nil {
			return Lease{}, Internal(op, err)
		}
		select {
		case <-deadline.C:
			return Lease{}, s.conflict(ctx, op, p.ProjectID, key)
		case <-ctx.Done():
			return Lease{}, Internal(op, ctx.Err())
		case <-time.After(s.Poll):
		}
	}
}

// conflict is LEASE_CONFLICT naming who holds the key and until when, so the caller can decide
// whether to wait (wait_ms) or come back after expires_at.
func (s *Leases) conflict(ctx context.Context, op, project, key string) error {
	e := E(op, CodeLeaseConflict, "State already has an active lease")
	if cur, err := s.store.LeaseOnKey(ctx, project, key); err == nil && cur != nil {
		e.Details = map[string]any{"holder": cur.Holder, "expires_at": cur.ExpiresAt}
	}
	return e
}

// tryAcquire makes one attempt; waiter is "" for a caller not (yet) in the queue, who may only
// take the key when nobody is queued (no barging past waiters).
func (s *Leases) tryAcquire(ctx context.Context, project, key string, in AcquireLease, ttl int64, waiter string) (Lease, bool, error) {
	// Waiters behind the head only check their place: that keeps a long queue cheap.
	head, err := s.store.Head(ctx, project, key)
	if err != nil || head != waiter {
		return Lease{}, false, err
	}
	now := NowMs(s.clock)
	if err := s.store.ExpireDue(ctx, project, key, now); err != nil {
		return Lease{}, false, err
	}
	id := NewID()
	ok, err := s.store.TryLock(ctx, project, key, id, time.Duration(ttl)*time.Millisecond)
	if err != nil || !ok {
		return Lease{}, false, err
	}
	l := Lease{ID: id, StateKey: key, Holder: in.Holder, CreatedAt: now, RenewedAt: now, RequestID: in.RequestID}
	return s.store.Grant(ctx, project, l, ttl, waiter)
}

func (s *Leases) load(ctx context.Context, op string, p Principal, id string) (Lease, error) {
	if !leaseIDRe.MatchString(id) {
		return Lease{}, BadRequest(op, "id", "Malformed lease id")
	}
	l, err := s.store.Lease(ctx, p.ProjectID, id)
	if err != nil {
		return Lease{}, Internal(op, err)
	}
	if l == nil {
		return Lease{}, E(op, CodeNotFound, MsgLeaseNotFound)
	}
	if err := p.RequireResource(op, l.StateKey); err != nil {
		return Lease{}, err
	}
	return *l, nil
}

// Renew resets a live lease's expiry to now + ttl.
func (s *Leases) Renew(ctx context.Context, p Principal, id string, in RenewLease) (Lease, error) {
	const op = "core.Leases.Renew"
	if err := p.Authorize(OpLeaseRenew); err != nil {
		return Lease{}, err
	}
	ttl, err := validTTL(op, in.TTLMs)
	if err != nil {
		return Lease{}, err
	}
	if _, err := s.load(ctx, op, p, id); err != nil {
		return Lease{}, err
	}
	l, err := s.store.Renew(ctx, p.ProjectID, id, ttl, NowMs(s.clock))
	if err != nil {
		return Lease{}, Internal(op, err)
	}
	return l, nil
}

// Release ends a lease; releasing twice is NOT_FOUND the second time (v1).
func (s *Leases) Release(ctx context.Context, p Principal, id string) error {
	const op = "core.Leases.Release"
	if err := p.Authorize(OpLeaseRelease); err != nil {
		return err
	}
	if _, err := s.load(ctx, op, p, id); err != nil {
		return err
	}
	ok, err := s.store.Release(ctx, p.ProjectID, id, NowMs(s.clock))
	if err != nil {
		return Internal(op, err)
	}
	if !ok {
		return E(op, CodeNotFound, MsgLeaseNotFound)
	}
	return nil
}

// Get returns a lease by id, whatever its status.
func (s *Leases) Get(ctx context.Context, p Principal, id string) (Lease, error) {
	const op = "core.Leases.Get"
	if err := p.Authorize(OpLeaseGet); err != nil {
		return Lease{}, err
	}
	l, err := s.load(ctx, op, p, id)
	return s.view(l), err
}

// OnKey returns the live lease on key, or NOT_FOUND.
func (s *Leases) OnKey(ctx context.Context, p Principal, key string) (Lease, error) {
	const op = "core.Leases.OnKey"
	if err := p.Authorize(OpLeaseOnKey); err != nil {
		return Lease{}, err
	}
	if err := validateStateKey(op, key); err != nil {
		return Lease{}, err
	}
	if err := p.RequireResource(op, key); err != nil {
		return Lease{}, err
	}
	l, err := s.store.LeaseOnKey(ctx, p.ProjectID, key)
	if err != nil {
		return Lease{}, Internal(op, err)
	}
	if l == nil || s.view(*l).Status != LeaseActive {
		return Lease{}, E(op, CodeNotFound, MsgLeaseNotFound)
	}
	return *l, nil
}

// List pages through the project's active leases, soonest expiry first.
func (s *Leases) List(ctx context.Context, p Principal, cursor string, limit int) (LeasePage, error) {
	const op = "core.Leases.List"
	if err := p.Authorize(OpLeaseList); err != nil {
		return LeasePage{}, err
	}
	if cursor != "" && !leaseIDRe.MatchString(cursor) {
		return LeasePage{}, E(op, CodeInvalidCursor, "Cursor must be the id of the last lease of the previous page")
	}
	limit = ClampLimit(limit, 50, 100)
	ls, err := s.store.ActiveLeases(ctx, p.ProjectID, cursor, limit+1)
	if err != nil {
		return LeasePage{}, Internal(op, err)
	}
	page := LeasePage{Data: []Lease{}}
	for _, l := range ls[:min(limit, len(ls))] {
		if p.CanTouch(l.StateKey) {
			page.Data = append(page.Data, s.view(l))
		}
	}
	page.Pagination.Limit = len(page.Data)
	if len(ls) > limit {
		c := ls[limit-1].ID
		page.Pagination.NextCursor = &c
	}
	return page, nil
}

var streamIDRe = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// Events pages through the project's lease transitions, oldest first.
func (s *Leases) Events(ctx context.Context, p Principal, after string, limit int) (LeaseEventPage, error) {
	const op = "core.Leases.Events"
	if err := p.Authorize(OpLeaseEvents); err != nil {
		return LeaseEventPage{}, err
	}
	if after != "" && !streamIDRe.MatchString(after) {
		return LeaseEventPage{}, E(op, CodeInvalidCursor, "Cursor must be an event id such as 1700000000000-0")
	}
	limit = ClampLimit(limit, 50, 500)
	evs, err := s.store.LeaseEvents(ctx, p.ProjectID, after, limit)
	if err != nil {
		return LeaseEventPage{}, Internal(op, err)
	}
	page := LeaseEventPage{Data: []LeaseEvent{}, Pagination: Pagination{Limit: len(evs)}}
	for _, e := range evs {
		if p.CanTouch(e.StateKey) {
			page.Data = append(page.Data, e)
		}
	}
	if n := len(evs); n > 0 {
		c := evs[n-1].ID
		page.Pagination.NextCursor = &c
	}
	return page, nil
}

// Sweep ends every lease whose expiry has passed, so "expired" events appear without anyone
// touching the key. The server runs it on a ticker; tests call it after moving the clock.
func (s *Leases) Sweep(ctx context.Context) (int, error) {
	n, err := s.store.SweepExpired(ctx, NowMs(s.clock))
	if err != nil {
		return n, Internal("core.Leases.Sweep", err)
	}
	return n, nil
}

// Sweeper is the background job that expires due leases every interval.
func (s *Leases) Sweeper(interval time.Duration, onErr func(error)) *Loop {
	return &Loop{Name: "core.Leases.Sweeper", Every: interval, OnErr: onErr, Pass: func(ctx context.Context) error {
		_, err := s.Sweep(ctx)
		return err
	}}
}
