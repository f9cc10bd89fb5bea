package core_test

// Benchmarks of the Leases service called directly (no HTTP), against the real Redis of
// testenv.RedisURL() and the embedded miniredis; the "redis" half skips when Redis does not
// answer. Each run works in a fresh project whose keys are removed afterwards.
//
//	go test ./core -run '^$' -bench 'LeaseCycle|LeaseHandoff4' -benchtime 2s
//
// On real Redis they also report redis_cmds/op: the change of INFO total_commands_processed
// over the run divided by b.N. That counter is server-wide, so other clients of the same Redis
// inflate it; the number is exact only on a quiet Redis.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// BenchmarkLeaseCycle measures an uncontended acquire + release through core, one goroutine,
// cycling over benchKeys keys so no acquire meets a held lease or a waiter.
func BenchmarkLeaseCycle(b *testing.B) {
	for _, st := range testenv.Stores {
		b.Run(st.Name, func(b *testing.B) {
			a, p := benchProject(b, st)
			ctx := context.Background()
			cmds := startCommandCount(b, a.Store.Client(), st.Name)
			var i uint64
			for b.Loop() {
				l, err := a.Leases.Acquire(ctx, p, benchKey(i), core.AcquireLease{Holder: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				if err := a.Leases.Release(ctx, p, l.ID); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportRateAs(b, "cycles/s")
			cmds.report(b)
		})
	}
}

// BenchmarkLeaseHandoff4 has four workers contend for one key: each op is one hand-off, an
// Acquire with wait_ms (queued first come first served behind the others) followed at once by
// a Release, so the critical section is empty and the rate is what the hand-off itself costs.
// handoff_p50_us / handoff_p99_us time each hand-off from the moment the previous holder calls
// Release to the moment the next holder's Acquire returns: the release script, the wake-up
// over pub/sub and the woken waiter's acquire script.
func BenchmarkLeaseHandoff4(b *testing.B) {
	for _, st := range testenv.Stores {
		b.Run(st.Name, func(b *testing.B) {
			a, p := benchProject(b, st)
			ctx := context.Background()
			wait := int64(core.LeaseWaitMaxMs)
			var next, holders, released atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			var failed sync.Once
			fail := func(err error) { failed.Do(func() { b.Error(err) }) }
			cmds := startCommandCount(b, a.Store.Client(), st.Name)
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					holder := "w" + strconv.Itoa(w)
					for next.Add(1) <= int64(b.N) {
						l, err := a.Leases.Acquire(ctx, p, "hot", core.AcquireLease{Holder: holder, WaitMs: &wait})
						if err != nil {
							fail(err)
							return
						}
						if r := released.Load(); r != 0 {
							mu.Lock()
							lat = append(lat, time.Duration(time.Now().UnixNano()-r))
							mu.Unlock()
						}
						if n := holders.Add(1); n != 1 {
							fail(fmt.Errorf("%d holders of one key at once", n))
						}
						holders.Add(-1)
						released.Store(time.Now().UnixNano())
						if err := a.Leases.Release(ctx, p, l.ID); err != nil {
							fail(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			reportRateAs(b, "handoffs/s")
			testenv.ReportPercentiles(b, "handoff", lat)
			cmds.report(b)
		})
	}
}

func reportRateAs(b *testing.B, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
}

// commandCount reads Redis's INFO total_commands_processed before and after a run (real
// Redis only: miniredis does not keep it).
type commandCount struct {
	rdb    redis.UniversalClient
	before int64
}

func startCommandCount(b *testing.B, rdb redis.UniversalClient, store string) *commandCount {
	if store != "redis" {
		return nil
	}
	return &commandCount{rdb: rdb, before: totalCommands(b, rdb)}
}

func (c *commandCount) report(b *testing.B) {
	if c == nil || b.N == 0 {
		return
	}
	// Minus 1: the INFO call that reads "after" is counted in it.
	b.ReportMetric(float64(totalCommands(b, c.rdb)-c.before-1)/float64(b.N), "redis_cmds/op")
}

func totalCommands(b *testing.B, rdb redis.UniversalClient) int64 {
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("INFO stats has no total_commands_processed")
	return 0
}
