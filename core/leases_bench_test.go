package core_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// BenchmarkLeaseCycle measures an uncontended acquire + release through core.
func BenchmarkLeaseCycle(b *testing.B) {
	for _, st := range testenv.Stores {
		b.Run(st.Name, func(b *testing.B) {
			a, p := benchProject(b, st)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				l, err := a.Leases.Acquire(ctx, p, fmt.Sprint("task-", i%benchKeys), core.AcquireLease{Holder: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				if err := a.Leases.Release(ctx, p, l.ID); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportRate(b)
		})
	}
}

// BenchmarkLeaseHandoff32 has 32 workers queue on one key (wait_ms) and pass it along: each
// op is one hand-off (acquire after waiting, then release). Poll is 1 ms, so a waiter notices a
// release within about a millisecond.
func BenchmarkLeaseHandoff32(b *testing.B) {
	for _, st := range testenv.Stores {
		b.Run(st.Name, func(b *testing.B) {
			a, p := benchProject(b, st)
			a.Leases.Poll = benchPoll
			ctx := context.Background()
			wait := int64(60_000)
			work := make(chan struct{}, b.N)
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			b.ResetTimer()
			var wg sync.WaitGroup
			for range benchConcurrency {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						l, err := a.Leases.Acquire(ctx, p, "hot", core.AcquireLease{Holder: "w", WaitMs: &wait})
						if err != nil {
							b.Error(err)
							return
						}
						if err := a.Leases.Release(ctx, p, l.ID); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			reportRate(b)
		})
	}
}

// benchPoll is how often the hand-off benchmark's waiters look again (the server default is
// 20 ms; lower hands off faster and costs Redis more commands).
var benchPoll = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("AGENTSTATE_BENCH_POLL")); err == nil {
		return d
	}
	return time.Millisecond
}()
