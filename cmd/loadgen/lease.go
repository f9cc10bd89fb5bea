package main

// -compare -ops lease: lease hand-off over REST. N clients contend for one key, each looping
// POST /states/loadgen-hot/lease {wait_ms} (queued first come first served) → 201, then at once
// DELETE /leases/{id} → 204, so the critical section is empty and the rate is that of the
// hand-off itself. Beside it, in the same run: the same clients doing the same two requests
// uncontended (each client on a key of its own), and floor (a) answering two requests per
// cycle. The wait is the acquire's latency; the gap is from the previous holder sending its
// DELETE to the next holder's 201 arriving. A client that sees a second holder at once fails
// the run.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// leaseCycle is one client's loop body: acquire key (waiting up to waitMs), release.
type leaseCycle struct {
	c        *client
	url, key string
	// released is when some client last sent its DELETE (unix ns), for the hand-off gap;
	// holders counts clients holding the key, to catch a second holder.
	released, holders *atomic.Int64
}

// send makes one request and reads the whole answer.
func (c *client) send(ctx context.Context, method, u string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

var acquireBody = []byte(`{"holder":"loadgen","ttl_ms":30000,"wait_ms":20000}`)

// once runs one cycle; wait is the acquire's latency, gap the hand-off gap (0 if unknown).
func (lc leaseCycle) once(ctx context.Context) (wait, gap time.Duration, err error) {
	t0 := time.Now()
	code, b, err := lc.c.send(ctx, http.MethodPost, lc.url+"/api/v1/states/"+lc.key+"/lease", acquireBody)
	if err != nil {
		return 0, 0, err
	}
	if code != http.StatusCreated {
		return 0, 0, fmt.Errorf("acquire: %d %s", code, b)
	}
	now := time.Now()
	wait = now.Sub(t0)
	if lc.holders.Add(1) != 1 {
		return 0, 0, fmt.Errorf("two holders of %s at once", lc.key)
	}
	if r := lc.released.Load(); r > t0.UnixNano() { // the key was handed to this waiting client
		gap = time.Duration(now.UnixNano() - r)
	}
	var l struct{ ID string }
	if err := json.Unmarshal(b, &l); err != nil || l.ID == "" {
		return 0, 0, fmt.Errorf("acquire answered %s (%v)", b, err)
	}
	lc.holders.Add(-1)
	lc.released.Store(time.Now().UnixNano())
	// Released even when the run's deadline cut in: a lease left held would stall the next run.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	code, b, err = lc.c.send(rctx, http.MethodDelete, lc.url+"/api/v1/leases/"+l.ID, nil)
	if err == nil && code != http.StatusNoContent {
		err = fmt.Errorf("release: %d %s", code, b)
	}
	return wait, gap, err
}

// leaseRun is what one lease measurement saw.
type leaseRun struct {
	measurement
	cycles    int64
	wait, gap summary
}

// runLease runs conns clients for d: on one key (contended) or each on its own; with bare, the
// clients do floor (a)'s two-request cycle instead.
func runLease(rdb *redis.Client, t *target, d time.Duration, conns int, contended, bare bool) (leaseRun, error) {
	c := newClient(config{url: t.url, key: t.key, c: conns, size: len(`{"pad":""}`)}) // no PUT body
	cpu0, err := procCPU(t.cmd.Process.Pid)
	if err != nil {
		return leaseRun{}, err
	}
	r0, err := redisCounters(rdb)
	if err != nil {
		return leaseRun{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var waits, gaps []time.Duration
	var cycles atomic.Int64
	var firstErr error
	var wg sync.WaitGroup
	// Keys of this run only: an acquire cut off by the deadline may still have been granted.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	hot := leaseCycle{c: c, url: t.url, key: "loadgen-hot-" + run, released: new(atomic.Int64), holders: new(atomic.Int64)}
	start := time.Now()
	for w := range conns {
		lc := hot
		if !contended {
			lc.key, lc.released, lc.holders = "loadgen-own-"+run+"-"+strconv.Itoa(w), new(atomic.Int64), new(atomic.Int64)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var myWaits, myGaps []time.Duration
			for ctx.Err() == nil {
				var wait, gap time.Duration
				var err error
				if bare {
					wait, err = bareCycle(ctx, c, t.url)
				} else {
					wait, gap, err = lc.once(ctx)
				}
				if ctx.Err() != nil {
					break // cut off by the deadline: not a failure
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					break
				}
				cycles.Add(1)
				myWaits = append(myWaits, wait)
				if gap > 0 {
					myGaps = append(myGaps, gap)
				}
			}
			mu.Lock()
			waits, gaps = append(waits, myWaits...), append(gaps, myGaps...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return leaseRun{}, firstErr
	}
	cpu1, _ := procCPU(t.cmd.Process.Pid)
	r1, _ := redisCounters(rdb)
	n := float64(cycles.Load())
	if n == 0 {
		return leaseRun{}, fmt.Errorf("%s: no cycle completed", t.name)
	}
	out := leaseRun{cycles: cycles.Load(), wait: summarize([]*worker{{lat: waits}}), gap: summarize([]*worker{{lat: gaps}})}
	out.rate = n / elapsed.Seconds()
	out.serverCPU = (cpu1 - cpu0).Seconds() * 1e6 / n
	out.redisCPU = (r1.cpu - r0.cpu) * 1e6 / n
	out.redisCmds = float64(r1.calls-r0.calls) / n
	return out, nil
}

// bareCycle is floor (a)'s stand-in for a lease cycle: two requests it answers.
func bareCycle(ctx context.Context, c *client, url string) (time.Duration, error) {
	t0 := time.Now()
	for _, m := range []string{http.MethodPost, http.MethodDelete} {
		code, _, err := c.send(ctx, m, url+"/api/v1/states/loadgen-hot", nil)
		if err != nil {
			return 0, err
		}
		if code != http.StatusOK {
			return 0, fmt.Errorf("floor (a): %d", code)
		}
	}
	return time.Since(t0), nil
}

// compareLease prints, per connection count, floor (a)'s two-request cycle, ours uncontended
// and ours handing one key from client to client.
func compareLease(rdb *redis.Client, bare, ours *target, cc compareConfig) error {
	for _, n := range cc.conns {
		fmt.Printf("\nlease, %d clients, %s each: acquire (wait_ms) then release at once\n", n, cc.d)
		fmt.Printf("%-34s %11s %8s %8s %8s %8s %10s %9s %9s %8s\n", "target", "cycles/s", "wait p50", "p99",
			"gap p50", "p99", "server µs", "redis µs", "redis cmd", "vs (a)")
		var floor float64
		for _, row := range []struct {
			name           string
			t              *target
			contended, raw bool
		}{
			{"floor (a) bare, 2 requests", bare, true, true},
			{"ours uncontended (own key each)", ours, false, false},
			{"ours hand-off (one key)", ours, true, false},
		} {
			m, err := runLease(rdb, row.t, cc.d, n, row.contended, row.raw)
			if err != nil {
				return fmt.Errorf("%s: %w", row.name, err)
			}
			if row.raw {
				floor = m.rate
			}
			gap50, gap99 := "-", "-"
			if len(m.gap.lat) > 0 {
				gap50, gap99 = ms(m.gap.pct(0.5)), ms(m.gap.pct(0.99))
			}
			fmt.Printf("%-34s %11.0f %8s %8s %8s %8s %10.1f %9.1f %9.2f %8.2f\n", row.name, m.rate,
				ms(m.wait.pct(0.5)), ms(m.wait.pct(0.99)), gap50, gap99, m.serverCPU, m.redisCPU, m.redisCmds, m.rate/floor)
		}
	}
	return nil
}
