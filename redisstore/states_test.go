package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// Writers race on a few keys, changing agent and tags and deleting; afterwards every index
// holds exactly the live states that belong in it, at their latest sequence. This is what the
// script's RETRY path protects: a write must never leave a key in its old agent's or tags' index.
func TestIndexesMatchStatesUnderConcurrentWrites(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx := context.Background()
		keys := []string{"k0", "k1", "k2", "k3", "k4"}
		agents := []string{"a", "b", "c"}
		tags := []string{"x", "y", "z"}

		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				for range 60 {
					k := keys[rng.IntN(len(keys))]
					if rng.IntN(5) == 0 {
						_, _, err := a.States.Delete(ctx, p.P, core.DeleteState{Key: k})
						if err != nil && !core.IsCode(err, core.CodeNotFound) {
							t.Error(err)
						}
						continue
					}
					var tg []string
					for _, x := range tags {
						if rng.IntN(2) == 0 {
							tg = append(tg, x)
						}
					}
					_, _, err := a.States.Put(ctx, p.P, core.PutState{Key: k, Body: core.StateWrite{
						AgentID: agents[rng.IntN(len(agents))], Data: json.RawMessage(`{}`), Tags: tg,
					}})
					if err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()

		want := map[string][]string{} // index key → live state keys
		wantScore := map[string]float64{}
		for _, k := range keys {
			st, err := a.States.Get(ctx, p.P, k, core.At{})
			if core.IsCode(err, core.CodeNotFound) {
				continue
			}
			require.NoError(t, err)
			wantScore[k] = float64(st.LatestSequence)
			want["idx:live"] = append(want["idx:live"], k)
			want["idx:agent:"+st.AgentID] = append(want["idx:agent:"+st.AgentID], k)
			for _, tg := range st.Tags {
				want["idx:tag:"+tg] = append(want["idx:tag:"+tg], k)
			}
		}
		idx := []string{"idx:live"}
		for _, ag := range agents {
			idx = append(idx, "idx:agent:"+ag)
		}
		for _, tg := range tags {
			idx = append(idx, "idx:tag:"+tg)
		}
		for _, ix := range idx {
			zs, err := e.Rdb.ZRangeWithScores(ctx, fmt.Sprintf("as:{%s}:%s", p.ID, ix), 0, -1).Result()
			require.NoError(t, err)
			got := []string{}
			for _, z := range zs {
				m := z.Member.(string)
				got = append(got, m)
				assert.Equal(t, wantScore[m], z.Score, "%s: %s at its latest sequence", ix, m)
			}
			sort.Strings(got)
			w := want[ix]
			if w == nil {
				w = []string{}
			}
			sort.Strings(w)
			assert.Equal(t, w, got, ix)
		}
	})
}

// Time travel into a long history: every at_time answer matches a linear scan of the key's
// events, costs the same few round trips at any depth (a binary search inside one script, not
// a walk back), and stays right when the writers' clock steps backwards, because a key's
// created_at never decreases.
func TestTimeTravelIsLogarithmic(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx := context.Background()
		put := func(key string, n int) core.State {
			ev, _, err := a.States.Put(ctx, p.P, core.PutState{Key: key, Body: core.StateWrite{
				AgentID: "a", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}})
			require.NoError(t, err)
			return ev
		}
		var history []core.State
		for n := range 400 {
			if n%3 == 0 {
				put("other", n) // sparse sequences on "deep"
			}
			if n == 200 {
				e.Clock.Advance(-time.Minute) // a replica whose clock is behind
			}
			e.Clock.Advance(time.Duration(1+n%4) * time.Millisecond)
			history = append(history, put("deep", n))
		}
		for i := 1; i < len(history); i++ {
			require.GreaterOrEqual(t, history[i].UpdatedAt, history[i-1].UpdatedAt, "created_at never goes backwards on a key")
		}

		own, _ := e.WithOwnClients(t)
		counted, st := testenv.CountRoundTrips(own.Rdb), own.Store
		first, last := history[0].UpdatedAt, history[len(history)-1].UpdatedAt
		_, err := st.StateEventsAt(ctx, p.ID, []string{"deep"}, 0, first) // dial, load the script
		require.NoError(t, err)
		for at := first - 1; at <= last+1; at += max(1, (last-first)/97) {
			want := -1
			for i, ev := range history {
				if ev.UpdatedAt <= at {
					want = i
				}
			}
			before := counted.Load()
			got, err := st.StateEventsAt(ctx, p.ID, []string{"deep"}, 0, at)
			require.NoError(t, err)
			assert.LessOrEqual(t, counted.Load()-before, int64(3), "at_time %d: round trips do not grow with depth", at)
			if want < 0 {
				assert.Nil(t, got[0], "at_time %d is before the first event", at)
				continue
			}
			require.NotNil(t, got[0], "at_time %d", at)
			assert.Equal(t, history[want].LatestSequence, got[0].Sequence, "at_time %d", at)
		}
	})
}

