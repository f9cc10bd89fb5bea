package core

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
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

// Lease is v1's lease object plus its status and the agent of the credential that took it.
// ID is left out for a reader who may not use the lease (see Principal.MayUseLease).
type Lease struct {
	ID           string `json:"id,omitempty" jsonschema_description:"The lease id; shown only to the credential that acquired the lease, its delegation ancestors and full-access keys."`
	StateKey     string `json:"state_key"`
	Holder       string `json:"holder"`
	AgentID      string `json:"agent_id,omitempty" jsonschema_description:"The agent the acquiring credential is bound to, if any."`
	FencingToken int64  `json:"fencing_token" jsonschema_description:"Strictly increasing per key; pass it on state writes (fencing_token) and to your own storage."`
	ExpiresAt    int64  `json:"expires_at"`
	CreatedAt    int64  `json:"created_at"`
	RenewedAt    int64  `json:"renewed_at"`
	Status       string `json:"status" jsonschema:"enum=active,enum=released,enum=expired"`
	RequestID    string `json:"-"`
	// OwnerChain is the acquiring credential's delegation ancestors followed by itself.
	OwnerChain []string `json:"-"`
}

// LeaseEvent is one lease transition.
type LeaseEvent struct {
	ID           string   `json:"id" jsonschema_description:"Stream id; pass as after to read on."`
	Type         string   `json:"type" jsonschema:"enum=acquired,enum=renewed,enum=released,enum=expired"`
	LeaseID      string   `json:"lease_id,omitempty" jsonschema_description:"Shown only to those who may use the lease."`
	StateKey     string   `json:"state_key"`
	Holder       string   `json:"holder"`
	AgentID      string   `json:"agent_id,omitempty"`
	FencingToken int64    `json:"fencing_token"`
	At           int64    `json:"at"`
	OwnerChain   []string `json:"-"`
}

