// Command loadgen drives the REST state routes of an AgentState server from concurrent
// keep-alive clients and prints throughput, latency percentiles and status-code counts.
//
//	AGENTSTATE_API_KEY=as_live_… go run ./cmd/loadgen -op put -c 32 -d 10s
//
// With -compare it starts two floor servers and ours side by side and prints the ratios
// (compare.go).
//
// Every run is bounded: by -n requests and/or -d (at most 60s); with neither it runs 10s.
//
// It targets loopback addresses only (127.0.0.0/8, ::1, localhost) unless -allow-remote is
// given. A load generator aimed at the wrong URL — a typo, a stale environment variable, a
// shared staging or production server — is a denial-of-service attack on it, and over plain
// http:// it would also send the API key across the network. The check is made on the
// address actually dialled, after name resolution, so /etc/hosts tricks do not get around it,
// and proxies from the environment are ignored.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentstate/agentstate-go/internal/cli"
)

const (
	maxDuration     = 60 * time.Second
	defaultDuration = 10 * time.Second
	maxConcurrency  = 1024
	maxKeys         = 100_000
	maxSize         = 1 << 20
	requestTimeout  = 10 * time.Second
)

type config struct {
	url         string
	key         string
	c           int
	n           int64
	d           time.Duration
	op          string
	size        int
	keys        int
	allowRemote bool
	pace        time.Duration // each client's pause between requests (0 = none: as fast as answered)
	mcpProtocol string        // -op mcp, mcp-get: the revision each session initializes with
	mcpLean     bool          // -op mcp, mcp-get: calls sent by the lean client (mcpLoad.lean)
}

const mcpProtocolUsage = "MCP protocol revision each session initializes with: 2026-07-28 (stateless, Mcp-* headers) or a legacy one hosts send today (2025-11-25, 2025-06-18)"

func main() {
	run := run
	switch {
	case slices.Contains(os.Args[1:], "-compare"):
		run = runCompare
	case slices.Contains(os.Args[1:], "-floor"):
		run = runFloor
	case slices.Contains(os.Args[1:], "-watchers"):
		run = runWatchers
	case slices.Contains(os.Args[1:], "-hold-watchers"):
		run = runHoldWatchers
	}
	os.Exit(cli.Exit("loadgen", run(os.Args[1:]), os.Stderr))
}

