package core

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The watch hub: one reader per watched project per process. Every watch and long-poll of a
// project subscribes to the project's feed; the feed's goroutine blocks on the store (the only
// blocking read this process makes for the project, on the store's blocking-read pool) and
// hands each batch it reads to every subscriber's bounded buffer. A subscriber that is behind,
// or whose buffer is full, reads the store itself by its own cursor without blocking, so the
// hub is a shortcut and never the source of truth: a batch is used only when it starts at or
// before the subscriber's cursor (no gap), and events at or before the cursor are skipped (no
// duplicate).
//
// A batch is encoded once for all its subscribers (sharedFrames): what a watcher does per
// event is filter it, append the frame's bytes and write them.

// hubBuffer is how many batches a subscriber may have pending before the hub stops handing it
// batches and tells it to read the store instead.
const hubBuffer = 16

// hubBatch is one read of a project's feeds: the events after the cursors (After, AfterLease)
// the hub read from.
type hubBatch struct {
	After      int64
	AfterLease string
	FeedBatch
	shared *sharedFrames // the batch's frame data, encoded at most once for every subscriber
}

// sharedFrames holds the JSON of a hub batch's events, each encoded on first use by whichever
// subscriber emits it first and then handed as the same bytes to every other. A lease event
// is shown in one of two forms (with or without its lease id, Principal.ShownLeaseEvent), so
// it has a slot for each.
type sharedFrames struct {
	states []onceJSON
	leases [2][]onceJSON // [0] as stored, [1] with the lease id hidden
}

func newSharedFrames(b FeedBatch) *sharedFrames {
	return &sharedFrames{states: make([]onceJSON, len(b.States)),
		leases: [2][]onceJSON{make([]onceJSON, len(b.Leases)), make([]onceJSON, len(b.Leases))}}
}

// onceJSON is one value's JSON, encoded once; nil if it failed to encode (the transport then
// encodes the value itself and reports the error).
type onceJSON struct {
	once sync.Once
	b    []byte
}

func (o *onceJSON) get(v any) []byte {
	o.once.Do(func() { o.b, _ = json.Marshal(v) })
	return o.b
}

type feedSub struct {
	ch     chan hubBatch
	resync chan struct{} // a batch was dropped, or the feed (re)started: read the store
}

type projectFeed struct {
	subs map[*feedSub]struct{}
}

type feedHub struct {
	w     *Watcher
	mu    sync.Mutex
	feeds map[string]*projectFeed
	wg    sync.WaitGroup // running feeds; Shutdown waits for them
}

// subscribe joins the project's feed, starting it if none runs. Subscribe before reading the
// store: every event after that read is then in a batch, or the subscriber is told to resync.
func (h *feedHub) subscribe(op, project string) (*feedSub, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.feeds[project]
	if f == nil {
		if len(h.feeds) >= h.w.limits.MaxWatchedProjects {
			return nil, nil, &Error{Op: op, Code: CodeServiceUnavailable, Message: MsgServerWatchesFull,
				Details: map[string]any{"limit": "max_watched_projects", "max": h.w.limits.MaxWatchedProjects}}
		}
		f = &projectFeed{subs: map[*feedSub]struct{}{}}
		h.feeds[project] = f
		h.wg.Go(func() { h.run(project, f) })
	}
	s := &feedSub{ch: make(chan hubBatch, hubBuffer), resync: make(chan struct{}, 1)}
	f.subs[s] = struct{}{}
	return s, func() {
		h.mu.Lock()
		delete(f.subs, s)
		h.mu.Unlock()
	}, nil
}

// run follows one project's feeds until it has no subscriber (checked after every read, so a
// feed outlives its last subscriber by at most one blocking read, MaxBlock).
func (h *feedHub) run(project string, f *projectFeed) {
	ctx := h.w.base
	started, failing := false, false
	var seq int64
	var lease string
	for {
		h.mu.Lock()
		if len(f.subs) == 0 || ctx.Err() != nil {
			delete(h.feeds, project)
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		if !started {
			b, err := h.w.store.WatchBounds(ctx, project)
			if err != nil {
				h.failed(f, &failing)
				continue
			}
			seq, lease, started = b.Latest, b.LeaseHead, true
			// Subscribers that caught up before this cursor was fixed may have missed events
			// between their read and it.
			h.resyncAll(f)
		}
		batch, err := h.w.store.ReadFeed(ctx, project, seq, lease, true, watchBatch, h.w.MaxBlock)
		if err != nil {
			h.failed(f, &failing)
			continue
		}
		failing = false
		if len(batch.States)+len(batch.Leases) == 0 {
			// Idle: have the store check the log did not go backwards under us (data lost),
			// where waiting for the next sequence after ours would wait forever. It answers
			// STORE_RESET then, which every subscriber, sent to read the store, ends with.
			if _, err := h.w.store.WatchBounds(ctx, project); err != nil {
				h.failed(f, &failing)
			}
			continue
		}
		hb := hubBatch{After: seq, AfterLease: lease, FeedBatch: batch, shared: newSharedFrames(batch)}
		if n := len(batch.States); n > 0 {
			seq = batch.States[n-1].Sequence
		}
		if n := len(batch.Leases); n > 0 {
			lease = batch.Leases[n-1].ID
		}
		h.deliver(f, hb)
	}
}

// deliver hands hb to every subscriber without ever waiting on one: a full buffer drops the
// batch for that subscriber and tells it to read the store.
func (h *feedHub) deliver(f *projectFeed, hb hubBatch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range f.subs {
		select {
		case s.ch <- hb:
		default:
			signal(s.resync)
		}
	}
}

// failed handles a failed feed read: the first failure of a run sends every subscriber to
// read the store itself, whose error then reaches it (an outage keeps it waiting with pings;
// STORE_RESET ends it). Later failures do not, so an outage does not make every watcher
// hammer the store. The feed keeps its cursor and reads on after a pause.
func (h *feedHub) failed(f *projectFeed, failing *bool) {
	if !*failing {
		*failing = true
		h.resyncAll(f)
	}
	pauseForStore(h.w.base)
}

func (h *feedHub) resyncAll(f *projectFeed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range f.subs {
		signal(s.resync)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// compareStreamID orders Redis stream ids ("<ms>-<seq>"); both must be valid.
func compareStreamID(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if x == y {
		x, _ = strconv.ParseUint(as, 10, 64)
		y, _ = strconv.ParseUint(bs, 10, 64)
	}
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// wait blocks until the subscriber has something to look at, d passes or ctx ends.
func (s *feedSub) wait(ctx context.Context, d time.Duration) (hb hubBatch, got, resync bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case hb = <-s.ch:
		return hb, true, false
	case <-s.resync:
		return hubBatch{}, false, true
	case <-t.C:
	case <-ctx.Done():
	}
	return hubBatch{}, false, false
}
