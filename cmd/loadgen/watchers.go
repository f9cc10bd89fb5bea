package main

// -watchers: what open SSE watchers cost the writes of everyone else, with the server, the
// watchers and the PUT clients in three processes (the in-process benchmark,
// rest/watchers_bench_test.go, shares one Go scheduler between them; so would watchers in the
// PUT clients' process: 2,000 readers woken by each PUT would delay the next PUT's client):
//
//	go build -o /tmp/as ./cmd/http-server
//	go run ./cmd/loadgen -watchers -server /tmp/as -redis redis://127.0.0.1:6399/0
//
// It starts floor (a) (compare.go) and ours over -redis, creates two projects, and for each
// watcher count opens that many watches on project A, waits until every one has its opening
// ping, then PUTs into A (every PUT fanned out to every watcher) and, at the same time, into B
// (no watcher: what one busy project costs another) at a fixed pace, and prints PUT p50/p99 of
// both beside floor (a) PUT at the same pace measured in the same run, and the ratios against
// the floor and against 0 watchers, and the server's CPU per PUT (the PUTs of both projects
// and every frame they caused, from /proc/<pid>/stat: steadier than latency on a shared
// machine). It checks every watcher received every PUT on A.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentstate/agentstate-go/core"
)

type watchersConfig struct {
	server, redisURL string
	counts           []int
	c                int
	pace, d          time.Duration
	size             int
}

func parseWatchers(args []string) (watchersConfig, error) {
	c := watchersConfig{}
	fs := flag.NewFlagSet("loadgen -watchers", flag.ContinueOnError)
	fs.Bool("watchers", true, "")
	fs.StringVar(&c.server, "server", "", "path of a built cmd/http-server binary (required)")
	fs.StringVar(&c.redisURL, "redis", "", "Redis for our server, loopback only, preferably a private one (required)")
	counts := fs.String("n", "0,400,2000", "watcher counts, comma-separated")
	fs.IntVar(&c.c, "c", 2, "PUT clients per project")
	fs.DurationVar(&c.pace, "pace", 10*time.Millisecond, "pause of each PUT client between its PUTs")
	fs.DurationVar(&c.d, "d", 5*time.Second, "duration of each measurement")
	fs.IntVar(&c.size, "size", 200, "bytes of each PUT's data object")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 || n > 10_000 {
			return c, fmt.Errorf("-n: %q is not 0..10000", s)
		}
		c.counts = append(c.counts, n)
	}
	switch {
	case c.server == "" || c.redisURL == "":
		return c, errors.New("-watchers needs -server (a built cmd/http-server) and -redis")
	case c.d <= 0 || c.d > maxDuration:
		return c, fmt.Errorf("-d must be 0..%s", maxDuration)
	case c.c < 1 || c.c > maxConcurrency:
		return c, fmt.Errorf("-c must be 1..%d", maxConcurrency)
	}
	_, err := checkRedisURL(c.redisURL)
	return c, err
}

// raiseFileLimit lifts the soft open-files limit to the hard one: each watcher is a socket
// here and one in the server (which inherits the limit).
func raiseFileLimit(need uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return err
		}
	}
	if l.Cur < need {
		return fmt.Errorf("open-files limit %d is below the %d this run needs (ulimit -n)", l.Cur, need)
	}
	return nil
}