func parse(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "server base URL (loopback only unless -allow-remote)")
	fs.StringVar(&c.key, "key", os.Getenv("AGENTSTATE_API_KEY"), "API key (default $AGENTSTATE_API_KEY)")
	fs.IntVar(&c.c, "c", 32, "concurrent clients")
	fs.Int64Var(&c.n, "n", 0, "total requests (0 = until -d)")
	fs.DurationVar(&c.d, "d", 0, "duration, at most 60s (default 10s when -n is 0; with -n, a cap of 60s)")
	fs.StringVar(&c.op, "op", "put", "put, get, mixed (half PUT, half GET), mcp (upsert_state over /api/mcp, one session per client) or mcp-get (get_state)")
	fs.StringVar(&c.mcpProtocol, "mcp-protocol", mcp.LATEST_PROTOCOL_VERSION, mcpProtocolUsage)
	fs.BoolVar(&c.mcpLean, "mcp-lean", false, "-op mcp, mcp-get: send each call as one prepared POST, as the REST client does, instead of through mcp-go's client (the session is still opened by it)")
	fs.IntVar(&c.size, "size", 1024, "bytes of each PUT's data object")
	fs.IntVar(&c.keys, "keys", 1000, "distinct state keys (loadgen-0 … loadgen-<keys-1>)")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a non-loopback target (see the package comment)")
	if err := cli.Parse(fs, args, "usage: loadgen [flags]\n\nDrives the REST state routes of a server on loopback and prints throughput and latency.", os.Stdout, os.Stderr); err != nil {
		return c, err
	}
	switch {
	case c.key == "":
		return c, errors.New("no API key: pass -key or set AGENTSTATE_API_KEY")
	case c.c < 1 || c.c > maxConcurrency:
		return c, fmt.Errorf("-c must be 1..%d", maxConcurrency)
	case c.n < 0:
		return c, errors.New("-n must be >= 0")
	case c.d < 0 || c.d > maxDuration:
		return c, fmt.Errorf("-d must be at most %s", maxDuration)
	case c.op != "put" && c.op != "get" && c.op != "mixed" && c.op != "mcp" && c.op != "mcp-get":
		return c, errors.New("-op must be put, get, mixed, mcp or mcp-get")
	case !mcp.IsValidProtocolVersion(c.mcpProtocol):
		return c, fmt.Errorf("-mcp-protocol %q: want one of %v", c.mcpProtocol, mcp.ValidProtocolVersions)
	case c.size < len(`{"pad":""}`) || c.size > maxSize:
		return c, fmt.Errorf("-size must be %d..%d", len(`{"pad":""}`), maxSize)
	case c.keys < 1 || c.keys > maxKeys:
		return c, fmt.Errorf("-keys must be 1..%d", maxKeys)
	}
	if c.d == 0 {
		c.d = maxDuration
		if c.n == 0 {
			c.d = defaultDuration
		}
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("-url %q: want http(s)://host:port", c.url)
	}
	if !c.allowRemote && !isLoopbackHost(u.Hostname()) {
		return c, fmt.Errorf("-url host %q is not a loopback address; pass -allow-remote to load a server you own", u.Hostname())
	}
	c.url = strings.TrimSuffix(c.url, "/")
	return c, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// refuseRemote runs before every connect with the resolved address.
func refuseRemote(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to connect to non-loopback %s", address)
	}
	return nil
}

type client struct {
	cfg  config
	http *http.Client
	body []byte
}

// dialer connects to loopback only unless allowRemote.
func dialer(allowRemote bool) *net.Dialer {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !allowRemote {
		d.Control = refuseRemote
	}
	return d
}

func newClient(cfg config) *client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer(cfg.allowRemote).DialContext,
		MaxIdleConns:        cfg.c,
		MaxIdleConnsPerHost: cfg.c,
		IdleConnTimeout:     30 * time.Second,
	}
	const head, tail = `{"pad":"`, `"}`
	data := head + strings.Repeat("x", cfg.size-len(head)-len(tail)) + tail
	return &client{
		cfg:  cfg,
		http: &http.Client{Transport: tr, Timeout: requestTimeout},
		body: []byte(`{"agent_id":"loadgen","data":` + data + `}`),
	}
}

// do sends one request and returns its status (0 with an error when there is no response).
func (c *client) do(ctx context.Context, method string, i int64) (int, error) {
	var body io.Reader
	if method == http.MethodPut {
		body = bytes.NewReader(c.body)
	}
	key := "loadgen-" + strconv.FormatInt(i%int64(c.cfg.keys), 10)
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.url+"/api/v1/states/"+key, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body) // drained, so the connection is reused
	return resp.StatusCode, err
}

// worker is one client's tally.
type worker struct {
	lat      []time.Duration
	status   map[int]int64
	errs     int64
	firstErr error
}

// fire runs cfg.c clients until n requests were issued (n > 0) or the deadline passes.
func (c *client) fire(ctx context.Context, n int64, method func(i int64) string) ([]*worker, time.Duration) {
	var issued atomic.Int64
	workers := make([]*worker, c.cfg.c)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		workers[w] = &worker{status: map[int]int64{}}
		wg.Add(1)
		go func(t *worker) {
			defer wg.Done()
			for ctx.Err() == nil {
				i := issued.Add(1) - 1
				if n > 0 && i >= n {
					return
				}
				t0 := time.Now()
				code, err := c.do(ctx, method(i), i)
				if ctx.Err() != nil && code == 0 {
					return // cut off by the deadline: not a server failure
				}
				t.lat = append(t.lat, time.Since(t0))
				if err != nil {
					t.errs++
					if t.firstErr == nil {
						t.firstErr = err
					}
				}
				if code != 0 {
					t.status[code]++
				}
				if c.cfg.pace > 0 {
					time.Sleep(c.cfg.pace)
				}
			}
		}(workers[w])
	}
	wg.Wait()
	return workers, time.Since(start)
}

