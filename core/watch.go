package core

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WatchOnceMax is how many events a once-mode watch replays before closing (v1).
const WatchOnceMax = 1000

// WatchRequest is a subscription to a project's state events.
type WatchRequest struct {
	After      int64  // deliver state events with a greater sequence
	AfterLease string // lease stream id to resume lease events after ("" = from now)
	Once       bool   // replay the backlog (up to WatchOnceMax) and stop
	Key        string // exact state key, or a prefix when it ends in "*"
	AgentID    string
	Leases     bool // also deliver lease events
}

// WatchFrame is one server-sent event.
type WatchFrame struct {
	ID    string // empty for pings and notices
	Event string // state.upsert, state.delete, lease.<type>, ping, compacted
	Data  any
	// JSON is Data already encoded, the same bytes for every watcher of the project (read
	// only); nil when the transport must encode Data itself.
	JSON []byte
	// More says another frame of the same batch follows at once, so a transport may hold this
	// one back and send them together.
	More bool
}

// FeedBatch is what one read of a project's feeds returned.
type FeedBatch struct {
	States []StateEvent
	Leases []LeaseEvent
}

// FeedBounds is where a project's feeds stand, read in one atomic step.
type FeedBounds struct {
	Oldest    int64  // oldest sequence still in the project log (0 if the log is empty)
	Latest    int64  // latest sequence issued
	LeaseHead string // the lease stream's newest id ("0-0" when empty)
}

// FeedStore reads a project's event feeds from the store (never from process memory, so a
// watcher sees writes made through any server replica).
type FeedStore interface {
	// ReadFeed returns up to count state events after afterSeq and, if leases, lease events
	// after afterLease, waiting up to block for the first one (0 = do not wait). Reads that
	// block use a pool of their own, so they never hold a connection ordinary requests need.
	ReadFeed(ctx context.Context, project string, afterSeq int64, afterLease string, leases bool, count int, block time.Duration) (FeedBatch, error)
	// WatchBounds reads the log's oldest and latest sequence and the lease stream's head as
	// of one instant: read apart, a write in between looks like a trimmed log. A latest
	// sequence below one already issued (the store lost writes) is a STORE_RESET error.
	WatchBounds(ctx context.Context, project string) (FeedBounds, error)
}

// Watcher serves watches and waits for changes.
type Watcher struct {
	store     FeedStore
	states    *States
	Heartbeat time.Duration // ping interval on idle streams (v1: 15 s)
	// MaxBlock bounds one blocking store read: a blocked read does not notice its context
	// ending, so this is how long a closed watch can linger on its connection.
	MaxBlock time.Duration

	// base ends every watch and wait when the server shuts down; mu orders entering against
	// Shutdown so that none starts after Shutdown has begun waiting, and guards the counts
	// the watcher caps (limits) apply to.
	base    context.Context
	stopAll context.CancelFunc
	mu      sync.Mutex
	closed  bool
	active  sync.WaitGroup
	limits  Limits
	total   int
	perProj map[string]int
	perCred map[string]int
	hub     feedHub

	Observer Observer // counts open watches and long-polls; nil = not counted
	// Watchers counts the open watch streams per project (GET /api/v1/usage).
	Watchers WatchCounter
}

// NewWatcher builds the service.
func NewWatcher(store FeedStore, states *States) *Watcher {
	base, stop := context.WithCancel(context.Background())
	w := &Watcher{store: store, states: states, Heartbeat: 15 * time.Second, MaxBlock: time.Second, base: base, stopAll: stop,
		limits: states.limits, perProj: map[string]int{}, perCred: map[string]int{}, Watchers: &WatchCount{}}
	w.hub = feedHub{w: w, feeds: map[string]*projectFeed{}}
	return w
}

// rootCredential is whom a watcher counts against: tokens count against the key that minted
// them, so minting children does not multiply the cap.
func rootCredential(p Principal) string { return cmp.Or(p.MintedBy, p.CredentialID) }

// admit applies the watcher caps; w.mu is held.
func (w *Watcher) admit(op string, p Principal) error {
	l := w.limits
	var scope string
	var limit int
	switch {
	case w.total >= l.MaxWatchers:
		return &Error{Op: op, Code: CodeServiceUnavailable, Message: MsgServerWatchesFull,
			Details: map[string]any{"limit": "max_watchers", "max": l.MaxWatchers}}
	case w.perProj[p.ProjectID] >= l.MaxWatchersPerProject:
		scope, limit = "project", l.MaxWatchersPerProject
	case w.perCred[rootCredential(p)] >= l.MaxWatchersPerCredential:
		scope, limit = "credential", l.MaxWatchersPerCredential
	default:
		return nil
	}
	return &Error{Op: op, Code: CodeRateLimited, Message: MsgTooManyWatchers + scope,
		Details: map[string]any{"limit": "max_watchers_per_" + scope, "max": limit}}
}

