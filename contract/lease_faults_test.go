package contract

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// faultHook counts the client's round trips (a command or a pipeline is one) and can break one
// of them: before it is sent (the store never sees it) or after (the store ran it, the reply is
// lost). Blocking pub/sub reads are not round trips of a request and are not counted.
type faultHook struct {
	mu     sync.Mutex
	trips  int
	failAt int  // 1-based round trip to break; 0 = none
	lose   bool // run it, then lose the reply
}

var errInjected = errors.New("injected fault")

func (h *faultHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *faultHook) step() (fail, lose bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trips++
	return h.trips == h.failAt, h.lose
}

func (h *faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		fail, lose := h.step()
		if !fail {
			return next(ctx, cmd)
		}
		if lose {
			_ = next(ctx, cmd)
		}
		cmd.SetErr(errInjected)
		return errInjected
	}
}

func (h *faultHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		fail, lose := h.step()
		if !fail {
			return next(ctx, cmds)
		}
		if lose {
			_ = next(ctx, cmds)
		}
		for _, c := range cmds {
			c.SetErr(errInjected)
		}
		return errInjected
	}
}

func (h *faultHook) set(failAt int, lose bool) {
	h.mu.Lock()
	h.trips, h.failAt, h.lose = 0, failAt, lose
	h.mu.Unlock()
}

func (h *faultHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.trips
}

// hookedApp is an App over its own client to e's server, with h on that client, and a project
// (created through an unhooked App so setup is not counted).
func hookedApp(t *testing.T, e *testenv.Env, h *faultHook) (*app.App, testenv.Project) {
	t.Helper()
	// a broken round trip must not be healed by go-redis behind our back: MaxRetries -1
	var rdb redis.UniversalClient
	switch {
	case e.Mini != nil:
		rdb = redis.NewClient(&redis.Options{Addr: e.Mini.Addr(), MaxRetries: -1})
	case e.Name == "cluster":
		opts, err := redis.ParseClusterURL(testenv.ClusterURL())
		require.NoError(t, err)
		opts.MaxRetries = -1
		rdb = redis.NewClusterClient(opts)
	default:
		opts, err := redis.ParseURL(testenv.RedisURL())
		require.NoError(t, err)
		opts.MaxRetries = -1
		rdb = redis.NewClient(opts)
	}
	rdb.AddHook(h)
	st := redisstore.New(rdb)
	t.Cleanup(func() {
		_ = st.Close()
		_ = rdb.Close()
	})
	p := testenv.NewProject(t, e.App(t))
	return app.New(st, e.Clock, core.DefaultLimits()), p
}

