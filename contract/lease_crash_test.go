package contract

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// crashChildEnv, when set to a Redis URL, turns this test binary into a lease server on that
// store (see TestLeaseServerKilledMidRequest): it prints its address and serves until killed.
const crashChildEnv = "AGENTSTATE_TEST_CRASH_CHILD_REDIS"

func TestMain(m *testing.M) {
	if url := os.Getenv(crashChildEnv); url != "" {
		serveCrashChild(url)
		return
	}
	os.Exit(m.Run())
}

func serveCrashChild(url string) {
	conn, err := redisstore.Open(context.Background(), redisstore.Options{URL: url})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	a := app.New(conn.Store, core.SystemClock{}, core.DefaultLimits())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(ln.Addr().String())
	_ = http.Serve(ln, a.NewHandler(0))
}

// startCrashChild runs a server in a child process on url and returns its base URL.
func startCrashChild(t *testing.T, url string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+url)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "child server did not start")
	return cmd, "http://" + line[:len(line)-1]
}

// TestLeaseServerKilledMidRequest kills a server process (SIGKILL) while clients acquire,
// wait, write under and release leases through it, three times over. Afterwards every
// current lease has its record and its token was counted once, and each key is acquirable
// once the leases' own expiry (and the dead server's waiters' wait_ms) has passed.
func TestLeaseServerKilledMidRequest(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		url := testenv.RedisURL()
		if e.Mini != nil {
			url = "redis://" + e.Mini.Addr()
		}
		p := testenv.NewProject(t, e.App(t))
		keys := []string{"crash-0", "crash-1"}
		const ttl, wait = 1000, 300
		var granted atomic.Int64
		for round := range 3 {
			cmd, base := startCrashChild(t, url)
			client := &http.Client{Timeout: 5 * time.Second}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for w := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
					for {
						select {
						case <-stop:
							return
						default:
						}
						key := keys[r.IntN(len(keys))]
						body := fmt.Sprintf(`{"holder":"w%d","ttl_ms":%d,"wait_ms":%d}`, w, ttl, r.IntN(wait))
						st, out := post(client, "POST", base+"/api/v1/states/"+key+"/lease", p.Key, body)
						if st != 201 {
							continue
						}
						granted.Add(1)
						id := jsonField(out, "id")
						post(client, "PUT", base+"/api/v1/states/"+key, p.Key,
							fmt.Sprintf(`{"agent_id":"w%d","data":{"r":%d},"lease_id":%q}`, w, round, id))
						post(client, "DELETE", base+"/api/v1/leases/"+id, p.Key, "")
					}
				}()
			}
			time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
			require.NoError(t, cmd.Process.Kill())
			_ = cmd.Wait()
			close(stop)
			wg.Wait()
		}
		t.Logf("%d leases granted across 3 killed servers", granted.Load())
		// The dead servers' waiters count as gone after their wait_ms plus the queue's grace.
		time.Sleep(wait*time.Millisecond + 1200*time.Millisecond)
		clock := testenv.NewClock()
		clock.Advance(time.Since(clock.Now()) + time.Duration(ttl+1)*time.Millisecond)
		after := app.New(e.Store, clock, core.DefaultLimits())
		for _, k := range keys {
			leaseInvariants(t, e, p.ID, k)
			l, err := after.Leases.Acquire(context.Background(), p.P, k, core.AcquireLease{Holder: "after"})
			require.NoError(t, err, "%s is acquirable once the leases' own expiry passed", k)
			require.NoError(t, after.Leases.Release(context.Background(), p.P, l.ID))
		}
	})
}

// post sends one request; a failed one (the server was killed) answers status 0.
func post(c *http.Client, method, u, key, body string) (int, []byte) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, u, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func jsonField(b []byte, field string) string {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	s, _ := m[field].(string)
	return s
}
