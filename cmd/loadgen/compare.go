package main

// -compare: our server beside two floors, driven by the same load generator in the same run,
// so the ratios hold on a small shared machine where absolute numbers do not:
//
//	(a) "bare": the smallest Go HTTP server that reads the body and answers a fixed 1 KiB JSON;
//	(c) "auth+script": reads the credential (one HGETALL) and runs the current write script (one
//	    EVALSHA of mutate_state.lua, through our store code) per PUT, or one XREVRANGE per GET:
//	    the architecture's minimum authenticated request;
//	(c0) "auth+script-v0": the same with the write script issue #20 measured when it was filed
//	    (floor_mutate_state_v0.lua, frozen), the floor its "PUT >= 1.2x floor (c)" target names;
//	    PUT only, its GET being (c)'s;
//	(d) "script": the write script (or the XREVRANGE) alone, no credential read: one round trip
//	    per request, what no authenticated server can beat;
//	"ours": the http-server binary given with -server, over the same Redis, rate limit on;
//	"baseline" (with -baseline): another build of it, measured in the same rounds, so that a
//	    change is judged as ours ÷ baseline round by round rather than across runs.
//
// Each runs as its own process (the floors are this binary re-executed with -floor), so the
// server CPU per request comes from /proc/<pid>/stat; Redis CPU and commands per request come
// from INFO cpu and INFO commandstats deltas. It writes into the Redis database given with
// -redis (default db 15), in project "default" (ours) and "loadgen-floor", and deletes nothing.
//
//	go build -o /tmp/as ./cmd/http-server && go run ./cmd/loadgen -compare -server /tmp/as

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/redisstore"
)

type compareConfig struct {
	server, baseline   string
	redisURL, ops      string
	mcpProtocol        string
	conns              []int
	d                  time.Duration
	size, keys, rounds int
}

// clockTicks is Linux's USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
const clockTicks = 100

func parseCompare(args []string) (compareConfig, error) {
	c := compareConfig{}
	fs := flag.NewFlagSet("loadgen -compare", flag.ContinueOnError)
	fs.Bool("compare", true, "")
	fs.StringVar(&c.server, "server", "", "path of a built cmd/http-server binary (required)")
	fs.StringVar(&c.baseline, "baseline", "", "PUT and GET: path of another build of cmd/http-server (say, of the commit before), measured in the same rounds as ours and printed as ours ÷ baseline")
	fs.StringVar(&c.redisURL, "redis", "redis://127.0.0.1:6379/15", "Redis for our server and floor (c); loopback only")
	fs.StringVar(&c.ops, "ops", "put,get,mcp", "operations to measure: put, get, mcp (upsert_state over /api/mcp against ours's REST PUT), mcp-get (get_state against the REST GET), lease (hand-off on one key, lease.go)")
	conns := fs.String("c", "1,8,32,128", "connection counts, comma-separated")
	fs.DurationVar(&c.d, "d", 5*time.Second, "duration of each measurement")
	fs.IntVar(&c.size, "size", 200, "bytes of each PUT's data object")
	fs.IntVar(&c.keys, "keys", 1000, "distinct state keys")
	fs.IntVar(&c.rounds, "rounds", 1, "PUT and GET: measure every target this many times, in turn, and print medians (ratios: the median of each round's)")
	fs.StringVar(&c.mcpProtocol, "mcp-protocol", mcp.LATEST_PROTOCOL_VERSION, mcpProtocolUsage)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > maxConcurrency {
			return c, fmt.Errorf("-c: %q is not 1..%d", s, maxConcurrency)
		}
		c.conns = append(c.conns, n)
	}
	switch {
	case c.server == "":
		return c, errors.New("-compare needs -server, the path of a built cmd/http-server")
	case c.d <= 0 || c.d > maxDuration:
		return c, fmt.Errorf("-d must be 0..%s", maxDuration)
	case c.rounds < 1 || c.rounds > 20:
		return c, errors.New("-rounds must be 1..20")
	case !mcp.IsValidProtocolVersion(c.mcpProtocol):
		return c, fmt.Errorf("-mcp-protocol %q: want one of %v", c.mcpProtocol, mcp.ValidProtocolVersions)
	}
	_, err := checkRedisURL(c.redisURL)
	return c, err
}