// TestLeaseRoundTrips counts the client's round trips per transition after authentication:
// each is one script (acquire's pipelined with the sweeper's SADD). Renew and release check
// the lease's key and owner chain, which never change, against what this replica remembers of
// the lease; one acquired on another replica costs one read of its record the first time. A
// refused acquire with wait_ms=0 draws no waiter number; one that waits and gives up is its
// attempts and one leave.
func TestLeaseRoundTrips(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		h := &faultHook{}
		a, p := hookedApp(t, e, h)
		other := e.App(t) // another replica over the same store
		ctx := context.Background()
		// Load the scripts first: a server's first EVALSHA of a script costs one EVAL more.
		wait := int64(1)
		l, err := a.Leases.Acquire(ctx, p.P, "warm", core.AcquireLease{Holder: "h"})
		require.NoError(t, err)
		_, err = a.Leases.Acquire(ctx, p.P, "warm", core.AcquireLease{Holder: "w", WaitMs: &wait})
		require.True(t, core.IsCode(err, core.CodeLeaseConflict), "%v", err)
		_, err = a.Leases.Renew(ctx, p.P, l.ID, core.RenewLease{})
		require.NoError(t, err)
		require.NoError(t, a.Leases.Release(ctx, p.P, l.ID))
		// And dial both of go-redis's pools (scripts go out as pipelines, which have a pool of
		// their own; the record read below is a single command): a dial's set-up commands are
		// not the transition's.
		ow, err := other.Leases.Acquire(ctx, p.P, "warm", core.AcquireLease{Holder: "h"})
		require.NoError(t, err)
		_, err = a.Leases.Renew(ctx, p.P, ow.ID, core.RenewLease{})
		require.NoError(t, err)
		require.NoError(t, a.Leases.Release(ctx, p.P, ow.ID))

		h.set(0, false)
		l, err = a.Leases.Acquire(ctx, p.P, "k", core.AcquireLease{Holder: "h"})
		require.NoError(t, err)
		assert.Equal(t, 1, h.count(), "round trips per acquire")
		h.set(0, false)
		renewed, err := a.Leases.Renew(ctx, p.P, l.ID, core.RenewLease{})
		require.NoError(t, err)
		assert.Equal(t, 1, h.count(), "round trips per renew")
		got, err := other.Leases.Get(ctx, p.P, l.ID)
		require.NoError(t, err)
		assert.Equal(t, got, renewed, "a renew answers the whole lease")

		waiterSeq := func() int {
			seq, err := e.Rdb.Get(ctx, fmt.Sprintf("as:{%s}:leasew-seq", p.ID)).Int()
			if !errors.Is(err, redis.Nil) {
				require.NoError(t, err)
			}
			return seq
		}
		seq := waiterSeq()
		h.set(0, false)
		_, err = a.Leases.Acquire(ctx, p.P, "k", core.AcquireLease{Holder: "other"})
		require.True(t, core.IsCode(err, core.CodeLeaseConflict), "%v", err)
		assert.Equal(t, 1, h.count(), "round trips per refused acquire")
		assert.Equal(t, seq, waiterSeq(), "a refused acquire without wait_ms draws no waiter number")

		h.set(0, false)
		wait = 200 // the lease's expiry is far, so nothing but the deadline wakes the waiter
		_, err = a.Leases.Acquire(ctx, p.P, "k", core.AcquireLease{Holder: "waits", WaitMs: &wait})
		require.True(t, core.IsCode(err, core.CodeLeaseConflict), "%v", err)
		assert.Equal(t, 3, h.count(), "round trips of a wait given up: the first attempt, one at the deadline, the leave")

		h.set(0, false)
		require.NoError(t, a.Leases.Release(ctx, p.P, l.ID))
		assert.Equal(t, 1, h.count(), "round trips per release")

		// A lease this replica has not seen: the first use reads its record.
		ol, err := other.Leases.Acquire(ctx, p.P, "k2", core.AcquireLease{Holder: "h"})
		require.NoError(t, err)
		h.set(0, false)
		_, err = a.Leases.Renew(ctx, p.P, ol.ID, core.RenewLease{})
		require.NoError(t, err)
		assert.Equal(t, 2, h.count(), "round trips per renew of a lease acquired elsewhere")
		h.set(0, false)
		require.NoError(t, a.Leases.Release(ctx, p.P, ol.ID))
		assert.Equal(t, 1, h.count(), "then it is known")
	})
}

// leaseInvariants checks what must hold after any fault: every current lease has its record
// (same id, same token, active); the fencing counter equals the number of "acquired" events
// (no token burned without a grant, no grant logged twice); every queued waiter has a
// deadline. It returns the key's current lease, if any.
func leaseInvariants(t *testing.T, e *testenv.Env, project, key string) map[string]string {
	t.Helper()
	ctx := context.Background()
	k := func(rest string) string { return "as:{" + project + "}:" + rest }
	cur, err := e.Rdb.HGetAll(ctx, k("leasecur:"+key)).Result()
	require.NoError(t, err)
	if len(cur) > 0 {
		rec, err := e.Rdb.HGetAll(ctx, k("leaserec:"+cur["id"])).Result()
		require.NoError(t, err)
		require.NotEmpty(t, rec, "the key's current lease %s has no record", cur["id"])
		assert.Equal(t, cur["fencing_token"], rec["fencing_token"])
		assert.Equal(t, "active", rec["status"])
		score, err := e.Rdb.ZScore(ctx, k("leases"), cur["id"]).Result()
		require.NoError(t, err, "the current lease is in the active index")
		assert.Equal(t, cur["expires_at"], strconv.FormatFloat(score, 'f', 0, 64))
	}
	evs, err := e.Rdb.XRange(ctx, k("lease-events"), "-", "+").Result()
	require.NoError(t, err)
	acquired := 0
	for _, m := range evs {
		if m.Values["type"] == "acquired" && m.Values["state_key"] == key {
			acquired++
		}
	}
	fence, err := e.Rdb.Get(ctx, k("fence:"+key)).Int()
	if !errors.Is(err, redis.Nil) {
		require.NoError(t, err)
	}
	assert.Equal(t, fence, acquired, "fencing tokens issued = acquired events")
	q, err := e.Rdb.ZRange(ctx, k("leaseq:"+key), 0, -1).Result()
	require.NoError(t, err)
	for _, w := range q {
		_, err := e.Rdb.ZScore(ctx, k("leaseqd:"+key), w).Result()
		assert.NoError(t, err, "queued waiter %s has a deadline", w)
	}
	return cur
}