// enter registers a watch or wait. Its context also ends when the watcher shuts down; leave
// must be called when it returns.
func (w *Watcher) enter(ctx context.Context, op string, p Principal, open Event) (_ context.Context, leave func(), _ error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, nil, &Error{Op: op, Code: CodeServiceUnavailable, Message: MsgShuttingDown}
	}
	if err := w.admit(op, p); err != nil {
		return nil, nil, err
	}
	cred := rootCredential(p)
	w.total++
	w.perProj[p.ProjectID]++
	w.perCred[cred]++
	w.active.Add(1)
	Observe(w.Observer, open, 1)
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(w.base, cancel)
	return ctx, func() {
		unhook()
		cancel()
		w.mu.Lock()
		w.total--
		decr(w.perProj, p.ProjectID)
		decr(w.perCred, cred)
		w.mu.Unlock()
		Observe(w.Observer, open, -1)
		w.active.Done()
	}, nil
}

func decr(m map[string]int, k string) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// Open is how many watches and long-polls are open in this process.
func (w *Watcher) Open() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

// shuttingDown reports whether Shutdown ended the caller's context.
func (w *Watcher) shuttingDown() bool { return w.base.Err() != nil }

// Shutdown ends every watch with a final frame telling the client to reconnect, answers every
// long-poll with the current state, refuses new ones, and waits until all have returned or
// ctx ends.
func (w *Watcher) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.stopAll()
	done := make(chan struct{})
	go func() { w.active.Wait(); w.hub.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return E("core.Watcher.Shutdown", CodeServiceUnavailable, "watches did not end in time")
	}
}

// goodbye is a stream's last frame when the server shuts down: retryable, so clients reconnect
// (to another replica) and resume from the last event id they saw.
func (w *Watcher) goodbye(op string, emit func(WatchFrame) error) error {
	_ = emit(WatchFrame{Event: "error", Data: WireErrorOf(&Error{Op: op, Code: CodeServiceUnavailable, Message: MsgShuttingDown})})
	return nil
}

// ParseWatchCursor reads a Last-Event-ID or ?after= value: "<seq>" or, for watches that include
// leases, "<seq>.<lease stream id>".
func ParseWatchCursor(v string) (int64, string, error) {
	const op = "core.ParseWatchCursor"
	if v == "" {
		return 0, "", nil
	}
	seqPart, leasePart, _ := strings.Cut(v, ".")
	seq, err := strconv.ParseInt(seqPart, 10, 64)
	if err != nil || seq < 0 || seq > MaxCursorSequence || (leasePart != "" && !ValidStreamID(leasePart)) {
		return 0, "", E(op, CodeInvalidCursor, MsgWatchCursor)
	}
	return seq, leasePart, nil
}

func (r WatchRequest) wantsKey(key string) bool {
	return r.Key == "" || KeyPatternMatch(r.Key, key)
}

// watchBatch bounds one read of the feeds.
const watchBatch = 256

