// Command fleet-leases is v1's lease recipe (compat-v1.md §19) as a self-checking harness:
// K workers race over N tasks, one state key and one lease per task, through the REST API
// with the Go client of package client (generated from the OpenAPI document).
//
// Each worker walks the tasks in its own random order. For each task it tries
// POST /api/v1/states/task:<id>/lease {holder, ttl_ms: 30000}; on 409 it skips the task (no
// retry loop). With the lease it reads the task's state: if it is already done it releases and
// moves on; otherwise it "processes" the task (records in an in-memory tally which worker did
// it, and sleeps a little), renewing the lease every ttl/2 meanwhile, writes {done: true, by}
// with lease_id and fencing_token, and releases the lease in a defer (the recipe's finally).
// Workers keep passing over the tasks they have not seen done until every task is done or the
// deadline passes.
//
// Then it checks exactly-once: every task processed by exactly one worker according to the
// tally, and its state done, by that worker, under that lease's fencing token, at version 1
// (written once); and no lease of the run left active. It prints PASS or FAIL with the
// details, and exits 1 on FAIL (2 when it could not run at all).
//
//	go run ./examples/fleet-leases                        # in-process server, embedded store
//	go run ./examples/fleet-leases -workers 32 -tasks 500
//	go run ./examples/fleet-leases -url http://127.0.0.1:8080 -key as_live_...
//
// With no -url (and no AGENTSTATE_URL) it starts the real HTTP server in this process on an
// embedded in-memory store, listening on 127.0.0.1. A -url must be a loopback address unless
// -allow-remote is given: this is a load generator, and over plain http:// it would send the
// API key across the network. The check is made on every address actually dialled, and proxy
// settings from the environment are ignored.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentstate/agentstate-go/client"
	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/redisstore"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout)
	var fail *failure
	switch {
	case err == nil:
	case errors.As(err, &fail):
		os.Exit(1) // FAIL and its details are already printed
	default:
		fmt.Fprintln(os.Stderr, "fleet-leases:", err)
		os.Exit(2)
	}
}

type config struct {
	url, key    string
	allowRemote bool
	workers     int
	tasks       int
	ttlMs       int64
	work        time.Duration // each task takes between work/2 and work
	deadline    time.Duration
	run         string // distinguishes this run's keys: task:<run>-<i>
}

// failure is a FAIL verdict: the run went through but exactly-once does not hold.
type failure struct{ problems []string }

func (f *failure) Error() string {
	return fmt.Sprintf("%d problem(s): %s", len(f.problems), strings.Join(f.problems, "; "))
}

func parse(args []string) (config, error) {
	fs := flag.NewFlagSet("fleet-leases", flag.ContinueOnError)
	c := config{}
	fs.StringVar(&c.url, "url", os.Getenv("AGENTSTATE_URL"), "server base URL, e.g. http://127.0.0.1:8080 (AGENTSTATE_URL; empty: start one in-process on an embedded store)")
	fs.StringVar(&c.key, "key", os.Getenv("AGENTSTATE_API_KEY"), "API key for -url (AGENTSTATE_API_KEY)")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a -url that is not a loopback address")
	fs.IntVar(&c.workers, "workers", 8, "concurrent workers (K)")
	fs.IntVar(&c.tasks, "tasks", 50, "tasks (N)")
	fs.Int64Var(&c.ttlMs, "ttl", 30_000, "lease ttl_ms; workers renew every ttl/2")
	fs.DurationVar(&c.work, "work", 4*time.Millisecond, "longest a task takes to process (each takes work/2..work)")
	fs.DurationVar(&c.deadline, "deadline", 60*time.Second, "give up after this long")
	fs.StringVar(&c.run, "run", "", "run id used in the task keys (default: random)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.workers < 1 || c.workers > 1000:
		return c, errors.New("-workers must be 1..1000")
	case c.tasks < 1 || c.tasks > 100_000:
		return c, errors.New("-tasks must be 1..100000")
	case c.ttlMs < core.LeaseTTLMinMs || c.ttlMs > core.LeaseTTLMaxMs:
		return c, fmt.Errorf("-ttl must be %d..%d ms", core.LeaseTTLMinMs, core.LeaseTTLMaxMs)
	case c.work < 0:
		return c, errors.New("-work must not be negative")
	case c.deadline <= 0 || c.deadline > 10*time.Minute:
		return c, errors.New("-deadline must be in (0, 10m]")
	}
	if c.run == "" {
		c.run = strconv.FormatUint(rand.Uint64()%(1<<40), 36)
	}
	if c.url != "" {
		u, err := url.Parse(c.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("-url %q: want http(s)://host:port", c.url)
		}
		if !c.allowRemote && !isLoopbackHost(u.Hostname()) {
			return c, fmt.Errorf("-url host %q is not a loopback address; pass -allow-remote to target a server you own", u.Hostname())
		}
		if c.key == "" {
			return c, errors.New("-url needs -key (or AGENTSTATE_API_KEY)")
		}
		c.url = strings.TrimSuffix(c.url, "/")
	}
	return c, nil
}