// acquirableAfterExpiry: once the clock passes every lease's expiry, a new acquire succeeds at
// once (nothing left behind holds the key longer than its lease).
func acquirableAfterExpiry(t *testing.T, e *testenv.Env, a *app.App, p core.Principal, key string) {
	t.Helper()
	e.Clock.Advance(time.Duration(core.LeaseTTLMaxMs+1) * time.Millisecond)
	l, err := a.Leases.Acquire(context.Background(), p, key, core.AcquireLease{Holder: "after"})
	require.NoError(t, err, "the key is acquirable once the leases' own expiry passed")
	require.NoError(t, a.Leases.Release(context.Background(), p, l.ID))
}

// TestLeaseFaultAtEveryStep breaks each round trip of a lease's life in turn, before it is
// sent and after it ran (reply lost): acquire (free key), acquire refused, acquire that waits
// and is handed the key, renew, release. Afterwards the invariants hold and the key is
// acquirable as soon as the lease's expiry passes.
func TestLeaseFaultAtEveryStep(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		h := &faultHook{}
		a, p := hookedApp(t, e, h)
		clean := e.App(t) // the same store without faults, for set-up and checks
		ctx := context.Background()
		life := func(key string) {
			wait := int64(2000)
			l, err := a.Leases.Acquire(ctx, p.P, key, core.AcquireLease{Holder: "a"})
			if err != nil {
				return
			}
			_, _ = a.Leases.Acquire(ctx, p.P, key, core.AcquireLease{Holder: "b"}) // refused
			done := make(chan core.Lease, 1)
			var finished atomic.Bool
			go func() {
				w, err := a.Leases.Acquire(ctx, p.P, key, core.AcquireLease{Holder: "w", WaitMs: &wait})
				if err == nil {
					done <- w
				}
				finished.Store(true)
				close(done)
			}()
			require.Eventually(t, func() bool {
				n, _ := e.Rdb.ZCard(ctx, "as:{"+p.ID+"}:leaseq:"+key).Result()
				return n == 1 || finished.Load()
			}, 5*time.Second, time.Millisecond, "the waiter queues (or failed)")
			_, _ = a.Leases.Renew(ctx, p.P, l.ID, core.RenewLease{})
			_ = a.Leases.Release(ctx, p.P, l.ID)
			if w, ok := <-done; ok {
				_ = a.Leases.Release(ctx, p.P, w.ID)
			}
		}
		h.set(0, false)
		life("count")
		steps := h.count()
		require.Greater(t, steps, 5)
		for i := 1; i <= steps; i++ {
			for _, lose := range []bool{false, true} {
				key := fmt.Sprintf("k%d-%v", i, lose)
				h.set(i, lose)
				life(key)
				h.set(0, false)
				leaseInvariants(t, e, p.ID, key)
				acquirableAfterExpiry(t, e, clean, p.P, key)
			}
		}
	})
}

