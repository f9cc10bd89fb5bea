package core_test

// Benchmarks of the States service called directly (no HTTP) over the Redis store, against the
// real Redis of testenv.RedisURL() and the embedded miniredis. Benchmarks run only with -bench;
// the "redis" half skips when Redis does not answer. Each benchmark writes into a fresh project
// and removes that project's keys afterwards.
//
//	go test ./core -run '^$' -bench . -benchmem
//	go test ./core -run '^$' -bench StateMemory -benchtime 10000x   # bytes of Redis per state

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

const (
	benchDataBytes   = 1024 // size of the data object of every benchmark write
	benchKeys        = 1000 // distinct state keys the benchmarks cycle through
	benchConcurrency = 32   // goroutines of the parallel benchmarks, as a fleet of agents
)

// benchData is a JSON object of exactly n bytes.
func benchData(n int) json.RawMessage {
	const head, tail = `{"pad":"`, `"}`
	return json.RawMessage(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

// benchProject opens a store and a fresh project on it; the project is removed afterwards.
func benchProject(b *testing.B, st testenv.Store) (*app.App, core.Principal) {
	a := st.Open(b).App(b)
	return a, testenv.NewProject(b, a).P
}

// parallel32 makes b.RunParallel use benchConcurrency goroutines whatever GOMAXPROCS is.
func parallel32(b *testing.B) {
	b.SetParallelism((benchConcurrency + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
}

func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "req/s")
	}
}

func benchKey(i uint64) string { return "bench-" + strconv.FormatUint(i%benchKeys, 10) }

func putOnce(ctx context.Context, a *app.App, p core.Principal, key string, data json.RawMessage) error {
	_, _, err := a.States.Put(ctx, p, core.PutState{Key: key, Body: core.StateWrite{AgentID: "bench", Data: data}})
	return err
}

// BenchmarkStatePut measures States.Put of a 1 KiB object: validation, compaction and one
// mutate_state.lua round trip.
func BenchmarkStatePut(b *testing.B) {
	data := benchData(benchDataBytes)
	for _, st := range testenv.Stores {
		b.Run(st.Name+"/c1", func(b *testing.B) {
			a, p := benchProject(b, st)
			ctx := context.Background()
			var i uint64
			b.SetBytes(benchDataBytes)
			for b.Loop() {
				if err := putOnce(ctx, a, p, benchKey(i), data); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportRate(b)
		})
		b.Run(st.Name+"/c32", func(b *testing.B) {
			a, p := benchProject(b, st)
			ctx := context.Background()
			var next, failed atomic.Uint64
			b.SetBytes(benchDataBytes)
			parallel32(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := putOnce(ctx, a, p, benchKey(next.Add(1)), data); err != nil && failed.Add(1) == 1 {
						b.Error(err)
					}
				}
			})
			reportRate(b)
		})
	}
}

// BenchmarkStateGet measures States.Get of a current 1 KiB state (one XREVRANGE round trip).
func BenchmarkStateGet(b *testing.B) {
	data := benchData(benchDataBytes)
	for _, st := range testenv.Stores {
		setup := func(b *testing.B) (*app.App, core.Principal) {
			a, p := benchProject(b, st)
			for i := range uint64(benchKeys) {
				if err := putOnce(context.Background(), a, p, benchKey(i), data); err != nil {
					b.Fatal(err)
				}
			}
			return a, p
		}
		b.Run(st.Name+"/c1", func(b *testing.B) {
			a, p := setup(b)
			ctx := context.Background()
			var i uint64
			for b.Loop() {
				if _, err := a.States.Get(ctx, p, benchKey(i), core.At{}); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportRate(b)
		})
		b.Run(st.Name+"/c32", func(b *testing.B) {
			a, p := setup(b)
			ctx := context.Background()
			var next, failed atomic.Uint64
			parallel32(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := a.States.Get(ctx, p, benchKey(next.Add(1)), core.At{}); err != nil && failed.Add(1) == 1 {
						b.Error(err)
					}
				}
			})
			reportRate(b)
		})
	}
}