func run(args []string) error {
	cfg, err := parse(args)
	if err != nil {
		return err
	}
	c := newClient(cfg)
	if cfg.op != "put" && cfg.op != "mcp" {
		// GETs must find their states: write each key once first (not measured, also bounded).
		ctx, cancel := context.WithTimeout(context.Background(), maxDuration)
		pre, _ := c.fire(ctx, int64(cfg.keys), func(int64) string { return http.MethodPut })
		cancel()
		if bad := summarize(pre).failed; bad > 0 {
			return fmt.Errorf("prefill of %d keys: %d requests failed", cfg.keys, bad)
		}
	}
	if call, ok := mcpCalls[cfg.op]; ok {
		start := time.Now()
		s, _, err := fireMCP(mcpLoad{url: cfg.url, key: cfg.key, protocol: cfg.mcpProtocol, tool: call.tool, conns: cfg.c, size: cfg.size, keys: cfg.keys, n: cfg.n, d: cfg.d, allowRemote: cfg.allowRemote, lean: cfg.mcpLean})
		s.print(os.Stdout, cfg, time.Since(start))
		return err
	}
	method := func(int64) string { return http.MethodPut }
	switch cfg.op {
	case "get":
		method = func(int64) string { return http.MethodGet }
	case "mixed":
		method = func(i int64) string {
			if i%2 == 0 {
				return http.MethodPut
			}
			return http.MethodGet
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.d)
	defer cancel()
	workers, elapsed := c.fire(ctx, cfg.n, method)
	s := summarize(workers)
	s.print(os.Stdout, cfg, elapsed)
	if s.total == 0 || s.failed == s.total {
		return errors.New("no request succeeded")
	}
	return nil
}

type summary struct {
	lat      []time.Duration
	status   map[int]int64
	total    int64
	failed   int64 // transport errors and non-2xx
	errs     int64
	firstErr error
}

func summarize(ws []*worker) summary {
	s := summary{status: map[int]int64{}}
	for _, w := range ws {
		s.lat = append(s.lat, w.lat...)
		for code, k := range w.status {
			s.status[code] += k
			if code < 200 || code > 299 {
				s.failed += k
			}
		}
		s.errs += w.errs
		if s.firstErr == nil {
			s.firstErr = w.firstErr
		}
	}
	s.total = int64(len(s.lat))
	s.failed += s.errs
	slices.Sort(s.lat)
	return s
}

func (s summary) pct(q float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(s.lat)))) - 1
	return s.lat[max(i, 0)]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms" }

func (s summary) print(w io.Writer, cfg config, elapsed time.Duration) {
	fmt.Fprintf(w, "target    %s  op=%s c=%d size=%d keys=%d\n", cfg.url, cfg.op, cfg.c, cfg.size, cfg.keys)
	fmt.Fprintf(w, "requests  %d in %.2fs = %.0f req/s\n", s.total, elapsed.Seconds(), float64(s.total)/elapsed.Seconds())
	fmt.Fprintf(w, "latency   p50 %s  p90 %s  p99 %s  max %s\n", ms(s.pct(0.50)), ms(s.pct(0.90)), ms(s.pct(0.99)), ms(s.pct(1)))
	codes := make([]int, 0, len(s.status))
	for code := range s.status {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	fmt.Fprint(w, "status   ")
	for _, code := range codes {
		fmt.Fprintf(w, " %d: %d", code, s.status[code])
	}
	fmt.Fprintln(w)
	if s.errs > 0 {
		fmt.Fprintf(w, "errors    %d (first: %v)\n", s.errs, s.firstErr)
	}
}