// TestLeaseCancelledWaitersLeaveNoTrace cancels waiters at random moments (some before they
// queue, some while queued, some as they are handed the key): the queue empties, no lease is
// left that nobody holds, and the remaining waiters are still served.
func TestLeaseCancelledWaitersLeaveNoTrace(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx := context.Background()
		for round := range 20 {
			key := fmt.Sprint("c", round)
			first, err := a.Leases.Acquire(ctx, p.P, key, core.AcquireLease{Holder: "first"})
			require.NoError(t, err)
			var wg sync.WaitGroup
			var served atomic.Int64
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					wait := int64(10_000)
					cctx, cancel := context.WithCancel(ctx)
					defer cancel()
					if i%2 == 0 { // half are cancelled after a random moment
						go func() {
							time.Sleep(time.Duration(round%5) * time.Millisecond)
							cancel()
						}()
					}
					l, err := a.Leases.Acquire(cctx, p.P, key, core.AcquireLease{Holder: fmt.Sprint("w", i), WaitMs: &wait})
					if err == nil {
						served.Add(1)
						require.NoError(t, a.Leases.Release(ctx, p.P, l.ID))
					}
				}()
			}
			time.Sleep(time.Duration(round%4) * time.Millisecond)
			require.NoError(t, a.Leases.Release(ctx, p.P, first.ID))
			wg.Wait()
			assert.GreaterOrEqual(t, served.Load(), int64(2), "the waiters not cancelled are served")
			cur := leaseInvariants(t, e, p.ID, key)
			assert.Empty(t, cur, "no lease is left that nobody holds")
			n, _ := e.Rdb.ZCard(ctx, "as:{"+p.ID+"}:leaseq:"+key).Result()
			assert.Zero(t, n, "cancelled waiters left the queue")
		}
	})
}

// TestLeaseScriptsAreRetrySafe re-runs each transition with the same request, as go-redis does
// when a reply is lost: the answer is the same and nothing happens twice.
func TestLeaseScriptsAreRetrySafe(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx := context.Background()
		att := core.LeaseAttempt{ID: core.NewID(), Key: "r", Holder: "h", OwnerChain: []string{p.P.CredentialID},
			TTLMs: 10_000, NowMs: core.NowMs(e.Clock)}
		first, err := e.Store.AcquireLease(ctx, p.ID, att)
		require.NoError(t, err)
		again, err := e.Store.AcquireLease(ctx, p.ID, att)
		require.NoError(t, err)
		require.True(t, first.Granted && again.Granted)
		assert.Equal(t, first.Lease.FencingToken, again.Lease.FencingToken, "a retried acquire burns no second token")
		assert.Equal(t, first.Lease.ID, again.Lease.ID)

		// A retried enqueue keeps its place and draws no second arrival number.
		w := core.LeaseAttempt{ID: core.NewID(), Key: "r", Holder: "w", OwnerChain: att.OwnerChain,
			TTLMs: 10_000, NowMs: core.NowMs(e.Clock), WaitLeftMs: 5000}
		for range 2 {
			res, err := e.Store.AcquireLease(ctx, p.ID, w)
			require.NoError(t, err)
			require.False(t, res.Granted)
		}
		seq, _ := e.Rdb.Get(ctx, "as:{"+p.ID+"}:leasew-seq").Int()
		assert.Equal(t, 1, seq)

		l := first.Lease
		r1, err := e.Store.RenewLease(ctx, p.ID, l, 20_000, att.NowMs+1, "renew-1", nil)
		require.NoError(t, err)
		r2, err := e.Store.RenewLease(ctx, p.ID, l, 20_000, att.NowMs+2, "renew-1", nil)
		require.NoError(t, err)
		assert.Equal(t, r1.ExpiresAt, r2.ExpiresAt, "a retried renew answers like the first")
		ok1, err := e.Store.EndLease(ctx, p.ID, l, att.NowMs+3, core.LeaseReleased, "rel-1", nil)
		require.NoError(t, err)
		ok2, err := e.Store.EndLease(ctx, p.ID, l, att.NowMs+4, core.LeaseReleased, "rel-1", nil)
		require.NoError(t, err)
		assert.True(t, ok1 && ok2, "a retried release still reports success")
		ok3, err := e.Store.EndLease(ctx, p.ID, l, att.NowMs+5, core.LeaseReleased, "rel-2", nil)
		require.NoError(t, err)
		assert.False(t, ok3, "a second, different release finds nothing to end (v1's 404)")

		evs, err := a.Leases.Events(ctx, p.P, "", 100)
		require.NoError(t, err)
		var types []string
		for _, ev := range evs.Data {
			types = append(types, ev.Type)
		}
		assert.Equal(t, []string{"acquired", "renewed", "released"}, types, "one event per transition")
		leaseInvariants(t, e, p.ID, "r")
	})
}