// AcquireLease is the body of POST /api/v1/states/{state_key}/lease.
type AcquireLease struct {
	Holder    string `json:"holder,omitempty" jsonschema:"maxLength=255" jsonschema_description:"Who holds the lease (informational); defaults to the agent the credential is bound to."`
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

// LeaseWaiter is one acquire waiting for a key (wait_ms). Its attempt id is the id of the lease
// it will get, so, like a lease id, it is not shown.
type LeaseWaiter struct {
	Position   int    `json:"position" jsonschema_description:"1 is served next."`
	Holder     string `json:"holder"`
	AgentID    string `json:"agent_id,omitempty" jsonschema_description:"The agent the waiting credential is bound to, if any."`
	WaitsUntil int64  `json:"waits_until" jsonschema_description:"Unix ms at which the waiter gives up (the store's clock)."`
}

// LeaseWaiterList is the queue on one key, front first.
type LeaseWaiterList struct {
	Data []LeaseWaiter `json:"data"`
}

// maxWaitersShown bounds one read of a key's queue.
const maxWaitersShown = 100

// LeaseAttempt is one acquire attempt. Its ID is the id of the lease it grants and of the
// waiter it queues, so a retried attempt is recognised.
type LeaseAttempt struct {
	ID, Key, Holder, AgentID, RequestID string
	OwnerChain                          []string
	TTLMs, NowMs                        int64
	WaitLeftMs                          int64 // > 0: join (or stay in) the key's queue if refused
	// Admission, when set, is the deferred admission the store checks first, in the same step
	// (admission.go): only a request's first attempt carries it.
	Admission *AdmissionCheck
}

// LeaseAttemptResult is what an attempt got: the lease, or what stands in the way.
type LeaseAttemptResult struct {
	Granted bool
	Lease   Lease  // when granted
	Current *Lease // when refused by a live lease: its holder, agent, token and expiry
	// WakeIn is when the situation can change without a wake-up: the live lease's expiry, or
	// the deadline of the waiter ahead.
	WakeIn time.Duration
}

// LeaseStore is what the Leases service needs from storage. Every transition is one atomic
// store step; those that take a request id answer a retry of themselves like the first call.
type LeaseStore interface {
	// AcquireLease makes one attempt: expire a due lease, keep FIFO order, grant, or queue.
	AcquireLease(ctx context.Context, project string, a LeaseAttempt) (LeaseAttemptResult, error)
	// LeaveLeaseQueue ends attempt id: it leaves the queue, and a lease it was granted after
	// all is released (and the next waiter woken).
	LeaveLeaseQueue(ctx context.Context, project, key, id string, now int64) error
	// LeaseWakes signals when attempt id should look again (it reached the front of a free
	// key), whichever replica freed the key. stop unregisters.
	LeaseWakes(ctx context.Context, id string) (wake <-chan struct{}, stop func(), err error)
	// RenewLease and EndLease check adm first, when set (the deferred admission, admission.go).
	RenewLease(ctx context.Context, project string, l Lease, ttlMs, now int64, requestID string, adm *AdmissionCheck) (Lease, error)
	// EndLease releases l, or with how = LeaseExpired expires it if due; false: nothing to end.
	EndLease(ctx context.Context, project string, l Lease, now int64, how, requestID string, adm *AdmissionCheck) (bool, error)
	Lease(ctx context.Context, project, id string) (*Lease, error)
	LeaseOnKey(ctx context.Context, project, key string) (*Lease, error)
	ActiveLeases(ctx context.Context, project string, after string, limit int) ([]Lease, error)
	// LeaseWaiters lists the first limit live waiters on key, in the order they will be served.
	LeaseWaiters(ctx context.Context, project, key string, limit int) ([]LeaseWaiter, error)
	LeaseEvents(ctx context.Context, project, after string, limit int) ([]LeaseEvent, error)
	// SweepExpired ends every due lease in every project and reports how many.
	SweepExpired(ctx context.Context, now int64) (int, error)
	// LeadJob reports whether this replica runs the named background job for the next ttl;
	// at most one replica does at a time.
	LeadJob(ctx context.Context, job string, ttl time.Duration) (bool, error)
}

// Leases is the Leases service.
type Leases struct {
	store LeaseStore
	clock Clock
	// Observer counts grants, hand-offs, conflicts, releases, expiries and waiters; nil = not counted.
	Observer Observer
	// known holds what never changes about a lease once granted (see lease_owner.go's
	// remember), so renewing or releasing a lease this replica has seen is one store step.
	known *lru.Cache[leaseRef, Lease]
}

// leaseRef names a lease: ids are unique only within a project.
type leaseRef struct{ project, id string }

// maxKnownLeases bounds the leases Leases remembers (a few hundred bytes each); released
// leases are forgotten at once, so this is about leases held or left to expire.
const maxKnownLeases = 100_000

// NewLeases builds the service.
func NewLeases(store LeaseStore, clock Clock) *Leases {
	known, _ := lru.New[leaseRef, Lease](maxKnownLeases) // errs only for size <= 0
	return &Leases{store: store, clock: clock, known: known}
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
// failing with LEASE_CONFLICT: a release or expiry wakes the waiter at the front at once, on
// any replica. Each attempt is one store step; an attempt abandoned midway (deadline,
// cancelled request, store error) leaves the queue and gives back a lease it was granted.
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
		return Lease{}, BadRequest(op, "holder", "holder is required (1..255 characters) unless the credential is bound to an agent")
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
	a := LeaseAttempt{
		ID: NewID(), Key: key, Holder: in.Holder, AgentID: p.AgentID, RequestID: in.RequestID,
		OwnerChain: p.leaseChain(), TTLMs: ttl,
	}
	var wake <-chan struct{}
	if wait > 0 {
		// Registered before the first attempt, so a wake-up sent right after it joins the
		// queue is not missed.
		w, stop, err := s.store.LeaseWakes(ctx, a.ID)
		if err != nil {
			return Lease{}, Internal(op, err)
		}
		defer stop()
		wake = w
	}
	deadline := time.Now().Add(time.Duration(wait) * time.Millisecond)
	for waited := false; ; waited = true {
		a.NowMs = NowMs(s.clock)
		if left := time.Until(deadline); left > 0 {
			// The queue's own deadline outlives ours a little, so a waiter still trying is
			// never dropped as dead.
			a.WaitLeftMs = left.Milliseconds() + waiterGraceMs
		} else {
			a.WaitLeftMs = 0
		}
		a.Admission = p.admissionCheck()
		res, err := s.store.AcquireLease(ctx, p.ProjectID, a)
		again, refusal := p.checked(ctx, a.Admission, err)
		if refusal != nil {
			return Lease{}, refusal // nothing was written: no queue to leave
		}
		if again != nil {
			return s.Acquire(ctx, *again, key, in)
		}
		if err != nil {
			s.abandon(ctx, p.ProjectID, a)
			return Lease{}, Internal(op, err)
		}
		if res.Granted {
			s.remember(p.ProjectID, res.Lease)
			if waited {
				Observe(s.Observer, EventLeaseHandoff, 1)
			} else {
				Observe(s.Observer, EventLeaseGranted, 1)
			}
			return res.Lease, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			if wait > 0 {
				s.abandon(ctx, p.ProjectID, a)
			}
			Observe(s.Observer, EventLeaseConflict, 1)
			return Lease{}, leaseConflict(op, res.Current)
		}
		if !waited {
			Observe(s.Observer, EventLeaseWaiting, 1)
			defer Observe(s.Observer, EventLeaseWaiting, -1)
		}
		next := left
		if res.WakeIn > 0 && res.WakeIn < next {
			next = res.WakeIn
		}
		t := time.NewTimer(next)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.abandon(ctx, p.ProjectID, a)
			return Lease{}, Internal(op, ctx.Err())
		}
		t.Stop()
	}
}