// BenchmarkStateMemory writes b.N distinct states of 1 KiB (one write each) into a fresh
// project on real Redis and reports the Redis memory they take: the sum of MEMORY USAGE over
// all of the project's keys (record, event, log and indexes) per state, and the change of INFO
// used_memory per state (noisy when other clients write to the same Redis meanwhile). Run it
// with a fixed count: -benchtime 10000x.
func BenchmarkStateMemory(b *testing.B) {
	e := testenv.Stores[0].Open(b)
	rdb := e.Rdb
	a := e.App(b)
	p := testenv.NewProject(b, a).P
	ctx := context.Background()
	data := benchData(benchDataBytes)
	before := usedMemory(b, rdb)
	n := 0
	for b.Loop() {
		if err := putOnce(ctx, a, p, fmt.Sprintf("mem-%d", n), data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	after := usedMemory(b, rdb)
	var sum, keys int64
	parts := map[string]int64{} // by kind of key: state (record + events), log, idx, other
	var cursor uint64
	for range 1_000_000 {
		batch, next, err := rdb.Scan(ctx, cursor, "as:{"+p.ProjectID+"}:*", 1000).Result()
		if err != nil {
			b.Fatal(err)
		}
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(batch))
		for i, k := range batch {
			cmds[i] = pipe.MemoryUsage(ctx, k, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		for i, c := range cmds {
			sum += c.Val()
			parts[keyKind(batch[i])] += c.Val()
		}
		keys += int64(len(batch))
		if cursor = next; cursor == 0 {
			break
		}
	}
	b.ReportMetric(float64(sum)/float64(n), "B/state")
	for kind, v := range parts {
		b.ReportMetric(float64(v)/float64(n), kind+"_B/state")
	}
	b.ReportMetric(float64(after-before)/float64(n), "used_memory_B/state")
	b.ReportMetric(float64(keys), "keys")
}

// keyKind groups a project key for the memory breakdown: "as:{p}:state:k" is "state".
func keyKind(k string) string {
	_, rest, _ := strings.Cut(k, "}:")
	kind, _, _ := strings.Cut(rest, ":")
	switch kind {
	case "state", "log", "idx":
		return kind
	}
	return "other"
}

func usedMemory(b *testing.B, rdb redis.UniversalClient) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}

// BenchmarkStateHistoryDepth measures a PUT, a GET and a GET with at_time near the start of
// the history on a key that already has 1, 1,000 and 100,000 events (real Redis only: the
// embedded store would take minutes to build the deep history). None of the three may grow
// with depth.
//
//	go test ./core -run '^$' -bench StateHistoryDepth -benchtime 2000x
func BenchmarkStateHistoryDepth(b *testing.B) {
	data := benchData(benchDataBytes)
	for _, depth := range []int{1, 1_000, 100_000} {
		b.Run(strconv.Itoa(depth), func(b *testing.B) {
			e := testenv.Stores[0].Open(b)
			a := e.App(b)
			p := testenv.NewProject(b, a).P
			ctx := context.Background()
			first, err := deepHistory(ctx, a, p, e.Clock, depth, data)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("put", func(b *testing.B) {
				for b.Loop() {
					if err := putOnce(ctx, a, p, "deep", data); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("get", func(b *testing.B) {
				for b.Loop() {
					if _, err := a.States.Get(ctx, p, "deep", core.At{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("get-at-time", func(b *testing.B) {
				for b.Loop() {
					if _, err := a.States.Get(ctx, p, "deep", core.At{Time: first}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// deepHistory writes depth events on key "deep" (from 8 writers) and returns the time of the
// first, which the clock then leaves behind so that at_time=first must reach back to it.
func deepHistory(ctx context.Context, a *app.App, p core.Principal, clock *testenv.Clock, depth int, data json.RawMessage) (int64, error) {
	if err := putOnce(ctx, a, p, "deep", data); err != nil {
		return 0, err
	}
	st, err := a.States.Get(ctx, p, "deep", core.At{})
	if err != nil {
		return 0, err
	}
	var next atomic.Int64
	next.Store(1)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for next.Add(1) <= int64(depth) {
				clock.Advance(time.Millisecond)
				if err := putOnce(ctx, a, p, "deep", data); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	return st.UpdatedAt, nil
}
