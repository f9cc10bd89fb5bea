package contract

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// outagePort is this test's own redis-server: no other test uses it (the 7201-7209 range is the
// fault tests', and the durability tests use 7203, whose clients may still be dialing it).
const outagePort = 7211

// While Redis is down every face says so in a retryable way (503 STORE_UNAVAILABLE with
// Retry-After, an MCP isError result saying retry, /readyz 503), nothing panics, an open
// watch stays open, and once Redis is back the same server serves again by itself.
func TestStoreOutageAnswers503AndRecovers(t *testing.T) {
	srv := testenv.StartRedis(t, outagePort, "--appendonly", "yes", "--appendfsync", "always")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	e := &testenv.Env{Name: "killable", Rdb: rdb, Store: redisstore.New(rdb), Clock: testenv.NewClock()}
	s := testenv.NewServer(t, e)
	rest := newREST(s, s.Project.Key)
	put := map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{"n": 1}}
	ok(t, rest.Call(t, "upsert_state", put))
	w := openWatch(t, s.URL, s.Project.Key, "", nil)
	require.Equal(t, 200, w.resp.StatusCode)

	srv.Kill()
	for _, tool := range []string{"upsert_state", "get_state"} {
		r := rest.Call(t, tool, map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{"n": 2}})
		assert.Equal(t, http.StatusServiceUnavailable, r.Status, tool)
		assert.Equal(t, core.CodeStoreUnavailable, r.Code, tool)
		assert.Equal(t, "1", r.Header.Get("Retry-After"), tool)
		var body core.WireError
		r.Decode(t, &body)
		assert.True(t, body.Retryable, tool)
	}
	// Over HTTP the MCP credential is checked before the JSON-RPC call runs, so the outage is
	// an HTTP 503 like REST's (stdio answers an isError result: cmd/mcp-server's test).
	resp, body := send(t, "POST", s.URL+"/api/mcp", s.Project.Key, map[string]any{"jsonrpc": "2.0", "id": 1,
		"method": "tools/call", "params": map[string]any{"name": "get_state", "arguments": map[string]any{"state_key": "k"}}}, nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Equal(t, core.CodeStoreUnavailable, envelope(t, body).Code)
	assert.Contains(t, strings.ToLower(envelope(t, body).Message), "retry")
	resp, _ = send(t, "GET", s.URL+"/readyz", "", nil, nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp, _ = send(t, "GET", s.URL+"/healthz", "", nil, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the process itself is alive")

	srv.Start()
	require.Eventually(t, func() bool {
		resp, _ := send(t, "GET", s.URL+"/readyz", "", nil, nil)
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "/readyz recovers without a server restart")
	put["data"] = map[string]any{"n": 3}
	ok(t, rest.Call(t, "upsert_state", put))
	f := w.next(t)
	assert.Equal(t, "state.upsert", f.Event, "the watch opened before the outage delivers the write after it")
	assert.Contains(t, f.Data, `"n":1`)
	f = w.next(t)
	assert.Contains(t, f.Data, `"n":3`, "and nothing the outage refused")
}
