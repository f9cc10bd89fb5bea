package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

func lease(t *testing.T, r Result) core.Lease {
	t.Helper()
	var l core.Lease
	ok(t, r).Decode(t, &l)
	return l
}

// errDetail reads one field of an error's details (REST envelope or MCP structured error).
func errDetail(t *testing.T, r Result, field string) any {
	t.Helper()
	var e struct {
		Details map[string]any `json:"details"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &e), "body: %s", r.Body)
	return e.Details[field]
}

func acquire(t *testing.T, f Face, key, holder string, extra ...any) core.Lease {
	t.Helper()
	args := map[string]any{"state_key": key, "holder": holder}
	for i := 0; i+1 < len(extra); i += 2 {
		args[extra[i].(string)] = extra[i+1]
	}
	r := f.Call(t, "acquire_lease", args)
	if f.Name() == "rest" {
		require.Equal(t, 201, r.Status, "acquire answers 201: %s", r.Body)
	}
	return lease(t, r)
}

func TestLeaseV1Contract(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		now := core.NowMs(e.Clock)
		l := acquire(t, f, "task:1", "worker-a")
		assert.Equal(t, "task:1", l.StateKey)
		assert.Equal(t, "worker-a", l.Holder)
		assert.EqualValues(t, 1, l.FencingToken)
		assert.Equal(t, now+60_000, l.ExpiresAt, "default ttl 60000")
		assert.Equal(t, l.CreatedAt, l.RenewedAt)
		assert.Regexp(t, `^[A-Za-z0-9_-]{21}$`, l.ID, "URL-safe ids")

		fails(t, f.Call(t, "acquire_lease", map[string]any{"state_key": "task:1", "holder": "worker-b"}), core.CodeLeaseConflict, "State already has an active lease")
		fails(t, f.Call(t, "acquire_lease", map[string]any{"state_key": "x", "holder": "h", "ttl_ms": 500}), core.CodeBadRequest, "Number must be greater than or equal to 1000")
		fails(t, f.Call(t, "acquire_lease", map[string]any{"state_key": "x", "holder": "h", "ttl_ms": 3600001}), core.CodeBadRequest, "Number must be less than or equal to 3600000")
		if f.Name() == "rest" {
			fails(t, f.Call(t, "acquire_lease", map[string]any{"state_key": "x"}), core.CodeBadRequest, "")
		} else { // MCP: the holder defaults to the credential's agent (its name for an unbound key)
			var dl core.Lease
			ok(t, f.Call(t, "acquire_lease", map[string]any{"state_key": "x"})).Decode(t, &dl)
			assert.Equal(t, "Default", dl.Holder)
			ok(t, f.Call(t, "release_lease", map[string]any{"lease_id": dl.ID}))
		}
		fails(t, f.Call(t, "acquire_lease", map[string]any{"state_key": "x", "holder": "h", "wait_ms": 60001}), core.CodeBadRequest, "")

		e.Clock.Advance(10 * time.Second)
		r := lease(t, f.Call(t, "renew_lease", map[string]any{"lease_id": l.ID, "ttl_ms": 5000}))
		assert.Equal(t, core.NowMs(e.Clock)+5000, r.ExpiresAt, "renew resets from now; a shorter ttl shrinks the lease")
		assert.Equal(t, core.NowMs(e.Clock), r.RenewedAt)

		ok(t, f.Call(t, "release_lease", map[string]any{"lease_id": l.ID}))
		fails(t, f.Call(t, "release_lease", map[string]any{"lease_id": l.ID}), core.CodeNotFound, "Lease not found")
		fails(t, f.Call(t, "renew_lease", map[string]any{"lease_id": l.ID}), core.CodeNotFound, "Lease not found")
		fails(t, f.Call(t, "renew_lease", map[string]any{"lease_id": "unknownleaseid"}), core.CodeNotFound, "Lease not found")
		fails(t, f.Call(t, "release_lease", map[string]any{"lease_id": "bad id!"}), core.CodeBadRequest, "Malformed lease id")

		l2 := acquire(t, f, "task:1", "worker-b", "ttl_ms", 1000)
		assert.EqualValues(t, 2, l2.FencingToken, "fencing tokens only go up, across released leases")
		e.Clock.Advance(1001 * time.Millisecond)
		fails(t, f.Call(t, "renew_lease", map[string]any{"lease_id": l2.ID}), core.CodeLeaseExpired, "Lease has expired")
		ok(t, f.Call(t, "release_lease", map[string]any{"lease_id": l2.ID})) // v1: an expired lease may still be released
	})
}

func TestLeaseGuardsStateWrites(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		l := acquire(t, f, "doc", "a")
		body := map[string]any{"state_key": "doc", "agent_id": "a", "data": map[string]any{"v": 1}}
		fails(t, f.Call(t, "upsert_state", body), core.CodeLeaseRequired, "Active lease requires lease_id")
		body["lease_id"] = "someoneelse"
		fails(t, f.Call(t, "upsert_state", body), core.CodeLeaseConflict, "lease_id does not match active lease")
		body["lease_id"] = l.ID
		st := state(t, f.Call(t, "upsert_state", body))
		require.NotNil(t, st.FencingToken)
		assert.Equal(t, l.FencingToken, *st.FencingToken, "the state shows the fencing token of its last write")
		fails(t, f.Call(t, "delete_state", map[string]any{"state_key": "doc"}), core.CodeLeaseRequired, "")

		ok(t, f.Call(t, "release_lease", map[string]any{"lease_id": l.ID}))
		fails(t, f.Call(t, "upsert_state", body), core.CodeLeaseExpired, "Lease has expired")
		fails(t, f.Call(t, "delete_state", map[string]any{"state_key": "doc", "lease_id": l.ID}), core.CodeLeaseExpired, "")
		delete(body, "lease_id")
		st = state(t, f.Call(t, "upsert_state", body))
		assert.Nil(t, st.FencingToken, "writes without a lease carry no token")
	})
}

// A pauses past its TTL, B takes over and writes; A's late write is refused whether it shows
// A's lease id or A's fencing token, and B's value stands.
func TestStaleHolderCannotWrite(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		a := acquire(t, f, "job", "A", "ttl_ms", 1000)
		e.Clock.Advance(1500 * time.Millisecond) // A is paused (GC, network) past its lease
		b := acquire(t, f, "job", "B")
		assert.Greater(t, b.FencingToken, a.FencingToken)
		state(t, f.Call(t, "upsert_state", map[string]any{"state_key": "job", "agent_id": "B", "data": map[string]any{"by": "B"}, "lease_id": b.ID, "fencing_token": b.FencingToken}))

		// A's own id while B holds the key: v1's conflict (compat-v1.md §6.2), naming B's token.
		r := fails(t, f.Call(t, "upsert_state", map[string]any{"state_key": "job", "agent_id": "A", "data": map[string]any{"by": "A"}, "lease_id": a.ID}),
			core.CodeLeaseConflict, "lease_id does not match active lease")
		assert.EqualValues(t, b.FencingToken, errDetail(t, r, "highest_fencing_token"), "the refusal names the new holder's token")
		fails(t, f.Call(t, "upsert_state", map[string]any{"state_key": "job", "agent_id": "A", "data": map[string]any{"by": "A"}, "lease_id": b.ID, "fencing_token": a.FencingToken}),
			core.CodeStaleFencingToken, "")
		fails(t, f.Call(t, "delete_state", map[string]any{"state_key": "job", "lease_id": b.ID, "fencing_token": a.FencingToken}), core.CodeStaleFencingToken, "")
		ok(t, f.Call(t, "release_lease", map[string]any{"lease_id": b.ID}))
		fails(t, f.Call(t, "upsert_state", map[string]any{"state_key": "job", "agent_id": "A", "data": map[string]any{"by": "A"}, "fencing_token": a.FencingToken}),
			core.CodeStaleFencingToken, "", // even with nobody holding the key now
		)
		// With nobody holding the key, A's id is expired; it still names the latest token.
		r = fails(t, f.Call(t, "upsert_state", map[string]any{"state_key": "job", "agent_id": "A", "data": map[string]any{"by": "A"}, "lease_id": a.ID}),
			core.CodeLeaseExpired, "Lease has expired")
		assert.EqualValues(t, b.FencingToken, errDetail(t, r, "highest_fencing_token"))
		st := state(t, f.Call(t, "get_state", map[string]any{"state_key": "job"}))
		assert.JSONEq(t, `{"by":"B"}`, string(st.Data))
	})
}

func TestLeaseIntrospectionEventsAndExpirySweep(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		fails(t, f.Call(t, "get_lease", map[string]any{"state_key": "k1"}), core.CodeNotFound, "Lease not found")
		l1 := acquire(t, f, "k1", "h1", "ttl_ms", 2000)
		l2 := acquire(t, f, "k2", "h2", "ttl_ms", 5000)
		assert.Equal(t, l1.ID, lease(t, f.Call(t, "get_lease", map[string]any{"state_key": "k1"})).ID)
		assert.Equal(t, core.LeaseActive, lease(t, f.Call(t, "get_lease", map[string]any{"lease_id": l2.ID})).Status)

		var page core.LeasePage
		ok(t, f.Call(t, "list_leases", map[string]any{"limit": 1})).Decode(t, &page)
		require.Len(t, page.Data, 1)
		assert.Equal(t, l1.ID, page.Data[0].ID, "soonest expiry first")
		ok(t, f.Call(t, "list_leases", map[string]any{"limit": 1, "cursor": *page.Pagination.NextCursor})).Decode(t, &page)
		require.Len(t, page.Data, 1)
		assert.Equal(t, l2.ID, page.Data[0].ID)
		assert.Nil(t, page.Pagination.NextCursor)

		ok(t, f.Call(t, "renew_lease", map[string]any{"lease_id": l2.ID, "ttl_ms": 5000}))
		e.Clock.Advance(3 * time.Second)
		n, err := s.App.Leases.Sweep(t.Context())
		require.NoError(t, err)
		assert.GreaterOrEqual(t, n, 1)
		assert.Equal(t, core.LeaseExpired, lease(t, f.Call(t, "get_lease", map[string]any{"lease_id": l1.ID})).Status)
		ok(t, f.Call(t, "list_leases", map[string]any{})).Decode(t, &page)
		assert.Len(t, page.Data, 1)
		ok(t, f.Call(t, "release_lease", map[string]any{"lease_id": l2.ID}))

		evs, err := s.App.Leases.Events(t.Context(), s.Project.P, "", 100)
		require.NoError(t, err)
		var got []string
		for _, ev := range evs.Data {
			got = append(got, ev.Type+":"+ev.StateKey)
		}
		assert.Equal(t, []string{"acquired:k1", "acquired:k2", "renewed:k2", "expired:k1", "released:k2"}, got)
		more, err := s.App.Leases.Events(t.Context(), s.Project.P, evs.Data[2].ID, 100)
		require.NoError(t, err)
		assert.Len(t, more.Data, 2, "after is exclusive")
	})
}

func TestIdempotentAcquire(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		a := acquire(t, f, "k", "w1", "request_id", "r-1")
		again := acquire(t, f, "k", "w1", "request_id", "r-1")
		assert.Equal(t, a.ID, again.ID, "a retried acquire gets the same lease back")
		fails(t, f.Call(t, "acquire_lease", map[string]any{"state_key": "k", "holder": "w1", "request_id": "r-2"}), core.CodeLeaseConflict, "")
		fails(t, f.Call(t, "acquire_lease", map[string]any{"state_key": "k", "holder": "w2", "request_id": "r-1"}), core.CodeLeaseConflict, "")
	})
}

// Waiters queued with wait_ms get the key in the order they arrived.
func TestLeaseWaitersAreServedInArrivalOrder(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		f := newREST(s, s.Project.Key)
		first := acquire(t, f, "q", "holder")
		const n = 6
		var mu sync.Mutex
		var order []string
		var wg sync.WaitGroup
		queue := fmt.Sprintf("as:{%s}:leaseq:q", s.Project.ID)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprint("w", i)
				resp, body, err := trySend("POST", s.URL+"/api/v1/states/q/lease", s.Project.Key,
					map[string]any{"holder": name, "wait_ms": 30000}, nil)
				if err != nil || resp.StatusCode != 201 {
					t.Errorf("%s: %v %s", name, err, body)
					return
				}
				var l core.Lease
				_ = json.Unmarshal(body, &l)
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				if _, _, err := trySend("DELETE", s.URL+"/api/v1/leases/"+l.ID, s.Project.Key, nil, nil); err != nil {
					t.Error(err)
				}
			}()
			require.Eventually(t, func() bool {
				c, _ := e.Rdb.ZCard(context.Background(), queue).Result()
				return c == int64(i+1)
			}, 10*time.Second, 2*time.Millisecond, "waiter %d queued", i)
		}
		ok(t, f.Call(t, "release_lease", map[string]any{"lease_id": first.ID}))
		wg.Wait()
		assert.Equal(t, []string{"w0", "w1", "w2", "w3", "w4", "w5"}, order)
		c, _ := e.Rdb.ZCard(context.Background(), queue).Result()
		assert.Zero(t, c, "served waiters leave the queue")
	})
}

// A waiter that gives up leaves the queue and does not block those behind it.
func TestLeaseWaiterThatGivesUpLeavesTheQueue(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx := context.Background()
		h, err := a.Leases.Acquire(ctx, p.P, "k", core.AcquireLease{Holder: "h"})
		require.NoError(t, err)
		wait := int64(50)
		_, err = a.Leases.Acquire(ctx, p.P, "k", core.AcquireLease{Holder: "quitter", WaitMs: &wait})
		require.True(t, core.IsCode(err, core.CodeLeaseConflict), "%v", err)
		c, _ := e.Rdb.ZCard(ctx, fmt.Sprintf("as:{%s}:leaseq:k", p.ID)).Result()
		assert.Zero(t, c)
		require.NoError(t, a.Leases.Release(ctx, p.P, h.ID))
		_, err = a.Leases.Acquire(ctx, p.P, "k", core.AcquireLease{Holder: "next"})
		require.NoError(t, err, "an immediate acquire is not blocked by a waiter that left")
	})
}

// 32 workers loop acquire → fenced write → release on one key: no two critical sections
// overlap, and the accepted writes' fencing tokens strictly increase.
func TestLeaseSafetyUnderContention(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx := context.Background()
		const workers, rounds = 32, 4
		var inside, overlaps atomic.Int64
		var wg sync.WaitGroup
		wait := int64(60_000)
		ttl := int64(60_000)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					l, err := a.Leases.Acquire(ctx, p.P, "hot", core.AcquireLease{Holder: fmt.Sprint("w", w), WaitMs: &wait, TTLMs: &ttl})
					if err != nil {
						t.Error(err)
						return
					}
					if inside.Add(1) > 1 {
						overlaps.Add(1)
					}
					_, _, err = a.States.Put(ctx, p.P, core.PutState{Key: "hot", Body: core.StateWrite{
						AgentID: fmt.Sprint("w", w), Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"r":%d}`, w, r)),
						LeaseID: l.ID, FencingToken: &l.FencingToken,
					}})
					if err != nil {
						t.Error(err)
					}
					inside.Add(-1)
					if err := a.Leases.Release(ctx, p.P, l.ID); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		assert.Zero(t, overlaps.Load(), "two holders were inside at once")
		page, err := a.States.Events(ctx, p.P, "hot", 0, 500)
		require.NoError(t, err)
		require.Len(t, page.Data, workers*rounds)
		for i := 1; i < len(page.Data); i++ {
			assert.Greater(t, *page.Data[i].FencingToken, *page.Data[i-1].FencingToken, "tokens strictly increase in write order")
		}
	})
}
