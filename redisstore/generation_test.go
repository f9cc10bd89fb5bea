package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
)

// A generation's floor puts sequences and fencing tokens at 16 digits, where Lua writes a
// number as "1.8e+15": every place a script turns one into text (stream ids, the fencing token
// of a write under a lease, time travel's binary search) must keep it exact, on real Redis and
// on the embedded store. The floor is set on the store directly: adopting a generation would
// write as:generation on the shared Redis.
func TestGenerationFloorKeepsNumbersExact(t *testing.T) {
	for name, rdb := range scriptStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			p := scratchProject(t, rdb, "t_floor_")
			s := New(rdb)
			put := func(now int64, lease string, token *int64) core.StateEvent {
				t.Helper()
				ev, _, err := s.MutateState(ctx, p, core.StateMutation{Op: core.EventUpsert, Key: "k", EventID: core.NewID(),
					AgentID: "a", Data: json.RawMessage(`{}`), Tags: []string{}, LeaseID: lease, FencingToken: token, NowMs: now,
					Writer: core.LeaseWriter{CredentialID: "c", FullAccess: true}})
				require.NoError(t, err)
				return ev
			}
			acquire := func(now int64) core.Lease {
				t.Helper()
				res, err := s.AcquireLease(ctx, p, core.LeaseAttempt{ID: core.NewID(), Key: "k", Holder: "h", OwnerChain: []string{"c"}, TTLMs: 60000, NowMs: now})
				require.NoError(t, err)
				require.True(t, res.Granted)
				return res.Lease
			}
			assert.EqualValues(t, 1, put(1000, "", nil).Sequence)
			assert.EqualValues(t, 2, put(2000, "", nil).Sequence)
			first := acquire(2000)
			assert.EqualValues(t, 1, first.FencingToken, "floor 0: tokens start at 1")
			_, err := s.EndLease(ctx, p, first, 2000, core.LeaseReleased, "", nil)
			require.NoError(t, err)

			floor := time.Now().UnixMicro()
			s.gen.adopted.Store(&genValue{raw: "g/" + strconv.FormatInt(floor, 10) + "/f", floor: floor})
			l := acquire(3000)
			assert.Equal(t, floor, l.FencingToken, "a new generation's first token is its floor")
			ev := put(3000, l.ID, nil)
			assert.Equal(t, floor, ev.Sequence, "a new generation's first sequence is its floor")
			require.NotNil(t, ev.FencingToken)
			assert.Equal(t, floor, *ev.FencingToken, "the write under the lease records its token exactly")
			ev = put(4000, l.ID, &l.FencingToken)
			assert.Equal(t, floor+1, ev.Sequence)
			ids, err := rdb.XRange(ctx, stateKey(p, "k"), "-", "+").Result()
			require.NoError(t, err)
			require.Len(t, ids, 4)
			assert.Equal(t, strconv.FormatInt(floor, 10)+"-0", ids[2].ID)
			at, err := s.StateEventsAt(ctx, p, []string{"k"}, 0, 2500)
			require.NoError(t, err)
			require.NotNil(t, at[0])
			assert.EqualValues(t, 2, at[0].Sequence, "time travel searches across the jump")
			at, err = s.StateEventsAt(ctx, p, []string{"k"}, 0, 3500)
			require.NoError(t, err)
			assert.Equal(t, floor, at[0].Sequence)
		})
	}
}

// A state write refuses, writing nothing, when the project's counter is below a sequence this
// store has seen issued; from then on the store refuses every command.
func TestWriteRefusedWhenTheCounterWentBack(t *testing.T) {
	for name, rdb := range scriptStores(t) {
		for _, restored := range []string{"1", ""} { // "": the counter gone
			t.Run(name+"/counter="+restored, func(t *testing.T) {
				ctx := context.Background()
				p := scratchProject(t, rdb, "t_back_")
				own := redis.NewClient(rdb.(*redis.Client).Options()) // the store that counts as reset
				t.Cleanup(func() { _ = own.Close() })
				s := New(own)
				put := func() error {
					_, _, err := s.MutateState(ctx, p, core.StateMutation{Op: core.EventUpsert, Key: "k", EventID: core.NewID(),
						AgentID: "a", Data: json.RawMessage(`{}`), Tags: []string{}, NowMs: 1000})
					return err
				}
				for range 3 {
					require.NoError(t, put())
				}
				if restored == "" { // what a flush of the project does
					require.NoError(t, rdb.Del(ctx, seqKey(p)).Err())
				} else { // what a restore does
					require.NoError(t, rdb.Set(ctx, seqKey(p), restored, 0).Err())
				}
				err := put()
				require.True(t, core.IsCode(err, core.CodeStoreReset), "%v", err)
				below := "is " + cmp.Or(restored, "0") + ", below sequence 3"
				assert.Contains(t, err.Error(), below)
				after, err := rdb.Get(ctx, seqKey(p)).Result()
				if restored == "" {
					assert.ErrorIs(t, err, redis.Nil, "the counter left gone")
				} else {
					require.NoError(t, err)
					assert.Equal(t, restored, after, "the counter put back")
				}
				n, err := rdb.XLen(ctx, stateKey(p, "k")).Result()
				require.NoError(t, err)
				assert.EqualValues(t, 3, n, "nothing written")
				_, err = s.WatchBounds(ctx, p)
				require.True(t, core.IsCode(err, core.CodeStoreReset), "every command refused: %v", err)
				err = s.CheckGeneration(ctx)
				require.True(t, core.IsCode(err, core.CodeStoreReset), "%v", err)
				assert.Contains(t, err.Error(), below, "the generation check reports why")
			})
		}
	}
}