// run parses args, starts the in-process server when there is no -url, runs the fleet and
// prints the verdict on out. It returns a *failure on FAIL.
func run(ctx context.Context, args []string, out io.Writer) error {
	c, err := parse(args)
	if err != nil {
		return err
	}
	if c.url == "" {
		stop, err := startServer(ctx, &c)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(out, "in-process server on %s (embedded store)\n", c.url)
	}
	return fleet(ctx, c, out)
}

// startServer runs the real HTTP surface, as cmd/http-server builds it, on an embedded store,
// listening on a free loopback port, with a fresh project and key.
func startServer(ctx context.Context, c *config) (stop func(), err error) {
	conn, err := redisstore.Open(ctx, redisstore.Options{})
	if err != nil {
		return nil, err
	}
	a := app.New(conn.Store, core.SystemClock{}, core.DefaultLimits())
	key, err := a.Auth.CreateProjectWithKey(ctx, core.Project{ID: "fleet", Name: "fleet-leases"}, "")
	if err != nil {
		conn.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		conn.Close()
		return nil, err
	}
	sweeper := a.Leases.Sweeper(time.Second, func(error) {})
	sweeper.Start(ctx)
	srv := &http.Server{Handler: a.NewHandler(0), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	c.url, c.key = "http://"+ln.Addr().String(), key.Key
	return func() {
		_ = srv.Close()
		_ = sweeper.Shutdown(context.Background())
		conn.Close()
	}, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// refuseRemote runs before every connect, with the resolved address.
func refuseRemote(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to connect to non-loopback %s", address)
	}
	return nil
}

// A task's state as this harness writes it; the rest of the wire is the generated client's.
type (
	taskData struct {
		Done bool   `json:"done"`
		By   string `json:"by"`
	}
	state struct {
		Data         taskData `json:"data"`
		Version      int64    `json:"version"`
		FencingToken *int64   `json:"fencing_token"`
	}
)

// api is the Go client (package client) over a transport that keeps one connection per worker
// and, unless -allow-remote, refuses to dial anything but loopback.
type api struct {
	*client.Agent
	transport *http.Transport
}

func newClient(c config) *api {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !c.allowRemote {
		dialer.Control = refuseRemote
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        2 * c.workers,
		MaxIdleConnsPerHost: 2 * c.workers, // one per worker plus its renewer: keep-alive, no churn
		IdleConnTimeout:     30 * time.Second,
	}
	a, err := client.New(c.url, c.key, client.Options{HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second}})
	if err != nil {
		panic(err) // only for a malformed -url, which parse has refused already
	}
	return &api{Agent: a, transport: tr}
}

// decodeState reads a task's state from a GET's body.
func decodeState(body []byte) (state, error) {
	var st state
	return st, json.Unmarshal(body, &st)
}

// tally is what the workers did, kept in memory.
type tally struct {
	mu        sync.Mutex
	by        [][]string // workers that processed each task
	token     []int64    // fencing token each task was processed under (the last, if several)
	problems  []string   // unexpected answers seen during the run
	acquired  atomic.Int64
	conflicts atomic.Int64 // 409 on acquire: skipped
	wasDone   atomic.Int64 // acquired, found done, released
	renewals  atomic.Int64
	released  atomic.Int64
}

func (t *tally) processed(i int, worker string, token int64) {
	t.mu.Lock()
	t.by[i] = append(t.by[i], worker)
	t.token[i] = token
	t.mu.Unlock()
}

