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

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
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

// benchStore is one store under benchmark.
type benchStore struct {
	name string
	open func(b *testing.B) redis.UniversalClient // skips the benchmark when unavailable
}

var benchStores = []benchStore{
	{"redis", func(b *testing.B) redis.UniversalClient {
		opts, err := redis.ParseURL(testenv.RedisURL())
		if err != nil {
			b.Fatalf("AGENTSTATE_TEST_REDIS_URL: %v", err)
		}
		opts.PoolSize = 2 * benchConcurrency
		rdb := redis.NewClient(opts)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := rdb.Ping(ctx).Err(); err != nil {
			_ = rdb.Close()
			b.Skipf("real Redis at %s not answering (%v): skipped", testenv.RedisURL(), err)
		}
		b.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}},
	{"embedded", func(b *testing.B) redis.UniversalClient {
		mr := miniredis.RunT(b)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: 2 * benchConcurrency})
		b.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}},
}

// benchProject creates a fresh project with a full-access key (testenv.NewProject, which takes
// a *testing.T) and deletes everything it wrote when the benchmark ends.
func benchProject(b *testing.B, rdb redis.UniversalClient) (*app.App, core.Principal) {
	b.Helper()
	ctx := context.Background()
	a := app.New(redisstore.New(rdb), core.SystemClock{}, core.DefaultLimits())
	id := "b_" + core.NewID()
	key, err := a.Auth.CreateProjectWithKey(ctx, core.Project{ID: id, Name: b.Name()}, "")
	if err != nil {
		b.Fatalf("create project: %v", err)
	}
	p, err := a.Auth.Authenticate(ctx, key.Key)
	if err != nil {
		b.Fatalf("authenticate: %v", err)
	}
	b.Cleanup(func() { dropProject(b, rdb, id, key.Key) })
	return a, p
}

// dropProject removes a benchmark project's keys. SCAN is fine here: this is test cleanup, not
// a request path. The loop is bounded by the number of SCAN calls.
func dropProject(b *testing.B, rdb redis.UniversalClient, id, rawKey string) {
	ctx := context.Background()
	var cursor uint64
	for range 1_000_000 {
		keys, next, err := rdb.Scan(ctx, cursor, "as:{"+id+"}:*", 1000).Result()
		if err != nil {
			b.Logf("cleanup of project %s: %v", id, err)
			return
		}
		if len(keys) > 0 {
			rdb.Unlink(ctx, keys...)
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	rdb.Unlink(ctx, "as:cred:"+core.SHA256Hex([]byte(rawKey)))
	rdb.ZRem(ctx, "as:projects", id)
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
	for _, st := range benchStores {
		b.Run(st.name+"/c1", func(b *testing.B) {
			a, p := benchProject(b, st.open(b))
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
		b.Run(st.name+"/c32", func(b *testing.B) {
			a, p := benchProject(b, st.open(b))
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
	for _, st := range benchStores {
		setup := func(b *testing.B) (*app.App, core.Principal) {
			a, p := benchProject(b, st.open(b))
			for i := range uint64(benchKeys) {
				if err := putOnce(context.Background(), a, p, benchKey(i), data); err != nil {
					b.Fatal(err)
				}
			}
			return a, p
		}
		b.Run(st.name+"/c1", func(b *testing.B) {
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
		b.Run(st.name+"/c32", func(b *testing.B) {
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
	rdb := benchStores[0].open(b)
	a, p := benchProject(b, rdb)
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