// checkRedisURL parses a -redis URL and refuses one off loopback.
func checkRedisURL(v string) (*redis.Options, error) {
	u, err := redis.ParseURL(v)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	if h, _, _ := net.SplitHostPort(u.Addr); u.Network != "unix" && !isLoopbackHost(h) { // a unix socket is local by nature
		return nil, fmt.Errorf("-redis %s is not on loopback", u.Addr)
	}
	return u, nil
}

// floorC0 is floor (c0)'s index among the targets.
const floorC0 = 2

// target is one server under measurement, running as a child process.
type target struct {
	name, url, key string
	cmd            *exec.Cmd
}

func runCompare(args []string) error {
	cc, err := parseCompare(args)
	if err != nil {
		return err
	}
	opts, _ := redis.ParseURL(cc.redisURL)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			_ = t.cmd.Process.Kill()
			_ = t.cmd.Wait()
		}
	}()
	floorKey, floorKey0, floorKeyD := core.NewAPIKeySecret(), core.NewAPIKeySecret(), core.NewAPIKeySecret()
	type spec struct {
		name, bin, key string
		args           []string
	}
	server := func(name, bin string) spec { // ours or the baseline
		key := core.NewAPIKeySecret()
		return spec{name, bin, key, []string{"-redis-url", cc.redisURL, "-bootstrap-key", key, "-rate-limit-per-min", "1000000000"}}
	}
	specs := []spec{
		{"floor (a) bare", self, "", []string{"-floor", "bare"}},
		{"floor (c) auth+script", self, floorKey, []string{"-floor", "auth+script", "-redis", cc.redisURL}},
		{"floor (c0) issue's script", self, floorKey0, []string{"-floor", "auth+script-v0", "-redis", cc.redisURL}},
		{"floor (d) script only", self, floorKeyD, []string{"-floor", "script", "-redis", cc.redisURL}},
	}
	if cc.baseline != "" {
		specs = append(specs, server("baseline", cc.baseline))
	}
	for _, spec := range append(specs, server("ours", cc.server)) {
		t, err := startTarget(spec.name, spec.bin, spec.args, spec.key)
		if err != nil {
			return err
		}
		targets = append(targets, t)
	}
	for _, op := range strings.Split(cc.ops, ",") {
		if op == "lease" {
			if err := compareLease(rdb, targets[0], targets[len(targets)-1], cc); err != nil {
				return err
			}
			continue
		}
		if call, ok := mcpCalls[op]; ok {
			if err := compareMCP(rdb, targets[len(targets)-1], cc, call); err != nil {
				return err
			}
			continue
		}
		method := map[string]string{"put": http.MethodPut, "get": http.MethodGet}[op]
		if method == "" {
			return fmt.Errorf("-ops: unknown %q", op)
		}
		for _, n := range cc.conns {
			fmt.Printf("\n%s, %d connections, %s each, %d-byte data over %d keys\n", op, n, cc.d, cc.size, cc.keys)
			fmt.Printf("%-26s %9s %8s %8s %11s %11s %10s %8s %8s %8s\n", "target", "req/s", "p50", "p99", "server µs", "redis µs", "redis cmd", "vs (a)", "vs (c)", "vs (c0)")
			// In turn, round after round: a burst on a shared machine lands in one round of
			// every target rather than in all of one target's.
			runs := make([][]measurement, len(targets))
			for range cc.rounds {
				for i, t := range targets {
					if i == floorC0 && method == http.MethodGet {
						continue // its GET is floor (c)'s
					}
					m, err := measure(rdb, t, cc, method, n)
					if err != nil {
						return fmt.Errorf("%s: %w", t.name, err)
					}
					runs[i] = append(runs[i], m)
				}
			}
			for i, t := range targets {
				if len(runs[i]) == 0 {
					continue
				}
				m := medianMeasurement(runs[i])
				ratio := func(j int) string {
					if j >= i || len(runs[j]) == 0 {
						return "-"
					}
					return strconv.FormatFloat(median(roundRatios(runs[i], runs[j])), 'f', 2, 64)
				}
				fmt.Printf("%-26s %9.0f %8s %8s %11.1f %11.1f %10.2f %8s %8s %8s\n", t.name, m.rate, ms(m.p50), ms(m.p99),
					m.serverCPU, m.redisCPU, m.redisCmds, ratio(0), ratio(1), ratio(floorC0))
			}
			ours := runs[len(runs)-1]
			if cc.rounds > 1 {
				fmt.Printf("ours by round: vs (a) %s, vs (c) %s\n", fmtRatios(roundRatios(ours, runs[0])), fmtRatios(roundRatios(ours, runs[1])))
			}
			if cc.baseline != "" {
				r := roundRatios(ours, runs[len(runs)-2])
				fmt.Printf("ours ÷ baseline: %.2f (by round: %s)\n", median(slices.Clone(r)), fmtRatios(r))
			}
		}
	}
	return nil
}