// Watch streams the project's events to emit: first the backlog after req.After, then live
// events, in sequence order with no gap and no duplicate. The store, read by the request's own
// cursors, is the source of truth; the project's feed (watchhub.go) wakes the watch and hands
// it batches, used only where they join the cursors. It returns when ctx ends, emit fails, or
// a once-mode replay is done.
func (w *Watcher) Watch(ctx context.Context, p Principal, req WatchRequest, emit func(WatchFrame) error) error {
	const op = "core.Watcher.Watch"
	if err := p.Authorize(OpStateWatch); err != nil {
		return err
	}
	if req.Key != "" {
		if err := validateStateKey(op, strings.TrimSuffix(req.Key, "*")); err != nil && req.Key != "*" {
			return err
		}
	}
	ctx, leave, err := w.enter(ctx, op, p, EventWatchOpen)
	if err != nil {
		return err
	}
	defer leave()
	defer w.Watchers.Opened(p.ProjectID)()
	var sub *feedSub
	if !req.Once {
		var unsub func()
		if sub, unsub, err = w.hub.subscribe(op, p.ProjectID); err != nil {
			return err
		}
		defer unsub()
	}
	bounds, err := w.store.WatchBounds(ctx, p.ProjectID)
	if err != nil {
		return Internal(op, err)
	}
	// "From now" must be fixed before the opening ping: a client that has seen the ping may
	// act at once, and its lease events must not fall between the ping and this read.
	if req.Leases && req.AfterLease == "" {
		req.AfterLease = bounds.LeaseHead
	}
	// The stream opens with a ping, so a client knows it is subscribed before any event.
	if err := emit(WatchFrame{Event: "ping", Data: struct{}{}}); err != nil {
		return err
	}
	// A resume point past the head was never issued by this log (or the store lost writes):
	// waiting for it would wait silently, possibly forever.
	if req.After > bounds.Latest || (req.Leases && compareStreamID(req.AfterLease, bounds.LeaseHead) > 0) {
		return emit(WatchFrame{Event: "error", Data: WireErrorOf(&Error{Op: op, Code: CodeInvalidCursor, Message: MsgCursorAhead,
			Details: map[string]any{"requested_after": req.cursor(), "latest_sequence": bounds.Latest}})})
	}
	// The log is dense (one entry per sequence), so a hole before the resume point means it
	// was trimmed: say so instead of skipping silently.
	if oldest, latest := bounds.Oldest, bounds.Latest; req.After < latest && (oldest == 0 || oldest > req.After+1) {
		from := max(oldest-1, req.After)
		if oldest == 0 {
			from = latest
		}
		if err := emit(WatchFrame{Event: "compacted", Data: map[string]int64{
			"requested_after": req.After, "resume_after": from, "latest_sequence": latest,
		}}); err != nil {
			return err
		}
		req.After = from
	}
	sent := 0
	lastFrame := time.Now()
	send := func(b FeedBatch, shared *sharedFrames) (done bool, _ error) {
		fs := w.frames(p, &req, b, shared)
		for i, f := range fs {
			f.More = i < len(fs)-1
			if err := emit(f); err != nil {
				return true, err
			}
			lastFrame = time.Now()
			if sent++; req.Once && sent >= WatchOnceMax {
				return true, nil
			}
		}
		return false, nil
	}
	caughtUp := false
	for {
		if ctx.Err() != nil {
			if w.shuttingDown() {
				return w.goodbye(op, emit)
			}
			return nil
		}
		if time.Since(lastFrame) >= w.Heartbeat {
			if err := emit(WatchFrame{Event: "ping", Data: struct{}{}}); err != nil {
				return err
			}
			lastFrame = time.Now()
		}
		if !caughtUp {
			batch, err := w.store.ReadFeed(ctx, p.ProjectID, req.After, req.AfterLease, req.Leases && !req.Once, watchBatch, 0)
			if err != nil {
				if ctx.Err() != nil {
					continue // the loop's first check says why
				}
				// A failover or restart: the cursor is ours, so reading again from it later
				// loses and repeats nothing. Meanwhile the pings keep the stream open.
				if err = Internal(op, err); err.(*Error).Code != CodeStoreUnavailable || req.Once {
					return err
				}
				pauseForStore(ctx)
				continue
			}
			if len(batch.States)+len(batch.Leases) == 0 {
				if req.Once {
					return nil
				}
				caughtUp = true
				continue
			}
			if done, err := send(batch, nil); done || err != nil {
				return err
			}
			continue
		}
		hb, got, resync := sub.wait(ctx, w.Heartbeat-time.Since(lastFrame))
		switch {
		case resync:
			caughtUp = false
		case !got:
		case hb.After > req.After || (req.Leases && compareStreamID(hb.AfterLease, req.AfterLease) > 0):
			caughtUp = false // the batch starts past our cursor: what lies between is in the store
		default:
			if _, err := send(hb.FeedBatch, hb.shared); err != nil {
				return err
			}
		}
	}
}

// frames turns a batch into frames, merged by time, advancing the request's cursors past
// the events it has not seen yet. A hub batch's frames carry the JSON its subscribers share
// (shared); a batch the watch read itself (shared nil) is encoded by the transport.
func (w *Watcher) frames(p Principal, req *WatchRequest, b FeedBatch, shared *sharedFrames) []WatchFrame {
	var out []WatchFrame
	i, j := 0, 0
	for i < len(b.States) || j < len(b.Leases) {
		if j >= len(b.Leases) || (i < len(b.States) && b.States[i].CreatedAt <= b.Leases[j].At) {
			ev := b.States[i]
			i++
			if ev.Sequence <= req.After {
				continue // a feed batch overlapping what this watch already read
			}
			req.After = ev.Sequence
			if !req.wantsKey(ev.StateKey) || !p.CanTouch(ev.StateKey) || (req.AgentID != "" && ev.AgentID != req.AgentID) {
				continue
			}
			f := WatchFrame{ID: req.cursor(), Event: "state." + ev.EventType, Data: ev}
			if shared != nil {
				f.JSON = shared.states[i-1].get(ev)
			}
			out = append(out, f)
			continue
		}
		ev := b.Leases[j]
		j++
		if !req.Leases || compareStreamID(ev.ID, req.AfterLease) <= 0 {
			continue
		}
		req.AfterLease = ev.ID
		if !req.wantsKey(ev.StateKey) || !p.CanTouch(ev.StateKey) {
			continue
		}
		shown := p.ShownLeaseEvent(ev)
		f := WatchFrame{ID: req.cursor(), Event: "lease." + ev.Type, Data: shown}
		if shared != nil {
			form := 0
			if shown.LeaseID != ev.LeaseID {
				form = 1
			}
			f.JSON = shared.leases[form][j-1].get(shown)
		}
		out = append(out, f)
	}
	return out
}

