package rest_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// BenchmarkPutUnderWatchers measures what idle watchers cost everyone else: with 0, 1, 400 and
// 2,000 SSE watches open on one project (the shape: 2,000 made PUTs take 5–8 s when
// every watch held its own blocking Redis read), it makes 200 PUTs over HTTP, 5 ms apart, and
// reports PUT latency p50/p99, delivery latency p50/p99 (PUT sent → frame read by the client),
// Redis connections held (both pools) and CPU per PUT — each also as a ratio against the floor
// measured in the same run (0 watchers for PUTs and CPU, 1 watcher for delivery), since
// absolute times on a shared machine mean little. Nothing is asserted on time.
//
//	go test ./rest -run '^$' -bench PutUnderWatchers -benchtime 1x
func BenchmarkPutUnderWatchers(b *testing.B) {
	for _, st := range testenv.Stores {
		b.Run(st.Name, func(b *testing.B) {
			e, blocking := st.Open(b).WithOwnClients(b)
			a := app.New(e.Store, core.SystemClock{}, core.DefaultLimits())
			ts := httptest.NewServer(a.NewHandler(0))
			b.Cleanup(ts.Close)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 3000, MaxConnsPerHost: 0}}
			var floorPut, floorDeliver, floorCPU float64
			for _, watchers := range []int{0, 1, 400, 2000} {
				p := testenv.NewProject(b, a)
				r := runWatchers(b, ts.URL, client, p.Key, watchers)
				conns := testenv.PoolConns(e.Rdb) + testenv.PoolConns(blocking)
				if watchers == 0 {
					floorPut, floorCPU = r.put(0.99), r.cpuPerPut
				}
				if watchers == 1 {
					floorDeliver = r.deliver(0.99)
				}
				n := strconv.Itoa(watchers)
				b.ReportMetric(r.put(0.5), "put_p50_ms/w"+n)
				b.ReportMetric(r.put(0.99), "put_p99_ms/w"+n)
				b.ReportMetric(r.put(0.99)/floorPut, "put_p99_x_floor/w"+n)
				b.ReportMetric(r.cpuPerPut/floorCPU, "cpu_per_put_x_floor/w"+n)
				b.ReportMetric(float64(conns), "redis_conns/w"+n)
				if watchers > 0 {
					b.ReportMetric(r.deliver(0.5), "deliver_p50_ms/w"+n)
					b.ReportMetric(r.deliver(0.99), "deliver_p99_ms/w"+n)
					b.ReportMetric(r.deliver(0.99)/floorDeliver, "deliver_p99_x_floor/w"+n)
				}
			}
		})
	}
}

type watchRun struct {
	puts, delivers []time.Duration
	cpuPerPut      float64 // process CPU (user+system) per PUT, ms
}

func quantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000
}
func (r watchRun) put(q float64) float64     { return quantile(r.puts, q) }
func (r watchRun) deliver(q float64) float64 { return quantile(r.delivers, q) }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runWatchers opens watchers SSE watches, makes the PUTs, and waits until every watcher has
// every event (exactly once, in order).
func runWatchers(b *testing.B, base string, client *http.Client, key string, watchers int) watchRun {
	const puts = 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make([][]time.Time, watchers)
	var ready, done sync.WaitGroup
	for w := range watchers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/states/watch", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Errorf("watch %d: %v %v", w, err, resp)
				ready.Done()
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			first := true
			for sc.Scan() {
				line := sc.Text()
				if first && line == "event: ping" {
					first = false
					ready.Done()
				}
				if id, ok := strings.CutPrefix(line, "id: "); ok {
					if id != strconv.Itoa(len(got[w])+1) {
						b.Errorf("watch %d: event %s after %d", w, id, len(got[w]))
						return
					}
					if got[w] = append(got[w], time.Now()); len(got[w]) == puts {
						return
					}
				}
			}
		}()
	}
	ready.Wait()
	time.Sleep(300 * time.Millisecond) // every watch settles into waiting
	var r watchRun
	sent := make([]time.Time, puts)
	cpu0 := cpuTime()
	for i := range puts {
		req, _ := http.NewRequest("PUT", base+"/api/v1/states/k"+strconv.Itoa(i%10), bytes.NewReader([]byte(`{"agent_id":"w","data":{"n":1}}`)))
		req.Header.Set("Authorization", "Bearer "+key)
		sent[i] = time.Now()
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("PUT %d: %v %v", i, err, resp)
		}
		_ = resp.Body.Close()
		r.puts = append(r.puts, time.Since(sent[i]))
		time.Sleep(5 * time.Millisecond)
	}
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		b.Fatalf("%d watchers did not all receive %d events within 60s", watchers, puts)
	}
	r.cpuPerPut = float64((cpuTime() - cpu0).Microseconds()) / 1000 / puts
	for _, g := range got {
		for i, at := range g {
			r.delivers = append(r.delivers, at.Sub(sent[i]))
		}
	}
	return r
}
