// Package faults kills Redis under a write load and counts what the acknowledged writes lost:
// a master of a Redis Cluster failing over, and single Redis restarted from its AOF. The load
// goes through the real HTTP server; every number is reported with t.Log. These tests start
// their own redis-server processes (7201-7202, 7207-7209, 7104-7106) and run when
// AGENTSTATE_TEST_FAULTS=1.
package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

func requireFaults(t *testing.T) {
	if os.Getenv("AGENTSTATE_TEST_FAULTS") != "1" {
		t.Skip("fault tests kill redis-server processes; set AGENTSTATE_TEST_FAULTS=1 to run them")
	}
}

// server is our HTTP server over a store opened from opts, with a fresh project.
func server(t *testing.T, opts redisstore.Options) (*testenv.Server, *redisstore.Connection) {
	t.Helper()
	conn, err := redisstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	e := &testenv.Env{Name: "fault", Rdb: conn.Store.Client(), Store: conn.Store, Clock: testenv.NewClock()}
	s := testenv.NewServer(t, e, func(a *app.App) { a.Leases = core.NewLeases(conn.Store, core.SystemClock{}) })
	return s, conn
}

// ack is one write the server acknowledged.
type ack struct {
	key      string
	version  int64
	sequence int64
	n        int
}

// load runs writers (each on its own keys, WritesPerKey versions per key) and leasers (each
// acquiring and releasing its own key) against a server until stopped.
type load struct {
	base, apiKey string
	http         *http.Client

	mu        sync.Mutex
	acks      []ack
	tokens    map[string][]int64 // lease key -> fencing tokens, in acknowledgement order
	successes []time.Time
	failures  map[int]int // status (0 = transport error) -> count
	stop      chan struct{}
	wg        sync.WaitGroup
}

// writesPerKey: each key gets this many versions, so a lost write shows as a version reused.
const writesPerKey = 4

func startLoad(s *testenv.Server, writers, leasers int) *load {
	l := &load{base: s.URL, apiKey: s.Project.Key, http: &http.Client{Timeout: 10 * time.Second},
		tokens: map[string][]int64{}, failures: map[int]int{}, stop: make(chan struct{})}
	for w := range writers {
		l.wg.Add(1)
		go l.writer(w)
	}
	for i := range leasers {
		l.wg.Add(1)
		go l.leaser(i)
	}
	return l
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// call sends one request; on failure it records the status and backs off briefly (a client
// honouring Retry-After would wait a second; 50 ms keeps the outage measurement fine-grained).
func (l *load) call(method, path string, body any, out any) bool {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, l.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+l.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.http.Do(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
		if status < 300 && out != nil {
			err = json.NewDecoder(resp.Body).Decode(out)
		}
		resp.Body.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil || status >= 300 {
		l.failures[status]++
		time.Sleep(50 * time.Millisecond)
		return false
	}
	l.successes = append(l.successes, time.Now())
	return true
}

func (l *load) writer(w int) {
	defer l.wg.Done()
	for n := 0; !l.stopped(); n++ {
		key := fmt.Sprintf("w%d-%d", w, n/writesPerKey)
		var st core.State
		if l.call("PUT", "/api/v1/states/"+key, map[string]any{"agent_id": "load", "data": map[string]int{"n": n}}, &st) {
			l.mu.Lock()
			l.acks = append(l.acks, ack{key: key, version: st.Version, sequence: st.LatestSequence, n: n})
			l.mu.Unlock()
		}
	}
}

func (l *load) leaser(i int) {
	defer l.wg.Done()
	key := fmt.Sprintf("lease-%d", i)
	for !l.stopped() {
		var lease core.Lease
		if !l.call("POST", "/api/v1/states/"+key+"/lease", map[string]any{"holder": "load", "ttl_ms": 1000}, &lease) {
			continue
		}
		l.mu.Lock()
		l.tokens[key] = append(l.tokens[key], lease.FencingToken)
		l.mu.Unlock()
		l.call("DELETE", "/api/v1/leases/"+lease.ID, nil, nil)
	}
}

// waitServing waits until the load has had d of successes in a row (none failing meanwhile).
func (l *load) waitServing(t *testing.T, d, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		var failed int
		for _, c := range l.failures {
			failed += c
		}
		l.mu.Unlock()
		time.Sleep(d)
		l.mu.Lock()
		var now int
		for _, c := range l.failures {
			now += c
		}
		l.mu.Unlock()
		if now == failed {
			return
		}
	}
	t.Fatalf("the server did not serve %s without failures within %s", d, timeout)
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// outage is the longest gap between two successful requests, as the clients saw it.
func (l *load) outage() time.Duration {
	s := slices.Clone(l.successes)
	sort.Slice(s, func(i, j int) bool { return s[i].Before(s[j]) })
	var gap time.Duration
	for i := 1; i < len(s); i++ {
		gap = max(gap, s[i].Sub(s[i-1]))
	}
	return gap
}

// verdict is what the acknowledged writes and tokens look like after the fault.
type verdict struct {
	Acked, Lost, VersionsReused, SequencesReused int
	Tokens, TokensReissued                       int
	Failures                                     map[int]int
	Outage                                       time.Duration
}

// check reads every written key's events back and compares them with what was acknowledged.
func (l *load) check(t *testing.T, a *app.App, p core.Principal) verdict {
	t.Helper()
	v := verdict{Acked: len(l.acks), Failures: l.failures, Outage: l.outage()}
	byKey := map[string][]ack{}
	seqs := map[int64]int{}
	for _, k := range l.acks {
		byKey[k.key] = append(byKey[k.key], k)
		seqs[k.sequence]++
	}
	for _, c := range seqs {
		v.SequencesReused += c - 1
	}
	ctx := context.Background()
	for key, acks := range byKey {
		page, err := a.States.Events(ctx, p, key, 0, 100)
		if err != nil {
			t.Fatalf("events of %s: %v", key, err)
		}
		stored := map[int64]int{}
		for _, ev := range page.Data {
			var d struct{ N int }
			_ = json.Unmarshal(ev.Data, &d)
			stored[ev.Version] = d.N
		}
		versions := map[int64]int{}
		for _, k := range acks {
			if n, ok := stored[k.version]; !ok || n != k.n {
				v.Lost++
			}
			versions[k.version]++
		}
		for _, c := range versions {
			v.VersionsReused += c - 1
		}
	}
	for _, toks := range l.tokens {
		v.Tokens += len(toks)
		for i := 1; i < len(toks); i++ {
			if toks[i] <= toks[i-1] {
				v.TokensReissued++
			}
		}
	}
	t.Logf("acked writes %d, lost %d, versions reused %d, sequences reused %d; fencing tokens %d, reissued %d; "+
		"client-seen outage %s; failed requests by status %v",
		v.Acked, v.Lost, v.VersionsReused, v.SequencesReused, v.Tokens, v.TokensReissued, v.Outage.Round(time.Millisecond), v.Failures)
	return v
}
