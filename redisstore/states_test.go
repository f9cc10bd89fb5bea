package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
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