func (t *tally) problem(format string, args ...any) {
	t.mu.Lock()
	t.problems = append(t.problems, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

type fleetRun struct {
	cfg   config
	api   *api
	tally *tally
}

func (f *fleetRun) taskKey(i int) string { return fmt.Sprintf("task:%s-%d", f.cfg.run, i) }

type outcome int

const (
	busy outcome = iota // someone else holds it: look again later
	done                // done, by us or by someone else
)

// fleet runs the workers over the tasks, then checks exactly-once and prints the verdict.
func fleet(ctx context.Context, c config, out io.Writer) error {
	f := &fleetRun{cfg: c, api: newClient(c), tally: &tally{by: make([][]string, c.tasks), token: make([]int64, c.tasks)}}
	defer f.api.transport.CloseIdleConnections()
	start := time.Now()
	runCtx, cancel := context.WithTimeoutCause(ctx, c.deadline, fmt.Errorf("deadline of %s passed", c.deadline))
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		runError error
	)
	for w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.worker(runCtx, fmt.Sprint("worker-", w)); err != nil && runCtx.Err() == nil {
				errOnce.Do(func() { runError = err; cancel() })
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if runError == nil && runCtx.Err() != nil && ctx.Err() == nil {
		runError = context.Cause(runCtx)
	}

	t := f.tally
	fmt.Fprintf(out, "run %s: %d workers, %d tasks, %s: %d acquired (%d found the task done), %d skipped on 409, %d renewals, %d released\n",
		c.run, c.workers, c.tasks, elapsed.Round(time.Millisecond), t.acquired.Load(), t.wasDone.Load(), t.conflicts.Load(), t.renewals.Load(), t.released.Load())
	// The checks run even after an error or the deadline, on a context of their own.
	checkCtx, cancelCheck := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancelCheck()
	problems := f.check(checkCtx)
	if runError != nil {
		problems = append([]string{"run stopped: " + runError.Error()}, problems...)
	}
	if len(problems) > 0 {
		fmt.Fprintln(out, "FAIL")
		for _, p := range problems {
			fmt.Fprintln(out, "  "+p)
		}
		return &failure{problems: problems}
	}
	fmt.Fprintf(out, "PASS: each of the %d tasks processed exactly once and written once (version 1)\n", c.tasks)
	return nil
}

// worker passes over the tasks it has not yet seen done, in a new random order each pass,
// until it has seen them all done.
func (f *fleetRun) worker(ctx context.Context, name string) error {
	seenDone := make([]bool, f.cfg.tasks)
	left := f.cfg.tasks
	for {
		for _, i := range rand.Perm(f.cfg.tasks) {
			if seenDone[i] {
				continue
			}
			o, err := f.attempt(ctx, name, i)
			if err != nil {
				return err
			}
			if o == done {
				seenDone[i] = true
				left--
			}
		}
		if left == 0 {
			return nil
		}
		select { // the rest are held by others: look again shortly
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(10+rand.IntN(20)) * time.Millisecond):
		}
	}
}

// attempt is the recipe for one task. Transport errors end the run; unexpected answers from
// the server are recorded as problems.
func (f *fleetRun) attempt(ctx context.Context, worker string, i int) (outcome, error) {
	t := f.tally
	acq, err := f.api.AcquireLeaseWithResponse(ctx, f.taskKey(i), client.AcquireLease{Holder: &worker, TtlMs: ptr(int(f.cfg.ttlMs))})
	switch {
	case err != nil:
		return busy, err
	case acq.StatusCode() == http.StatusConflict:
		t.conflicts.Add(1)
		return busy, nil // someone else has it: skip, as the recipe says
	case acq.StatusCode() != http.StatusCreated:
		return busy, fmt.Errorf("acquire %s: status %d: %s", f.taskKey(i), acq.StatusCode(), acq.Body)
	}
	l := *acq.JSON201
	t.acquired.Add(1)
	defer func() { // always release, like the recipe's finally
		rel, err := f.api.ReleaseLeaseWithResponse(context.WithoutCancel(ctx), *l.Id)
		if err != nil || rel.StatusCode() != http.StatusNoContent {
			t.problem("%s: release lease %s: %v %v", f.taskKey(i), *l.Id, err, rel)
			return
		}
		t.released.Add(1)
	}()

	got, err := f.api.GetStateWithResponse(ctx, f.taskKey(i), &client.GetStateParams{})
	if err != nil {
		return busy, err
	}
	switch code := got.StatusCode(); {
	case code == http.StatusOK:
		st, err := decodeState(got.Body)
		if err != nil {
			return busy, fmt.Errorf("read %s: %w", f.taskKey(i), err)
		}
		if st.Data.Done {
			t.wasDone.Add(1)
			return done, nil
		}
	case code != http.StatusNotFound:
		return busy, fmt.Errorf("read %s: status %d: %s", f.taskKey(i), code, got.Body)
	}

	// Process, renewing at half the TTL meanwhile.
	renewCtx, stopRenew := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() { defer close(renewed); f.renew(renewCtx, l) }()
	t.processed(i, worker, int64(l.FencingToken))
	sleep(ctx, f.cfg.work/2+rand.N(f.cfg.work/2+1))
	stopRenew()
	<-renewed

	put, err := f.api.PutStateWithResponse(ctx, f.taskKey(i), &client.PutStateParams{}, client.StateWrite{
		AgentId: worker, Data: map[string]any{"done": true, "by": worker}, LeaseId: l.Id, FencingToken: &l.FencingToken})
	switch {
	case err != nil:
		return busy, err
	case put.StatusCode() != http.StatusOK:
		// E.g. the lease was lost: the task stays not done and would be processed again, so
		// exactly-once is already broken. Stop the run rather than loop until the deadline.
		return busy, fmt.Errorf("%s: write under lease %s (token %d) refused: status %d %s", f.taskKey(i), *l.Id, l.FencingToken, put.StatusCode(), put.Body)
	}
	return done, nil
}

// renew keeps l alive every ttl/2 until ctx ends.
func (f *fleetRun) renew(ctx context.Context, l client.Lease) {
	tick := time.NewTicker(time.Duration(f.cfg.ttlMs) * time.Millisecond / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r, err := f.api.RenewLeaseWithResponse(ctx, *l.Id, client.RenewLease{TtlMs: ptr(int(f.cfg.ttlMs))})
		if ctx.Err() != nil {
			return
		}
		if err != nil || r.StatusCode() != http.StatusOK {
			f.tally.problem("%s: renew lease %s: %v %v", l.StateKey, *l.Id, err, r)
			return
		}
		f.tally.renewals.Add(1)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// check verifies exactly-once from the tally and from the server's records.
func (f *fleetRun) check(ctx context.Context) []string {
	t := f.tally
	t.mu.Lock()
	problems := append([]string(nil), t.problems...)
	t.mu.Unlock()
	notDone := 0
	for i, by := range t.by {
		key := f.taskKey(i)
		if len(by) != 1 {
			problems = append(problems, fmt.Sprintf("%s processed %d times %v", key, len(by), by))
		}
		got, err := f.api.GetStateWithResponse(ctx, key, &client.GetStateParams{})
		var st state
		if err == nil && got.StatusCode() == http.StatusOK {
			st, err = decodeState(got.Body)
		}
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: read: %v", key, err))
		case got.StatusCode() == http.StatusNotFound:
			notDone++
			problems = append(problems, fmt.Sprintf("%s never written (not done)", key))
		case got.StatusCode() != http.StatusOK:
			problems = append(problems, fmt.Sprintf("%s: read: status %d %s", key, got.StatusCode(), got.Body))
		default:
			if !st.Data.Done {
				notDone++
				problems = append(problems, fmt.Sprintf("%s not done: %+v", key, st.Data))
			}
			if st.Version != 1 {
				problems = append(problems, fmt.Sprintf("%s written %d times (version %d)", key, st.Version, st.Version))
			}
			if len(by) > 0 && st.Data.By != by[len(by)-1] {
				problems = append(problems, fmt.Sprintf("%s: state says done by %q, tally says %v", key, st.Data.By, by))
			}
			if len(by) > 0 && (st.FencingToken == nil || *st.FencingToken != t.token[i]) {
				problems = append(problems, fmt.Sprintf("%s: written under fencing token %v, processed under %d", key, fmtToken(st.FencingToken), t.token[i]))
			}
		}
	}
	if notDone > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d tasks not done", notDone, f.cfg.tasks))
	}
	return append(problems, f.checkNoLeaseLeft(ctx)...)
}

// checkNoLeaseLeft reads the project's active leases: none may be on this run's tasks.
func (f *fleetRun) checkNoLeaseLeft(ctx context.Context) []string {
	prefix := fmt.Sprintf("task:%s-", f.cfg.run)
	var problems []string
	params := &client.ListLeasesParams{Limit: ptr(100)}
	for range 1000 {
		page, err := f.api.ListLeasesWithResponse(ctx, params)
		if err != nil || page.StatusCode() != http.StatusOK {
			return append(problems, fmt.Sprintf("list leases: %v %v", err, page))
		}
		for _, l := range *page.JSON200.Data {
			if strings.HasPrefix(l.StateKey, prefix) {
				problems = append(problems, fmt.Sprintf("%s: lease %s of %s still active", l.StateKey, *l.Id, l.Holder))
			}
		}
		if page.JSON200.Pagination.NextCursor == nil {
			break
		}
		params.Cursor = page.JSON200.Pagination.NextCursor
	}
	return problems
}

func fmtToken(p *int64) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatInt(*p, 10)
}

func ptr[T any](v T) *T { return &v }
