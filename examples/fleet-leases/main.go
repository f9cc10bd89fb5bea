// Command fleet-leases is v1's lease recipe as a self-checking harness: K workers race over N
// tasks, one lease per task (`task:<id>`), over the REST API. A worker that gets 409 skips the
// task; one that gets the lease checks the task is not done yet, "processes" it, records it done
// with its lease id and fencing token, and releases. At the end every task must have been
// processed exactly once and its state written once. It prints PASS or FAIL.
//
//	go run ./examples/fleet-leases                       # against an in-process server (embedded store)
//	go run ./examples/fleet-leases -url http://127.0.0.1:8080 -key as_live_...
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/redisstore"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("PASS")
}

type config struct {
	url, key       string
	workers, tasks int
	deadline       time.Duration
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("fleet-leases", flag.ContinueOnError)
	c := config{}
	fs.StringVar(&c.url, "url", os.Getenv("AGENTSTATE_URL"), "server base URL (empty: start one in-process on an embedded store)")
	fs.StringVar(&c.key, "key", os.Getenv("AGENTSTATE_API_KEY"), "API key for -url")
	fs.IntVar(&c.workers, "workers", 8, "concurrent workers")
	fs.IntVar(&c.tasks, "tasks", 50, "tasks")
	fs.DurationVar(&c.deadline, "deadline", 60*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.url == "" {
		stop, err := startServer(ctx, &c)
		if err != nil {
			return err
		}
		defer stop()
	} else if err := loopbackOnly(c.url); err != nil {
		return err
	}
	return fleet(ctx, c, out)
}

// startServer runs the real HTTP surface in-process on an embedded store.
func startServer(ctx context.Context, c *config) (func(), error) {
	conn, err := redisstore.Open(ctx, "")
	if err != nil {
		return nil, err
	}
	a := app.New(conn.Store, core.SystemClock{}, core.DefaultLimits())
	key, err := a.Auth.CreateProjectWithKey(ctx, core.Project{ID: "fleet", Name: "fleet"}, "")
	if err != nil {
		conn.Close()
		return nil, err
	}
	ts := httptest.NewServer(a.NewHandler(0))
	c.url, c.key = ts.URL, key.Key
	return func() { ts.Close(); conn.Close() }, nil
}

// loopbackOnly keeps this load harness pointed at the local machine.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address", u.Hostname())
		}
	}
	return nil
}

type client struct {
	base, key string
	http      *http.Client
}

func (c client) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && out != nil && resp.StatusCode < 300 {
		err = json.Unmarshal(b, out)
	}
	return resp.StatusCode, err
}

type task struct {
	Done bool   `json:"done"`
	By   string `json:"by"`
}

func taskKey(i int) string { return url.PathEscape(fmt.Sprintf("task:%d", i)) }

// fleet runs the workers and checks exactly-once processing.
func fleet(ctx context.Context, c config, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	api := client{base: c.url + "/api/v1", key: c.key, http: &http.Client{Timeout: 30 * time.Second}}
	var mu sync.Mutex
	processed := make([][]string, c.tasks) // who processed each task
	var wg sync.WaitGroup
	errs := make(chan error, c.workers)
	for w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprint("worker-", w)
			for pass := 0; ctx.Err() == nil; pass++ {
				pending := 0
				for _, i := range rand.Perm(c.tasks) {
					done, err := attempt(ctx, api, name, i, func() {
						mu.Lock()
						processed[i] = append(processed[i], name)
						mu.Unlock()
					})
					if err != nil {
						errs <- err
						return
					}
					if !done {
						pending++
					}
				}
				if pending == 0 {
					return
				}
				time.Sleep(20 * time.Millisecond) // others hold the rest: look again shortly
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	var problems []error
	for i, by := range processed {
		if len(by) != 1 {
			problems = append(problems, fmt.Errorf("task %d processed %d times (%v)", i, len(by), by))
		}
		var st core.State
		if code, err := api.do(ctx, "GET", "/states/"+taskKey(i), nil, &st); err != nil || code != 200 {
			problems = append(problems, fmt.Errorf("task %d: state read %d %v", i, code, err))
		} else if st.Version != 1 {
			problems = append(problems, fmt.Errorf("task %d written %d times", i, st.Version))
		}
	}
	fmt.Fprintf(out, "%d workers, %d tasks, %d processed exactly once\n", c.workers, c.tasks, c.tasks-len(problems))
	return errors.Join(problems...)
}

// attempt tries one task; done reports whether the task is finished (by anyone).
func attempt(ctx context.Context, api client, worker string, i int, process func()) (bool, error) {
	var l core.Lease
	code, err := api.do(ctx, "POST", "/states/"+taskKey(i)+"/lease", map[string]any{"holder": worker, "ttl_ms": 30000}, &l)
	if err != nil {
		return false, err
	}
	if code == http.StatusConflict {
		return false, nil // someone else has it: skip, as the recipe says
	}
	if code != http.StatusCreated {
		return false, fmt.Errorf("acquire task %d: status %d", i, code)
	}
	defer api.do(context.WithoutCancel(ctx), "DELETE", "/leases/"+l.ID, nil, nil) //nolint:errcheck // release in a finally

	var st struct {
		Data task `json:"data"`
	}
	code, err = api.do(ctx, "GET", "/states/"+taskKey(i), nil, &st)
	if err != nil {
		return false, err
	}
	if code == http.StatusOK && st.Data.Done {
		return true, nil
	}
	process()
	time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // the work
	code, err = api.do(ctx, "PUT", "/states/"+taskKey(i), map[string]any{
		"agent_id": worker, "data": task{Done: true, By: worker}, "lease_id": l.ID, "fencing_token": l.FencingToken,
	}, nil)
	if err != nil {
		return false, err
	}
	if code != http.StatusOK {
		return false, fmt.Errorf("record task %d: status %d", i, code)
	}
	return true, nil
}