// A delete, or a write that moves a state to another agent or tags, costs one script call when
// this replica saw the state last; a replica whose hint is stale (another replica wrote since)
// or that never saw the state pays the RETRY round trip and still leaves every index right.
func TestStateWritesNeedNoRetryAfterASighting(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx := context.Background()
		e1, _ := e.WithOwnClients(t) // two server replicas
		e2, _ := e.WithOwnClients(t)
		r1, r2 := e1.Store, e2.Store
		calls1, calls2 := testenv.CountRoundTrips(e1.Rdb), testenv.CountRoundTrips(e2.Rdb)
		write := func(st *redisstore.Store, calls *atomic.Int64, m core.StateMutation) int64 {
			t.Helper()
			m.EventID, m.NowMs, m.Writer = core.NewID(), 1, core.LeaseWriter{FullAccess: true}
			before := calls.Load()
			_, _, err := st.MutateState(ctx, p.ID, m)
			require.NoError(t, err)
			return calls.Load() - before
		}
		up := func(key, agent string, tags ...string) core.StateMutation {
			return core.StateMutation{Op: core.EventUpsert, Key: key, AgentID: agent, Data: json.RawMessage(`{}`), Tags: append([]string{}, tags...)}
		}
		del := func(key string) core.StateMutation { return core.StateMutation{Op: core.EventDelete, Key: key} }
		write(r1, calls1, up("warm", "a")) // dial and load the script on both
		write(r2, calls2, up("warm", "a"))

		write(r1, calls1, up("k", "a", "x"))
		assert.EqualValues(t, 1, write(r1, calls1, up("k", "b", "y")), "agent and tags change: no RETRY")
		assert.EqualValues(t, 1, write(r1, calls1, del("k")), "delete after a sighting: no RETRY")

		write(r1, calls1, up("k", "a", "x"))
		write(r2, calls2, up("k", "b", "y")) // r1's hint is now stale
		assert.EqualValues(t, 2, write(r1, calls1, del("k")), "a stale hint costs the RETRY round trip")
		write(r2, calls2, up("j", "c", "z"))
		write(r1, calls1, up("k", "d", "w"))
		assert.EqualValues(t, 2, write(r1, calls1, del("j")), "no sighting: RETRY")

		assertIndexes(t, e.Store, p.ID, map[core.StateIndex][]string{
			{Kind: "live"}: {"k", "warm"}, {Kind: "agent", Value: "a"}: {"warm"}, {Kind: "agent", Value: "b"}: nil,
			{Kind: "agent", Value: "c"}: nil, {Kind: "agent", Value: "d"}: {"k"}, {Kind: "tag", Value: "x"}: nil,
			{Kind: "tag", Value: "y"}: nil, {Kind: "tag", Value: "z"}: nil, {Kind: "tag", Value: "w"}: {"k"},
		})
	})
}