// waiterGraceMs is how long past its caller's deadline a waiter stays in the queue: the time
// for the final attempt at the deadline and its leave to arrive.
const waiterGraceMs = 1000

// abandon makes a given-up attempt leave no trace: out of the queue, its lease (if the store
// granted one whose answer never reached us) released. It runs even when ctx is cancelled.
func (s *Leases) abandon(ctx context.Context, project string, a LeaseAttempt) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.store.LeaveLeaseQueue(ctx, project, a.Key, a.ID, NowMs(s.clock))
}

// leaseConflict is v1's 409 for a held key, naming who holds it when someone does.
func leaseConflict(op string, cur *Lease) error {
	e := &Error{Op: op, Code: CodeLeaseConflict, Message: MsgLeaseHeld}
	if cur != nil {
		e.Details = map[string]any{"holder": cur.Holder, "fencing_token": cur.FencingToken, "expires_at": cur.ExpiresAt}
	}
	return e
}

// load finds a lease for renew or release: only those who may use it get past here. What it
// checks (the key, the owner chain) never changes, so a lease this replica remembers costs no
// read: the transition's script reads the record once, for what does change (status, expiry).
// Only the unchanging fields of the lease it returns are to be trusted.
func (s *Leases) load(ctx context.Context, op string, p Principal, id string) (Lease, error) {
	l, ok := s.known.Get(leaseRef{p.ProjectID, id})
	if !ok {
		var err error
		if l, err = s.read(ctx, op, p, id); err != nil {
			return Lease{}, err
		}
	} else if err := p.RequireResource(op, l.StateKey); err != nil {
		return Lease{}, err
	}
	if !p.MayUseLease(l) {
		return Lease{}, E(op, CodeForbidden, MsgLeaseNotYours)
	}
	return l, nil
}

// remember keeps what never changes about a granted lease l: key, holder, agent, fencing
// token, creation, request id, owner chain. Expiry and status are left out: only the store
// knows them.
func (s *Leases) remember(project string, l Lease) {
	l.ExpiresAt, l.RenewedAt, l.Status = 0, 0, ""
	s.known.Add(leaseRef{project, l.ID}, l)
}

// read reads a lease any reader of its key may see.
func (s *Leases) read(ctx context.Context, op string, p Principal, id string) (Lease, error) {
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
	s.remember(p.ProjectID, *l)
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
	l, err := s.load(ctx, op, p, id)
	if err != nil {
		return Lease{}, err
	}
	adm := p.admissionCheck()
	l, err = s.store.RenewLease(ctx, p.ProjectID, l, ttl, NowMs(s.clock), NewID(), adm)
	if again, refusal := p.checked(ctx, adm, err); refusal != nil {
		return Lease{}, refusal
	} else if again != nil {
		return s.Renew(ctx, *again, id, in)
	}
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
	l, err := s.load(ctx, op, p, id)
	if err != nil {
		return err
	}
	adm := p.admissionCheck()
	ok, err := s.store.EndLease(ctx, p.ProjectID, l, NowMs(s.clock), LeaseReleased, NewID(), adm)
	if again, refusal := p.checked(ctx, adm, err); refusal != nil {
		return refusal
	} else if again != nil {
		return s.Release(ctx, *again, id)
	}
	if err != nil {
		return Internal(op, err)
	}
	s.known.Remove(leaseRef{p.ProjectID, id}) // a second release is answered by the store
	if !ok {
		return E(op, CodeNotFound, MsgLeaseNotFound)
	}
	Observe(s.Observer, EventLeaseReleased, 1)
	return nil
}