func (r WatchRequest) cursor() string {
	if r.Leases {
		return fmt.Sprintf("%d.%s", r.After, r.AfterLease)
	}
	return strconv.FormatInt(r.After, 10)
}

// WaitResult is the outcome of waiting for a state to change.
type WaitResult struct {
	Changed bool   `json:"changed" jsonschema_description:"True when the version moved past after_version before the timeout."`
	Deleted bool   `json:"deleted" jsonschema_description:"True when the state does not exist (deleted or never written)."`
	State   *State `json:"state" jsonschema:"oneof_type=object;null" jsonschema_description:"The current state; null when deleted or missing."`
	Version int64  `json:"version" jsonschema_description:"The key's current version (deletes count); wait again with after_version = this."`
}

// WaitMax bounds a long-poll.
const WaitMax = 60 * time.Second

// WaitForChange returns as soon as the key's version exceeds afterVersion, or its current state
// once wait has passed.
func (w *Watcher) WaitForChange(ctx context.Context, p Principal, key string, afterVersion int64, wait time.Duration) (WaitResult, error) {
	const op = "core.Watcher.WaitForChange"
	if err := p.Authorize(OpStateWait); err != nil {
		return WaitResult{}, err
	}
	if err := validateStateKey(op, key); err != nil {
		return WaitResult{}, err
	}
	if err := p.RequireResource(op, key); err != nil {
		return WaitResult{}, err
	}
	if afterVersion < 0 || wait < 0 || wait > WaitMax {
		return WaitResult{}, BadRequest(op, "wait_ms", fmt.Sprintf("wait must be 0..%d ms and the version >= 0", WaitMax.Milliseconds()))
	}
	// Reads use ctx; only the blocking wait also ends on shutdown, which answers with the state.
	wctx, leave, err := w.enter(ctx, op, p, EventLongPollOpen)
	if err != nil {
		return WaitResult{}, err
	}
	defer leave()
	// Subscribed before the first read, so a change after that read wakes us.
	sub, unsub, err := w.hub.subscribe(op, p.ProjectID)
	if err != nil {
		return WaitResult{}, err
	}
	defer unsub()
	deadline := time.Now().Add(wait)
	for {
		evs, err := w.states.store.StateEventsAt(ctx, p.ProjectID, []string{key}, 0, 0)
		if err != nil {
			return WaitResult{}, Internal(op, err)
		}
		res := waitResult(evs[0], afterVersion)
		left := time.Until(deadline)
		if res.Changed || left <= 0 || w.shuttingDown() {
			return res, nil
		}
		// The feed's batches carry the events themselves: one newer than what we read is the
		// answer, with no read of our own (so a write wakes n long-polls without n reads).
		// Read again only when the feed may have missed something (resync).
		for wctx.Err() == nil && time.Until(deadline) > 0 {
			hb, got, resync := sub.wait(wctx, time.Until(deadline))
			if resync {
				break
			}
			if ev := lastEventOf(hb.States, key); got && ev != nil && ev.Version > afterVersion {
				return waitResult(ev, afterVersion), nil
			}
		}
	}
}

func lastEventOf(evs []StateEvent, key string) *StateEvent {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].StateKey == key {
			return &evs[i]
		}
	}
	return nil
}

// waitResult is a long-poll's answer when the key's latest event is ev (nil: none).
func waitResult(ev *StateEvent, afterVersion int64) WaitResult {
	res := WaitResult{Deleted: true}
	if ev != nil {
		res.Version = ev.Version
		res.Changed = ev.Version > afterVersion
		if ev.EventType == EventUpsert {
			st := ev.State()
			res.State, res.Deleted = &st, false
		}
	}
	return res
}

// storeRetryPause is how long a watch or long-poll waits before reading again after the store
// was unavailable: short against a failover's seconds, long enough not to spin.
const storeRetryPause = 250 * time.Millisecond

func pauseForStore(ctx context.Context) {
	t := time.NewTimer(storeRetryPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