func runWatchers(args []string) error {
	wc, err := parseWatchers(args)
	if err != nil {
		return err
	}
	most := 0
	for _, n := range wc.counts {
		most = max(most, n)
	}
	if err := raiseFileLimit(uint64(most + 4*wc.c + 512)); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	admin := core.NewAPIKeySecret()
	var targets []*target
	defer func() {
		for _, t := range targets {
			_ = t.cmd.Process.Kill()
			_ = t.cmd.Wait()
		}
	}()
	floor, err := startTarget("floor (a) bare", self, []string{"-floor", "bare"}, "")
	if err != nil {
		return err
	}
	targets = append(targets, floor)
	ours, err := startTarget("ours", wc.server, []string{"-redis-url", wc.redisURL, "-admin-token", admin,
		"-rate-limit-per-min", "1000000000", "-max-connections", strconv.Itoa(most + 256)}, "")
	if err != nil {
		return err
	}
	targets = append(targets, ours)

	fmt.Printf("PUTs: %d clients per project, %s apart, %s per measurement, %d-byte data; watchers on project A only\n",
		wc.c, wc.pace, wc.d, wc.size)
	fmt.Printf("%8s %-14s %9s %9s %9s %10s %12s %13s %8s\n", "watchers", "target", "PUTs", "p50", "p99", "p99 vs (a)", "p99 vs 0 w.",
		"server CPU/PUT", "vs 0 w.")
	var zeroA, zeroB time.Duration
	var zeroCPU float64
	for _, n := range wc.counts {
		a, err := createProject(ours.url, admin)
		if err != nil {
			return err
		}
		b, err := createProject(ours.url, admin)
		if err != nil {
			return err
		}
		ws, err := startWatcherProc(self, ours.url, a, n)
		if err != nil {
			return err
		}
		put := func(t *target, key string) (*summary, error) {
			cl := newClient(config{url: t.url, key: key, c: wc.c, size: wc.size, keys: 10, pace: wc.pace})
			ctx, cancel := context.WithTimeout(context.Background(), wc.d)
			defer cancel()
			workers, _ := cl.fire(ctx, 0, func(int64) string { return http.MethodPut })
			s := summarize(workers)
			if s.failed > 0 {
				return nil, fmt.Errorf("%s: %d of %d PUTs failed (statuses %v, first error %v)", t.name, s.failed, s.total, s.status, s.firstErr)
			}
			return &s, nil
		}
		fl, err := put(floor, "")
		if err != nil {
			ws.close()
			return err
		}
		cpu0, err := procCPU(ours.cmd.Process.Pid)
		if err != nil {
			ws.close()
			return err
		}
		var sa, sb *summary
		var ea, eb error
		var wg sync.WaitGroup
		wg.Go(func() { sa, ea = put(ours, a) })
		wg.Go(func() { sb, eb = put(ours, b) })
		wg.Wait()
		if err := errors.Join(ea, eb); err != nil {
			ws.close()
			return err
		}
		missing, err := ws.waitFor(sa.total)
		cpu1, _ := procCPU(ours.cmd.Process.Pid) // the PUTs and every frame they caused
		ws.close()
		if err != nil {
			return err
		}
		cpuPerPut := float64((cpu1 - cpu0).Microseconds()) / 1000 / float64(sa.total+sb.total)
		if n == 0 {
			zeroA, zeroB = sa.pct(0.99), sb.pct(0.99)
		}
		if n == 0 {
			zeroCPU = cpuPerPut
		}
		row := func(name string, s *summary, zero time.Duration, cpu string) {
			fmt.Printf("%8d %-14s %9d %9s %9s %10.2f %12.2f %s\n", n, name, s.total, ms(s.pct(0.5)), ms(s.pct(0.99)),
				float64(s.pct(0.99))/float64(fl.pct(0.99)), float64(s.pct(0.99))/float64(zero), cpu)
		}
		fmt.Printf("%8d %-14s %9d %9s %9s %10s %12s\n", n, "floor (a)", fl.total, ms(fl.pct(0.5)), ms(fl.pct(0.99)), "1.00", "-")
		row("ours, A", sa, zeroA, fmt.Sprintf("%11.2fms %8.1f", cpuPerPut, cpuPerPut/zeroCPU))
		row("ours, B", sb, zeroB, "")
		if missing > 0 {
			return fmt.Errorf("%d watchers: %d (watcher, PUT) deliveries missing after 30s", n, missing)
		}
	}
	return nil
}