// Keys written before the head hash existed (a stream and no as:{p}:head:<key>, see
// docs/redis-keys.md) stay writable with every guard: the next write reads the stream's last
// entry, keeps version, state_created_at and indexes right, and writes the head. Afterwards each
// head repeats its key's last event.
func TestStatesWrittenBeforeHeadsStayWritable(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		p := testenv.NewProject(t, e.App(t))
		ctx := context.Background()
		old, _ := e.WithOwnClients(t) // the replica that wrote before the upgrade
		st, _ := e.WithOwnClients(t)  // a replica that never saw these keys: no label hints
		head := func(key string) string { return "as:{" + p.ID + "}:head:" + key }
		write := func(s *redisstore.Store, m core.StateMutation) (core.StateEvent, error) {
			m.EventID, m.NowMs, m.Writer = core.NewID(), 1000, core.LeaseWriter{FullAccess: true}
			ev, _, err := s.MutateState(ctx, p.ID, m)
			return ev, err
		}
		up := func(key, agent string, tags ...string) core.StateMutation {
			return core.StateMutation{Op: core.EventUpsert, Key: key, AgentID: agent, Data: json.RawMessage(`{"n":1}`),
				Metadata: json.RawMessage(`{"m":1}`), Tags: append([]string{}, tags...)}
		}
		for _, k := range []string{"moved", "deleted", "guarded"} {
			_, err := write(old.Store, up(k, "a", "x", "y"))
			require.NoError(t, err)
			require.NoError(t, e.Rdb.Del(ctx, head(k)).Err()) // the old layout: the stream alone
		}

		one := int64(1)
		m := up("moved", "b", "y", "z")
		m.ExpectedVersion = &one
		ev, err := write(st.Store, m)
		require.NoError(t, err, "the version guard sees the old record")
		assert.EqualValues(t, 2, ev.Version)
		assert.EqualValues(t, 1000, ev.StateCreatedAt)

		ev, err = write(st.Store, core.StateMutation{Op: core.EventDelete, Key: "deleted"})
		require.NoError(t, err, "a delete finds the old record")
		assert.Equal(t, "a", ev.AgentID, "the delete names the last writer")
		assert.JSONEq(t, `{"m":1}`, string(ev.Metadata), "and keeps its metadata")
		assert.Equal(t, []string{"x", "y"}, ev.Tags)

		five := int64(5)
		m = up("guarded", "a")
		m.ExpectedVersion = &five
		_, err = write(st.Store, m)
		require.True(t, core.IsCode(err, core.CodeVersionConflict), "%v", err)
		assert.EqualValues(t, 1, err.(*core.Error).Details.(map[string]any)["current_version"])

		assertIndexes(t, e.Store, p.ID, map[core.StateIndex][]string{
			{Kind: "live"}: {"guarded", "moved"}, {Kind: "agent", Value: "a"}: {"guarded"},
			{Kind: "agent", Value: "b"}: {"moved"}, {Kind: "tag", Value: "x"}: {"guarded"},
			{Kind: "tag", Value: "y"}: {"guarded", "moved"}, {Kind: "tag", Value: "z"}: {"moved"},
		})

		_, err = write(st.Store, up("deleted", "c")) // re-created after the delete
		require.NoError(t, err)

		// A server from before heads writes "moved" again (a rolling upgrade): it appends the
		// event and moves the indexes, and leaves the head one event behind.
		seq, err := e.Rdb.Incr(ctx, "as:{"+p.ID+"}:seq").Result()
		require.NoError(t, err)
		require.NoError(t, e.Rdb.XAdd(ctx, &redis.XAddArgs{Stream: "as:{" + p.ID + "}:state:moved", ID: fmt.Sprint(seq) + "-0",
			Values: []string{"type", "upsert", "id", core.NewID(), "agent_id", "old", "data", "{}", "metadata", "",
				"tags", `["q"]`, "idempotency_key", "", "version", "3", "created_at", "1000", "state_created_at", "1000",
				"fencing_token", ""}}).Err())
		for _, ix := range []string{"idx:live", "idx:agent:old", "idx:tag:q"} {
			require.NoError(t, e.Rdb.ZAdd(ctx, "as:{"+p.ID+"}:"+ix, redis.Z{Score: float64(seq), Member: "moved"}).Err())
		}
		for _, ix := range []string{"idx:agent:b", "idx:tag:y", "idx:tag:z"} {
			require.NoError(t, e.Rdb.ZRem(ctx, "as:{"+p.ID+"}:"+ix, "moved").Err())
		}
		three := int64(3)
		m = up("moved", "b", "y")
		m.ExpectedVersion = &three
		ev, err = write(st.Store, m)
		require.NoError(t, err, "the version guard sees the event the head missed")
		assert.EqualValues(t, 4, ev.Version)
		for _, ix := range []string{"idx:agent:old", "idx:tag:q"} {
			n, err := e.Rdb.ZCard(ctx, "as:{"+p.ID+"}:"+ix).Result()
			require.NoError(t, err)
			assert.Zero(t, n, "%s keeps no key the head did not know of", ix)
		}

		for _, k := range []string{"moved", "deleted"} {
			h, err := e.Rdb.HGetAll(ctx, head(k)).Result()
			require.NoError(t, err)
			evs, err := e.Store.StateEventsAt(ctx, p.ID, []string{k}, 0, 0)
			require.NoError(t, err)
			last := evs[0]
			tags, _ := json.Marshal(last.Tags)
			assert.Equal(t, map[string]string{
				"type": last.EventType, "version": fmt.Sprint(last.Version), "agent_id": last.AgentID,
				"tags": string(tags), "created_at": fmt.Sprint(last.CreatedAt),
				"state_created_at": fmt.Sprint(last.StateCreatedAt),
			}, h, "the head of %s repeats its last event", k)
		}
	})
}