// Get returns a lease by id, whatever its status.
func (s *Leases) Get(ctx context.Context, p Principal, id string) (Lease, error) {
	const op = "core.Leases.Get"
	if err := p.Authorize(OpLeaseGet); err != nil {
		return Lease{}, err
	}
	l, err := s.read(ctx, op, p, id)
	return s.shown(p, l), err
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
	return s.shown(p, *l), nil
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
			page.Data = append(page.Data, s.shown(p, l))
		}
	}
	page.Pagination.Limit = len(page.Data)
	if len(ls) > limit {
		c := ls[limit-1].ID
		page.Pagination.NextCursor = &c
	}
	return page, nil
}

// Waiters lists who queues for key (acquires with wait_ms), front first, up to 100.
func (s *Leases) Waiters(ctx context.Context, p Principal, key string) (LeaseWaiterList, error) {
	const op = "core.Leases.Waiters"
	if err := p.Authorize(OpLeaseWaiters); err != nil {
		return LeaseWaiterList{}, err
	}
	if err := validateStateKey(op, key); err != nil {
		return LeaseWaiterList{}, err
	}
	if err := p.RequireResource(op, key); err != nil {
		return LeaseWaiterList{}, err
	}
	ws, err := s.store.LeaseWaiters(ctx, p.ProjectID, key, maxWaitersShown)
	if err != nil {
		return LeaseWaiterList{}, Internal(op, err)
	}
	return LeaseWaiterList{Data: append([]LeaseWaiter{}, ws...)}, nil
}

// ValidStreamID reports whether s is a Redis stream id "<ms>-<seq>" that Redis will accept as a
// range bound: both parts decimal and within uint64 (a longer number is a Redis error, not a page).
func ValidStreamID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok || ms == "" || seq == "" || ms[0] == '+' || seq[0] == '+' {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// Events pages through the project's lease transitions, oldest first.
func (s *Leases) Events(ctx context.Context, p Principal, after string, limit int) (LeaseEventPage, error) {
	const op = "core.Leases.Events"
	if err := p.Authorize(OpLeaseEvents); err != nil {
		return LeaseEventPage{}, err
	}
	if after != "" && !ValidStreamID(after) {
		return LeaseEventPage{}, E(op, CodeInvalidCursor, MsgStreamIDCursor)
	}
	limit = ClampLimit(limit, 50, 500)
	evs, err := s.store.LeaseEvents(ctx, p.ProjectID, after, limit)
	if err != nil {
		return LeaseEventPage{}, Internal(op, err)
	}
	page := LeaseEventPage{Data: []LeaseEvent{}, Pagination: Pagination{Limit: len(evs)}}
	for _, e := range evs {
		if p.CanTouch(e.StateKey) {
			page.Data = append(page.Data, p.ShownLeaseEvent(e))
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
	Observe(s.Observer, EventLeaseExpired, n)
	if err != nil {
		return n, Internal("core.Leases.Sweep", err)
	}
	return n, nil
}

// Sweeper is the background job that expires due leases every interval. Replicas take turns
// through the store's job lead, so one sweep runs per interval however many replicas run it.
func (s *Leases) Sweeper(interval time.Duration, onErr func(error)) *Loop {
	return &Loop{Name: "core.Leases.Sweeper", Every: interval, OnErr: onErr, Pass: func(ctx context.Context) error {
		lead, err := s.store.LeadJob(ctx, "lease-sweep", interval)
		if err != nil || !lead {
			return err
		}
		_, err = s.Sweep(ctx)
		return err
	}}
}