// createProject makes a project through the admin API and returns its first key.
func createProject(base, admin string) (string, error) {
	body := []byte(`{"name":"loadgen watchers"}`)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/projects", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		APIKey struct {
			Key string `json:"key"`
		} `json:"api_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.APIKey.Key == "" {
		return "", fmt.Errorf("create project: status %d, %v", resp.StatusCode, err)
	}
	return out.APIKey.Key, nil
}

// watcherSet is n open watch streams, each counting the state events it was sent.
type watcherSet struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	got    []atomic.Int64
}

// openWatchers opens n watches of the key's project and returns once each has its opening
// ping (so it is subscribed).
func openWatchers(base, key string, n int) (*watcherSet, error) {
	ctx, cancel := context.WithCancel(context.Background())
	ws := &watcherSet{cancel: cancel, got: make([]atomic.Int64, n)}
	cl := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: dialer(false).DialContext, DisableCompression: true}}
	ready := make(chan error, n)
	for i := range n {
		ws.wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/states/watch", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := cl.Do(req)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("watch: status %d", resp.StatusCode)
				resp.Body.Close()
			}
			if err != nil {
				ready <- err
				return
			}
			defer resp.Body.Close()
			r := bufio.NewReaderSize(resp.Body, 4096)
			first := true
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				switch {
				case first && bytes.HasPrefix(line, []byte("event: ping")):
					first = false
					ready <- nil
				case bytes.HasPrefix(line, []byte("id: ")):
					ws.got[i].Add(1)
				}
			}
		})
	}
	for range n {
		if err := <-ready; err != nil {
			ws.close()
			return nil, err
		}
	}
	return ws, nil
}

// waitFor waits until every watcher has been sent want events, or d passes, and returns how
// many (watcher, event) deliveries are still missing.
func (ws *watcherSet) waitFor(want int64, d time.Duration) int64 {
	deadline := time.Now().Add(d)
	for {
		var missing int64
		for i := range ws.got {
			missing += max(want-ws.got[i].Load(), 0)
		}
		if missing == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (ws *watcherSet) close() {
	ws.cancel()
	ws.wg.Wait()
}

// watcherProc is a watcherSet held by a child process (loadgen -hold-watchers), driven over
// its stdin and stdout: "ready" once every watch has its opening ping; a line with a count
// asks for the (watcher, event) deliveries still missing of that many events each, answered
// within 30 s; closing stdin ends it.
type watcherProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startWatcherProc(self, base, key string, n int) (*watcherProc, error) {
	cmd := exec.Command(self, "-hold-watchers", "-url", base, "-key", key, "-n", strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &watcherProc{cmd: cmd, in: in, out: bufio.NewReader(out)}
	if line, err := p.out.ReadString('\n'); err != nil || line != "ready\n" {
		p.close()
		return nil, fmt.Errorf("watchers process: %q, %v", line, err)
	}
	return p, nil
}

func (p *watcherProc) waitFor(want int64) (int64, error) {
	if _, err := fmt.Fprintln(p.in, want); err != nil {
		return 0, err
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("watchers process: %w", err)
	}
	return strconv.ParseInt(strings.TrimSpace(line), 10, 64)
}

func (p *watcherProc) close() {
	_ = p.in.Close()
	_ = p.cmd.Wait()
}

// runHoldWatchers is the child of startWatcherProc.
func runHoldWatchers(args []string) error {
	fs := flag.NewFlagSet("loadgen -hold-watchers", flag.ContinueOnError)
	fs.Bool("hold-watchers", true, "")
	base := fs.String("url", "", "server base URL")
	key := fs.String("key", "", "API key of the watched project")
	n := fs.Int("n", 0, "watchers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := raiseFileLimit(uint64(*n + 64)); err != nil {
		return err
	}
	ws, err := openWatchers(*base, *key, *n)
	if err != nil {
		return err
	}
	defer ws.close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		want, err := strconv.ParseInt(in.Text(), 10, 64)
		if err != nil {
			return err
		}
		fmt.Println(ws.waitFor(want, 30*time.Second))
	}
	return in.Err()
}