// startTarget runs bin on a free loopback port and waits until it answers.
func startTarget(name, bin string, args []string, key string) (*target, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(bin, append(args, "-addr", addr)...)
	cmd.Env = append(os.Environ(), "AGENTSTATE_LOADGEN_KEY="+key)
	cmd.Stderr = io.Discard // ours logs a line per request; its cost is part of what is measured
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	t := &target{name: name, url: "http://" + addr, key: key, cmd: cmd}
	for range 200 {
		if resp, err := http.Get(t.url + "/healthz"); err == nil {
			resp.Body.Close()
			return t, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("%s did not answer on %s", name, addr)
}

type measurement struct {
	rate, serverCPU, redisCPU, redisCmds float64
	p50, p99                             time.Duration
}

// medianMeasurement is each field's median over the rounds.
func medianMeasurement(ms []measurement) measurement {
	field := func(f func(measurement) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		return median(v)
	}
	return measurement{
		rate:      field(func(m measurement) float64 { return m.rate }),
		serverCPU: field(func(m measurement) float64 { return m.serverCPU }),
		redisCPU:  field(func(m measurement) float64 { return m.redisCPU }),
		redisCmds: field(func(m measurement) float64 { return m.redisCmds }),
		p50:       time.Duration(field(func(m measurement) float64 { return float64(m.p50) })),
		p99:       time.Duration(field(func(m measurement) float64 { return float64(m.p99) })),
	}
}

// roundRatios is a's rate over b's, round by round.
func roundRatios(a, b []measurement) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i].rate / b[i].rate
	}
	return out
}

