package contract

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"

	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// blackHole accepts connections and never answers: a Redis host that hangs (paused, or
// behind a dropped route) rather than refusing.
func blackHole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// TestReadyzAnswersInTimeWhenTheStoreHangs: /readyz promises an answer within its 2 s bound;
// with go-redis's default timeouts a hung store used to hold it for its read timeout and
// retries instead, past the probe's own deadline.
func TestReadyzAnswersInTimeWhenTheStoreHangs(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: blackHole(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	e := &testenv.Env{Name: "hung", Rdb: rdb, Store: redisstore.New(rdb), Clock: testenv.NewClock()}
	ts := httptest.NewServer(e.App(t).NewHandler(0))
	t.Cleanup(ts.Close)

	start := time.Now()
	resp, out := send(t, http.MethodGet, ts.URL+"/readyz", "", nil, nil)
	took := time.Since(start)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(out))
	assert.Equal(t, "STORE_UNAVAILABLE", string(envelope(t, out).Code))
	assert.Less(t, took, 2500*time.Millisecond, "/readyz took %s", took)
	t.Logf("/readyz answered %d in %s", resp.StatusCode, took)
}