// TestLeaseHandOffAcrossReplicasOnReleaseAndExpiry: a waiter blocked on one server replica is
// handed the key the moment a release on another replica frees it, and again when a lease
// expires and the sweeper (on the other replica) ends it; no poll brings it there.
func TestLeaseHandOffAcrossReplicasOnReleaseAndExpiry(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		b, p := hookedApp(t, e, &faultHook{}) // another replica: its own client and subscription
		ctx := context.Background()
		// The lease outlives the test's patience (10 s), so only a wake-up can hand it over in time:
		// the waiter's own fallback look comes at the lease's expiry, 60 s away in real time.
		wait, ttl := int64(30_000), int64(60_000)
		handed := func(how string, free func(core.Lease)) {
			held, err := a.Leases.Acquire(ctx, p.P, "x", core.AcquireLease{Holder: "holder", TTLMs: &ttl})
			require.NoError(t, err)
			got := make(chan error, 1)
			var w core.Lease
			go func() {
				var err error
				w, err = b.Leases.Acquire(ctx, p.P, "x", core.AcquireLease{Holder: "waiter", WaitMs: &wait})
				got <- err
			}()
			require.Eventually(t, func() bool {
				n, _ := e.Rdb.ZCard(ctx, "as:{"+p.ID+"}:leaseq:x").Result()
				return n == 1
			}, 5*time.Second, time.Millisecond)
			start := time.Now()
			free(held)
			select {
			case err := <-got:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: the waiter was not handed the key", how)
			}
			t.Logf("%s: handed over in %s", how, time.Since(start))
			assert.Greater(t, w.FencingToken, held.FencingToken)
			require.NoError(t, b.Leases.Release(ctx, p.P, w.ID))
		}
		handed("release", func(l core.Lease) { require.NoError(t, a.Leases.Release(ctx, p.P, l.ID)) })
		handed("expiry", func(core.Lease) {
			e.Clock.Advance(61 * time.Second)
			n, err := a.Leases.Sweep(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, n)
		})
	})
}

// TestOneReplicaLeadsABackgroundJob: of replicas asking at once, exactly one leads the job for
// the interval (redsync), so the sweeper runs once per interval however many replicas run.
func TestOneReplicaLeadsABackgroundJob(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		job := "test-" + core.NewID()
		var leaders atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			st := redisstore.New(e.Rdb)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := st.LeadJob(context.Background(), job, 200*time.Millisecond)
				assert.NoError(t, err)
				if ok {
					leaders.Add(1)
				}
			}()
		}
		wg.Wait()
		assert.EqualValues(t, 1, leaders.Load())
		if e.Mini != nil {
			e.Mini.FastForward(300 * time.Millisecond)
		} else {
			time.Sleep(300 * time.Millisecond)
		}
		ok, err := redisstore.New(e.Rdb).LeadJob(context.Background(), job, 200*time.Millisecond)
		require.NoError(t, err)
		assert.True(t, ok, "after the interval another replica may lead")
	})
}

// An expired lease, even once the sweeper has ended it, can still be released (v1: no expiry
// check on release); releasing it again is NOT_FOUND.
func TestExpiredLeaseCanBeReleased(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx := context.Background()
		ttl := int64(1000)
		l, err := a.Leases.Acquire(ctx, p.P, "exp", core.AcquireLease{Holder: "h", TTLMs: &ttl})
		require.NoError(t, err)
		e.Clock.Advance(2 * time.Second)
		n, err := a.Leases.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.NoError(t, a.Leases.Release(ctx, p.P, l.ID))
		require.True(t, core.IsCode(a.Leases.Release(ctx, p.P, l.ID), core.CodeNotFound))
	})
}