// A write script sent again with the same event id (go-redis resends it when the reply was
// lost) answers with the event it wrote, even when other writes to the key came in between
// and however the replicas' clocks differ; it never writes a second event.
func TestResentWriteFindsItsEventAfterOtherWrites(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		p := testenv.NewProject(t, e.App(t))
		ctx := context.Background()
		m := func(now int64, agent string) core.StateMutation {
			return core.StateMutation{Op: core.EventUpsert, Key: "k", EventID: core.NewID(), AgentID: agent,
				Data: json.RawMessage(`{}`), Tags: []string{}, NowMs: now, Writer: core.LeaseWriter{FullAccess: true}}
		}
		for _, tc := range []struct {
			name         string
			first, other int64 // the clocks of the resent request and of the one in between
		}{{"same ms", 1000, 1000}, {"later clock between", 1000, 5000}, {"earlier clock between", 9000, 2000}} {
			first := m(tc.first, "a")
			want, _, err := e.Store.MutateState(ctx, p.ID, first)
			require.NoError(t, err)
			_, _, err = e.Store.MutateState(ctx, p.ID, m(tc.other, "b"))
			require.NoError(t, err)
			got, replayed, err := e.Store.MutateState(ctx, p.ID, first) // the resend
			require.NoError(t, err, tc.name)
			assert.False(t, replayed, tc.name)
			assert.Equal(t, want, got, tc.name)
		}
		evs, err := e.Store.StateEvents(ctx, p.ID, "k", 0, 100)
		require.NoError(t, err)
		assert.Len(t, evs, 6, "one event per request")
	})
}

// assertIndexes checks the keys each of project's indexes holds (nil: none), in sorted order.
func assertIndexes(t *testing.T, st *redisstore.Store, project string, want map[core.StateIndex][]string) {
	t.Helper()
	for idx, keys := range want {
		got, err := st.IndexedKeys(context.Background(), project, idx, 0, 100)
		require.NoError(t, err)
		var have []string
		for _, k := range got {
			have = append(have, k.Key)
		}
		sort.Strings(have)
		assert.Equal(t, keys, have, "index %v", idx)
	}
}
