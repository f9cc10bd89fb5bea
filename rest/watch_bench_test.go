package rest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

const watchers = 100

// BenchmarkWatchFanout100 opens 100 SSE watches on our real handler, then makes b.N writes
// through core, 2 ms apart; it reports the write-to-watcher latency (write returned → frame
// read by the client) over every (watcher, event) pair, and the server+client heap and
// goroutines each idle watch adds. Every watcher must see every event exactly once, in order.
//
//	go test ./rest -run '^$' -bench WatchFanout100 -benchtime 200x
func BenchmarkWatchFanout100(b *testing.B) {
	for _, st := range testenv.Stores {
		b.Run(st.Name, func(b *testing.B) {
			e := st.Open(b)
			// Each blocked watch holds a Redis connection: give the pool room for all of them.
			opts := e.Rdb.(*redis.Client).Options()
			opts.PoolSize = 2 * watchers
			rdb := redis.NewClient(opts)
			b.Cleanup(func() { _ = rdb.Close() })
			a := app.New(redisstore.New(rdb), core.SystemClock{}, core.DefaultLimits())
			p := testenv.NewProject(b, a)
			ts := httptest.NewServer(a.NewHandler(0))
			b.Cleanup(ts.Close)

			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			goBefore := runtime.NumGoroutine()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			received := make([][]time.Time, watchers)
			seqs := make([][]int64, watchers)
			var ready, done sync.WaitGroup
			for w := range watchers {
				ready.Add(1)
				done.Add(1)
				go func() {
					defer done.Done()
					req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/states/watch", nil)
					req.Header.Set("Authorization", "Bearer "+p.Key)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Error(err)
						ready.Done()
						return
					}
					defer resp.Body.Close()
					sc := bufio.NewScanner(resp.Body)
					first := true
					for sc.Scan() {
						line := sc.Text()
						if first && line == "event: ping" {
							ready.Done()
							first = false
						}
						if data, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(data, `"sequence"`) {
							var ev core.StateEvent
							_ = json.Unmarshal([]byte(data), &ev)
							received[w] = append(received[w], time.Now())
							seqs[w] = append(seqs[w], ev.Sequence)
							if len(seqs[w]) == b.N {
								return
							}
						}
					}
				}()
			}
			ready.Wait()
			time.Sleep(200 * time.Millisecond) // let every watch settle into its blocking read
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			goAfter := runtime.NumGoroutine()

			sent := make([]time.Time, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				_, _, err := a.States.Put(context.Background(), p.P, core.PutState{Key: fmt.Sprint("k", i%10),
					Body: core.StateWrite{AgentID: "w", Data: json.RawMessage(`{"n":1}`)}})
				if err != nil {
					b.Fatal(err)
				}
				sent = append(sent, time.Now())
				time.Sleep(2 * time.Millisecond)
			}
			finished := make(chan struct{})
			go func() { done.Wait(); close(finished) }()
			select {
			case <-finished:
			case <-time.After(30 * time.Second):
				b.Fatal("watchers did not receive every event within 30s")
			}
			b.StopTimer()
			var lat []time.Duration
			for w := range watchers {
				if len(seqs[w]) != b.N || slices.ContainsFunc(seqs[w][1:], func(s int64) bool { return s <= seqs[w][0] }) ||
					!slices.IsSortedFunc(seqs[w], func(x, y int64) int { return int(x - y) }) || seqs[w][b.N-1]-seqs[w][0] != int64(b.N-1) {
					b.Fatalf("watcher %d saw %d of %d events or out of order", w, len(seqs[w]), b.N)
				}
				for i, at := range received[w] {
					lat = append(lat, at.Sub(sent[i]))
				}
			}
			slices.Sort(lat)
			q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(1), "max-ms")
			b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/watchers/1024, "heap-KiB/watcher")
			b.ReportMetric(float64(goAfter-goBefore)/watchers, "goroutines/watcher")
		})
	}
}
