package rest_test

// Benchmark of the REST lease routes end to end: the real handler (app.NewHandler) on an
// httptest loopback server and a net/http keep-alive client, against the real Redis of
// testenv.RedisURL() and the embedded miniredis; the "redis" half skips when Redis does not
// answer. Each run works in a fresh project whose keys are removed afterwards.
//
//	go test ./rest -run '^$' -bench 'RESTLease(Cycle|Handoff4)' -benchtime 2s

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/internal/testenv"
)

// BenchmarkRESTLeaseCycle measures an uncontended acquire + release over HTTP, one client
// goroutine, two requests per op: POST /states/{key}/lease {holder, ttl_ms: 30000} → 201, then
// DELETE /leases/{id} → 204. It cycles over benchKeys keys, so no acquire meets a held lease
// or a waiter. On real Redis it also reports redis_cmds/op, the
// change of the server-wide INFO total_commands_processed per op (commands inside Lua scripts
// included; other clients of the same Redis inflate it).
func BenchmarkRESTLeaseCycle(b *testing.B) {
	for _, st := range testenv.Stores {
		b.Run(st.Name, func(b *testing.B) {
			e := st.Open(b)
			s := newBenchServer(b, testenv.Store{Name: st.Name, Open: func(testing.TB) *testenv.Env { return e }})
			body := []byte(`{"holder":"bench","ttl_ms":30000}`)
			before := totalCommands(b, e.Rdb, st.Name)
			var i uint64
			for b.Loop() {
				out, err := s.do(http.MethodPost, "/states/"+benchKey(i)+"/lease", body, http.StatusCreated)
				if err != nil {
					b.Fatal(err)
				}
				var l struct{ ID string }
				if err := json.Unmarshal(out, &l); err != nil || l.ID == "" {
					b.Fatalf("acquire answered %s (%v)", out, err)
				}
				if _, err := s.do(http.MethodDelete, "/leases/"+l.ID, nil, http.StatusNoContent); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if sec := b.Elapsed().Seconds(); sec > 0 {
				b.ReportMetric(float64(b.N)/sec, "cycles/s")
			}
			if before >= 0 && b.N > 0 {
				after := totalCommands(b, e.Rdb, st.Name)
				b.ReportMetric(float64(after-before-1)/float64(b.N), "redis_cmds/op")
			}
		})
	}
}

// BenchmarkRESTLeaseHandoff4 has four HTTP clients contend for one key: each op is one
// hand-off, POST /states/hot/lease {wait_ms} (queued first come first served) → 201, then at
// once DELETE /leases/{id} → 204. handoff_p50_us / handoff_p99_us time each hand-off from the
// moment the previous holder sends its DELETE to the moment the next holder's 201 arrives.
func BenchmarkRESTLeaseHandoff4(b *testing.B) {
	for _, st := range testenv.Stores {
		b.Run(st.Name, func(b *testing.B) {
			s := newBenchServer(b, st)
			body := []byte(`{"holder":"bench","ttl_ms":30000,"wait_ms":20000}`)
			var next, released atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			var failed sync.Once
			fail := func(err error) { failed.Do(func() { b.Error(err) }) }
			b.ResetTimer()
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						out, err := s.do(http.MethodPost, "/states/hot/lease", body, http.StatusCreated)
						if err != nil {
							fail(err)
							return
						}
						if r := released.Load(); r != 0 {
							mu.Lock()
							lat = append(lat, time.Duration(time.Now().UnixNano()-r))
							mu.Unlock()
						}
						var l struct{ ID string }
						if err := json.Unmarshal(out, &l); err != nil || l.ID == "" {
							fail(fmt.Errorf("acquire answered %s (%v)", out, err))
							return
						}
						released.Store(time.Now().UnixNano())
						if _, err := s.do(http.MethodDelete, "/leases/"+l.ID, nil, http.StatusNoContent); err != nil {
							fail(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if sec := b.Elapsed().Seconds(); sec > 0 {
				b.ReportMetric(float64(b.N)/sec, "handoffs/s")
			}
			testenv.ReportPercentiles(b, "handoff", lat)
		})
	}
}

// totalCommands is Redis's INFO total_commands_processed, or -1 on the embedded store (miniredis
// does not keep it).
func totalCommands(b *testing.B, rdb redis.UniversalClient, store string) int64 {
	if store != "redis" {
		return -1
	}
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
	return -1
}