// median of v (the mean of the middle two for an even count); v is sorted in place.
func median(v []float64) float64 {
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

func fmtRatios(v []float64) string {
	s := make([]string, len(v))
	for i, r := range v {
		s[i] = strconv.FormatFloat(r, 'f', 2, 64)
	}
	return strings.Join(s, " ")
}

func measure(rdb *redis.Client, t *target, cc compareConfig, method string, conns int) (measurement, error) {
	cfg := config{url: t.url, key: t.key, c: conns, size: cc.size, keys: cc.keys, op: "put"}
	c := newClient(cfg)
	if method == http.MethodGet { // GETs must find their states
		pre, _ := c.fire(context.Background(), int64(cc.keys), func(int64) string { return http.MethodPut })
		if bad := summarize(pre).failed; bad > 0 {
			return measurement{}, fmt.Errorf("prefill: %d of %d failed", bad, cc.keys)
		}
	}
	cpu0, err := procCPU(t.cmd.Process.Pid)
	if err != nil {
		return measurement{}, err
	}
	r0, err := redisCounters(rdb)
	if err != nil {
		return measurement{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cc.d)
	workers, elapsed := c.fire(ctx, 0, func(int64) string { return method })
	cancel()
	cpu1, _ := procCPU(t.cmd.Process.Pid)
	r1, _ := redisCounters(rdb)
	s := summarize(workers)
	if s.failed > 0 {
		return measurement{}, fmt.Errorf("%d of %d requests failed (statuses %v, first error %v)", s.failed, s.total, s.status, s.firstErr)
	}
	n := float64(s.total)
	return measurement{
		rate: n / elapsed.Seconds(), p50: s.pct(0.5), p99: s.pct(0.99),
		serverCPU: (cpu1 - cpu0).Seconds() * 1e6 / n,
		redisCPU:  (r1.cpu - r0.cpu) * 1e6 / n, redisCmds: float64(r1.calls-r0.calls) / n,
	}, nil
}

// mcpCall is a tool -compare -ops calls over MCP, and the REST request it is measured against.
type mcpCall struct{ tool, method string }

// mcpCalls are -compare's MCP operations.
var mcpCalls = map[string]mcpCall{"mcp": {"upsert_state", http.MethodPut}, "mcp-get": {"get_state", http.MethodGet}}

// compareMCP measures call's tool called over streamable HTTP (one session per connection),
// through mcp-go's client and through the lean one (mcpLoad.lean), beside its REST request on
// the same server, at each connection count. The REST GET's prefill writes the keys get_state
// reads.
func compareMCP(rdb *redis.Client, ours *target, cc compareConfig, call mcpCall) error {
	for _, n := range cc.conns {
		rest, err := measure(rdb, ours, cc, call.method, n)
		if err != nil {
			return err
		}
		fmt.Printf("\nmcp %s vs REST %s on ours, %d connections: REST %.0f req/s p50 %s p99 %s\n",
			call.tool, call.method, n, rest.rate, ms(rest.p50), ms(rest.p99))
		for _, lean := range []bool{false, true} {
			cpu0, err := procCPU(ours.cmd.Process.Pid)
			if err != nil {
				return err
			}
			r0, err := redisCounters(rdb)
			if err != nil {
				return err
			}
			lat, rate, err := fireMCP(mcpLoad{url: ours.url, key: ours.key, protocol: cc.mcpProtocol, tool: call.tool, conns: n, size: cc.size, keys: cc.keys, d: cc.d, lean: lean})
			if err != nil {
				return fmt.Errorf("mcp: %w", err)
			}
			cpu1, _ := procCPU(ours.cmd.Process.Pid)
			r1, _ := redisCounters(rdb)
			calls := float64(max(lat.total, 1))
			client := "mcp-go client"
			if lean {
				client = "lean client  "
			}
			fmt.Printf("  MCP, %s %.0f calls/s p50 %s p99 %s; MCP/REST p50 latency %.2f; server µs per request: REST %.1f, MCP %.1f; Redis cmd: REST %.2f, MCP %.2f\n",
				client, rate, ms(lat.pct(0.5)), ms(lat.pct(0.99)), float64(lat.pct(0.5))/float64(rest.p50),
				rest.serverCPU, (cpu1-cpu0).Seconds()*1e6/calls, rest.redisCmds, float64(r1.calls-r0.calls)/calls)
		}
	}
	return nil
}

// mcpLoad is what fireMCP drives: n calls in all (0 = until the deadline) over conns sessions.
type mcpLoad struct {
	url, key, protocol string
	tool               string // upsert_state or get_state
	conns, size, keys  int
	n                  int64
	d                  time.Duration
	allowRemote        bool
	// lean sends each call as the REST client sends a PUT: a prepared JSON-RPC body in one
	// POST with the session's headers, read to the end and checked for an error result, instead
	// of through mcp-go's client (which costs several times the REST client's CPU on this same
	// box). The session is still initialized by mcp-go's client.
	lean bool
}

// fireMCP runs l.conns initialised MCP sessions calling l.tool until l.n calls were issued
// or l.d passed. l.protocol is the revision each session asks for in initialize: 2026-07-28 (the
// stateless era, every request carrying its version in _meta and Mcp-* headers) or a legacy one
// such as 2025-11-25 or 2025-06-18, which the hosts in use today send.
func fireMCP(l mcpLoad) (summary, float64, error) {
	ctx := context.Background()
	data := map[string]any{"pad": strings.Repeat("x", max(l.size-len(`{"pad":""}`), 0))}
	dataJSON, _ := json.Marshal(data)
	clients, leans := make([]*mcpclient.Client, l.conns), make([]*leanMCP, l.conns)
	for i := range clients {
		// Each session keeps its own connection, as the REST clients do: mcp-go's default
		// client shares http.DefaultTransport, whose 2 idle connections per host would make
		// most calls at 8+ sessions dial anew and measure connection set-up, not the server.
		hc := &http.Client{Transport: &http.Transport{DialContext: dialer(l.allowRemote).DialContext, MaxIdleConnsPerHost: 1}}
		c, err := mcpclient.NewStreamableHttpClient(l.url+"/api/mcp", transport.WithHTTPBasicClient(hc),
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + l.key}))
		if err != nil {
			return summary{}, 0, err
		}
		defer c.Close()
		if err := c.Start(ctx); err != nil {
			return summary{}, 0, err
		}
		var init mcp.InitializeRequest
		init.Params.ProtocolVersion = l.protocol
		init.Params.ClientInfo = mcp.Implementation{Name: "loadgen", Version: "1"}
		if _, err := c.Initialize(ctx, init); err != nil {
			return summary{}, 0, err
		}
		clients[i] = c
		leans[i] = &leanMCP{http: hc, url: l.url + "/api/mcp", key: l.key, protocol: l.protocol, session: c.GetSessionId(), tool: l.tool, data: dataJSON}
	}
	ws := make([]*worker, l.conns)
	var issued atomic.Int64
	deadline := time.Now().Add(l.d)
	done := make(chan struct{})
	start := time.Now()
	for i, c := range clients {
		ws[i] = &worker{status: map[int]int64{}}
		go func(w *worker, i int) {
			defer func() { done <- struct{}{} }()
			for k := 0; time.Now().Before(deadline); k++ {
				if l.n > 0 && issued.Add(1) > l.n {
					return
				}
				key := "loadgen-" + strconv.Itoa((i*7919+k)%l.keys)
				t0 := time.Now()
				var isError bool
				var err error
				if l.lean {
					isError, err = leans[i].call(ctx, key)
				} else {
					var req mcp.CallToolRequest
					req.Params.Name = l.tool
					req.Params.Arguments = map[string]any{"state_key": key}
					if l.tool == "upsert_state" {
						req.Params.Arguments = map[string]any{"state_key": key, "agent_id": "loadgen", "data": data}
					}
					var res *mcp.CallToolResult
					if res, err = c.CallTool(ctx, req); err == nil {
						isError = res.IsError
					}
				}
				w.lat = append(w.lat, time.Since(t0))
				switch {
				case err != nil:
					w.errs++
					w.firstErr = cmp.Or(w.firstErr, err)
				case isError:
					w.status[500]++
				default:
					w.status[200]++
				}
			}
		}(ws[i], i)
	}
	for range clients {
		<-done
	}
	s := summarize(ws)
	if s.failed > 0 {
		return s, 0, fmt.Errorf("%d of %d calls failed (first error %v)", s.failed, s.total, s.firstErr)
	}
	return s, float64(s.total) / time.Since(start).Seconds(), nil
}

