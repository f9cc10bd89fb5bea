package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// TestLeaseRandomizedContention: workers contend for a few keys with random TTLs, random
// waits, random cancellations and random holding times, while the service clock jumps forward
// (so leases expire under their holders, who keep writing) and a sweeper runs. Afterwards:
//   - no write was accepted from a superseded holder: none started after a higher token of its
//     key had been handed out;
//   - fencing tokens of each key strictly increase in grant order, with no gap or repeat;
//   - waiters seen queued in some order were granted in that order;
//   - no acquire returned later than its wait_ms (plus a scheduling allowance).
func TestLeaseRandomizedContention(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx := context.Background()
		seed := time.Now().UnixNano()
		t.Logf("seed %d", seed)
		keys := []string{"r/0", "r/1", "r/2"}
		const workers, rounds = 10, 15

		var mu sync.Mutex
		granted := map[string]time.Time{} // "<key>#<token>" -> when the acquire returned
		type write struct {
			key     string
			token   int64
			started time.Time
		}
		var accepted []write
		var overdue []string

		stop := make(chan struct{})
		var bg sync.WaitGroup
		// The clock jumps forward; a sweeper ends due leases (and wakes their waiters).
		bg.Add(1)
		go func() {
			defer bg.Done()
			r := rand.New(rand.NewPCG(uint64(seed), 1))
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(1+r.IntN(4)) * time.Millisecond):
				}
				e.Clock.Advance(time.Duration(r.IntN(1500)) * time.Millisecond)
				_, _ = a.Leases.Sweep(ctx)
			}
		}()
		// An observer records which waiters it saw queued ahead of which.
		ahead := map[[2]string]bool{}
		bg.Add(1)
		go func() {
			defer bg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				for _, k := range keys {
					q, err := e.Rdb.ZRange(ctx, "as:{"+p.ID+"}:leaseq:"+k, 0, -1).Result()
					if err != nil {
						continue
					}
					mu.Lock()
					for i := range q {
						for j := i + 1; j < len(q); j++ {
							ahead[[2]string{q[i], q[j]}] = true
						}
					}
					mu.Unlock()
				}
			}
		}()

		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(seed), uint64(w+2)))
				for round := range rounds {
					key := keys[r.IntN(len(keys))]
					ttl := int64(1000 + r.IntN(2000))
					wait := int64(r.IntN(300))
					actx, cancel := context.WithCancel(ctx)
					if r.IntN(5) == 0 {
						time.AfterFunc(time.Duration(r.IntN(50))*time.Millisecond, cancel)
					}
					start := time.Now()
					l, err := a.Leases.Acquire(actx, p.P, key, core.AcquireLease{Holder: fmt.Sprint("w", w), TTLMs: &ttl, WaitMs: &wait})
					took := time.Since(start)
					cancel()
					if took > time.Duration(wait)*time.Millisecond+2*time.Second {
						mu.Lock()
						overdue = append(overdue, fmt.Sprintf("w%d round %d waited %s for wait_ms=%d", w, round, took, wait))
						mu.Unlock()
					}
					if err != nil {
						if !core.IsCode(err, core.CodeLeaseConflict) && actx.Err() == nil {
							t.Errorf("acquire: %v", err)
						}
						continue
					}
					mu.Lock()
					granted[key+"#"+strconv.FormatInt(l.FencingToken, 10)] = time.Now()
					mu.Unlock()
					// Hold it for a while, writing under it; the clock may move past its expiry
					// meanwhile, and then these writes must start failing.
					for i := range 1 + r.IntN(4) {
						time.Sleep(time.Duration(r.IntN(6)) * time.Millisecond)
						started := time.Now()
						_, _, err := a.States.Put(ctx, p.P, core.PutState{Key: key, Body: core.StateWrite{
							AgentID: fmt.Sprint("w", w), Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)),
							LeaseID: l.ID, FencingToken: &l.FencingToken,
						}})
						if err == nil {
							mu.Lock()
							accepted = append(accepted, write{key, l.FencingToken, started})
							mu.Unlock()
						} else if !core.IsCode(err, core.CodeLeaseConflict) && !core.IsCode(err, core.CodeLeaseExpired) &&
							!core.IsCode(err, core.CodeStaleFencingToken) {
							t.Errorf("write under lease: %v", err)
						}
					}
					if r.IntN(4) > 0 { // sometimes the holder just walks away and the lease expires
						if err := a.Leases.Release(ctx, p.P, l.ID); err != nil && !core.IsCode(err, core.CodeNotFound) {
							t.Errorf("release: %v", err)
						}
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		bg.Wait()

		assert.Empty(t, overdue, "acquires that outlived their wait_ms")
		// No accepted write started after a higher token of its key was handed out.
		for _, wr := range accepted {
			for tok := wr.token + 1; ; tok++ {
				at, ok := granted[wr.key+"#"+strconv.FormatInt(tok, 10)]
				if !ok {
					break
				}
				assert.False(t, wr.started.After(at), "%s: a write with token %d started after token %d was granted", wr.key, wr.token, tok)
			}
		}
		// Tokens per key strictly increase in grant order, 1, 2, 3, ...; the order of grants
		// respects every queue order the observer saw.
		evs, err := e.Rdb.XRange(ctx, "as:{"+p.ID+"}:lease-events", "-", "+").Result()
		require.NoError(t, err)
		last := map[string]int64{}
		grantPos := map[string]int{}
		for i, m := range evs {
			if m.Values["type"] != "acquired" {
				continue
			}
			k := m.Values["state_key"].(string)
			tok, _ := strconv.ParseInt(m.Values["fencing_token"].(string), 10, 64)
			assert.Equal(t, last[k]+1, tok, "%s: tokens go up by one per grant", k)
			last[k] = tok
			grantPos[m.Values["lease_id"].(string)] = i
		}
		total := 0
		for _, n := range last {
			total += int(n)
		}
		assert.Greater(t, total, workers, "the run granted leases")
		for pair := range ahead {
			pa, okA := grantPos[pair[0]]
			pb, okB := grantPos[pair[1]]
			if okA && okB {
				assert.Less(t, pa, pb, "waiter %s was queued ahead of %s but granted after it", pair[0], pair[1])
			}
		}
		// The state log agrees: accepted writes' tokens never go down.
		for _, k := range keys {
			page, err := a.States.Events(ctx, p.P, k, 0, 500)
			require.NoError(t, err)
			for i := 1; i < len(page.Data); i++ {
				assert.GreaterOrEqual(t, *page.Data[i].FencingToken, *page.Data[i-1].FencingToken, "%s: tokens never go down in write order", k)
			}
		}
		t.Logf("%d grants, %d accepted writes, %d queue orders observed", total, len(accepted), len(ahead))
	})
}