// leanMCP sends upsert_state or get_state calls in a session mcp-go's client opened
// (mcpLoad.lean).
type leanMCP struct {
	http                              *http.Client
	url, key, protocol, session, tool string
	data                              []byte
}

// call sends one call of key and reports whether the result is an error.
func (m *leanMCP) call(ctx context.Context, key string) (bool, error) {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{`)
	if mcp.IsModernProtocol(m.protocol) {
		b.WriteString(`"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + m.protocol + `","` + mcp.MetaKeyClientCapabilities +
			`":{},"` + mcp.MetaKeyClientInfo + `":{"name":"loadgen","version":"1"}},`)
	}
	b.WriteString(`"name":"` + m.tool + `","arguments":{"state_key":"` + key + `"`)
	if m.tool == "upsert_state" {
		b.WriteString(`,"agent_id":"loadgen","data":`)
		b.Write(m.data)
	}
	b.WriteString(`}}}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url, &b)
	if err != nil {
		return false, err
	}
	h := req.Header
	h.Set("Authorization", "Bearer "+m.key)
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	h.Set("Mcp-Protocol-Version", m.protocol)
	if mcp.IsModernProtocol(m.protocol) {
		h.Set("Mcp-Method", "tools/call")
		h.Set("Mcp-Name", m.tool)
	} else if m.session != "" {
		h.Set("Mcp-Session-Id", m.session)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d: %s", resp.StatusCode, out)
	}
	return bytes.Contains(out, []byte(`"isError":true`)), nil
}

// procCPU is the user+system CPU time pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

type redisTotals struct {
	cpu   float64 // seconds
	calls int64
}

// redisCounters reads Redis's CPU seconds and total command calls (INFO cpu, commandstats).
func redisCounters(rdb *redis.Client) (redisTotals, error) {
	info, err := rdb.Info(context.Background(), "cpu", "commandstats").Result()
	if err != nil {
		return redisTotals{}, err
	}
	var t redisTotals
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "used_cpu_sys:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			t.cpu += f
		} else if v, ok := strings.CutPrefix(line, "used_cpu_user:"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			t.cpu += f
		} else if _, stats, ok := strings.Cut(line, ":calls="); ok && strings.HasPrefix(line, "cmdstat_") {
			calls, _, _ := strings.Cut(stats, ",")
			n, _ := strconv.ParseInt(calls, 10, 64)
			if !strings.HasPrefix(line, "cmdstat_info:") { // our own probes
				t.calls += n
			}
		}
	}
	return t, nil
}

// runFloor serves one of the floors until killed (the -floor mode of this binary).
func runFloor(args []string) error {
	fs := flag.NewFlagSet("loadgen -floor", flag.ContinueOnError)
	kind := fs.String("floor", "", "bare, auth+script, auth+script-v0 or script")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	redisURL := fs.String("redis", "", "Redis URL (auth+script)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	reply := []byte(`{"ok":true,"pad":"` + strings.Repeat("x", 1024-len(`{"ok":true,"pad":""}`)) + `"}`)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	switch *kind {
	case "bare":
		mux.HandleFunc("/api/v1/states/{key}", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(reply)
		})
	case "auth+script", "auth+script-v0", "script":
		h, err := authScriptFloor(*redisURL, reply, *kind)
		if err != nil {
			return err
		}
		mux.Handle("/api/v1/states/{key}", h)
	default:
		return fmt.Errorf("-floor %q: want bare, auth+script, auth+script-v0 or script", *kind)
	}
	return http.ListenAndServe(*addr, mux)
}

// authScriptFloor is floor (c): per request one HGETALL of the credential, then one EVALSHA of
// mutate_state.lua (PUT) or one XREVRANGE (GET), through our own store code. As "auth+script-v0"
// it is floor (c0): the PUT runs the frozen script of floor_mutate_state_v0.lua instead; as
// "script" floor (d): the credential is not read.
func authScriptFloor(redisURL string, reply []byte, kind string) (http.Handler, error) {
	ctx := context.Background()
	conn, err := redisstore.Open(ctx, redisstore.Options{URL: redisURL})
	if err != nil {
		return nil, err
	}
	st := conn.Store
	auth := core.NewAuth(st, core.SystemClock{})
	project := core.Project{ID: "loadgen-floor", Name: "loadgen floor"}
	if kind != "auth+script" {
		project = core.Project{ID: "loadgen-floor-" + strings.TrimPrefix(kind, "auth+script-"), Name: "loadgen floor " + kind}
	}
	if _, err := auth.CreateProjectWithKey(ctx, project, os.Getenv("AGENTSTATE_LOADGEN_KEY")); err != nil {
		return nil, err
	}
	put := func(ctx context.Context, project, key, agent string, data json.RawMessage) error {
		_, _, err := st.MutateState(ctx, project, core.StateMutation{
			Op: core.EventUpsert, Key: key, EventID: core.NewID(), AgentID: agent, Data: data,
			Tags: []string{}, NowMs: time.Now().UnixMilli(), Writer: core.LeaseWriter{FullAccess: true}})
		return err
	}
	if kind == "auth+script-v0" {
		if put, err = v0Put(redisURL); err != nil {
			return nil, err
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		projectID := project.ID
		if kind != "script" {
			cred, err := st.Credential(r.Context(), core.SHA256Hex([]byte(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))))
			if err != nil || cred == nil {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			projectID = cred.ProjectID
		}
		key := r.PathValue("key")
		var err error
		if r.Method == http.MethodGet {
			_, err = st.StateEventsAt(r.Context(), projectID, []string{key}, 0, 0)
		} else {
			var in struct {
				AgentID string          `json:"agent_id"`
				Data    json.RawMessage `json:"data"`
			}
			_ = json.Unmarshal(body, &in)
			err = put(r.Context(), projectID, key, in.AgentID, in.Data)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(reply)
	}), nil
}

//go:embed floor_mutate_state_v0.lua
var mutateStateV0Lua string

// v0Put runs one upsert through floor_mutate_state_v0.lua with the KEYS and ARGV the store of
// commit 2649068 sent for a plain write (no idempotency key, lease, expected version or tags).
func v0Put(redisURL string) (func(ctx context.Context, project, key, agent string, data json.RawMessage) error, error) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, err
	}
	opts.PoolSize = 256 // as the store's
	rdb := redis.NewClient(opts)
	script := redis.NewScript(mutateStateV0Lua)
	return func(ctx context.Context, project, key, agent string, data json.RawMessage) error {
		pk := func(rest string) string { return "as:{" + project + "}:" + rest }
		keys := []string{pk("state:" + key), pk("seq"), pk("log"), pk("idx:live"), pk("idem:"),
			pk("leasecur:" + key), pk("fence:" + key), pk("leases"), pk("leaserec:"), pk("evid"),
			pk("idx:agent:" + agent)}
		res, err := script.Run(ctx, rdb, keys, core.EventUpsert, time.Now().UnixMilli(), core.NewID(), agent,
			string(data), "", "[]", "", "", "", "", key, "", 1, "1", "", "a:"+agent).Slice()
		if err == nil && res[0] != "OK" {
			err = fmt.Errorf("v0 script answered %v", res)
		}
		return err
	}, nil
}
