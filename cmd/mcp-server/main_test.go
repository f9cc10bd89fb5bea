package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// stdioClient drives run() over pipes, one JSON-RPC message per line.
type stdioClient struct {
	in  *io.PipeWriter
	out *bufio.Scanner
	id  int
}

func start(t *testing.T, args ...string) *stdioClient {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, inR, outW, io.Discard); _ = outW.Close() }()
	t.Cleanup(func() {
		_ = inW.Close()
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("stdio server did not stop")
		}
	})
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &stdioClient{in: inW, out: sc}
}

func (c *stdioClient) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	c.id++
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method, "params": params})
	_, err := fmt.Fprintf(c.in, "%s\n", b)
	require.NoError(t, err)
	for c.out.Scan() {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		require.NoError(t, json.Unmarshal(c.out.Bytes(), &msg), "stdout must carry only JSON-RPC: %s", c.out.Text())
		if msg.ID == c.id {
			require.Nil(t, msg.Error, "%s", c.out.Text())
			return msg.Result
		}
	}
	t.Fatalf("stdout closed: %v", c.out.Err())
	return nil
}

type toolResult struct {
	IsError           bool `json:"isError"`
	Content           []struct{ Text string }
	StructuredContent json.RawMessage `json:"structuredContent"`
}

func (c *stdioClient) tool(t *testing.T, name string, args any) toolResult {
	t.Helper()
	var r toolResult
	require.NoError(t, json.Unmarshal(c.call(t, "tools/call", map[string]any{"name": name, "arguments": args}), &r))
	return r
}

func exercise(t *testing.T, c *stdioClient) {
	c.call(t, "initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "t", "version": "1"}})
	var list struct{ Tools []struct{ Name string } }
	require.NoError(t, json.Unmarshal(c.call(t, "tools/list", map[string]any{}), &list))
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	assert.Subset(t, names, []string{"upsert_state", "get_state", "query_states", "delete_state", "list_state_events", "acquire_lease"})

	r := c.tool(t, "upsert_state", map[string]any{"state_key": "k", "agent_id": "a", "data": json.RawMessage(`{"z":1,"a":2}`)})
	require.False(t, r.IsError, r.Content)
	r = c.tool(t, "get_state", map[string]any{"state_key": "k"})
	require.False(t, r.IsError)
	var st core.State
	require.NoError(t, json.Unmarshal(r.StructuredContent, &st))
	assert.Equal(t, `{"z":1,"a":2}`, string(st.Data), "key order survives the stdio path")
}

func TestStdioEmbedded(t *testing.T) {
	t.Setenv("AGENTSTATE_REDIS_URL", "")
	exercise(t, start(t, "-api-key", core.NewAPIKeySecret()))
}

func TestStdioRealRedisAndRevocation(t *testing.T) {
	e := testenv.Stores[0].Open(t)
	a := e.App(t)
	p := testenv.NewProject(t, a)
	c := start(t, "-redis-url", testenv.RedisURL(), "-api-key", p.Key)
	exercise(t, c)

	// Revoke the key behind the server's back: the very next call is refused.
	require.NoError(t, e.Rdb.HSet(context.Background(), "as:cred:"+core.SHA256Hex([]byte(p.Key)), "revoked_at", 1).Err())
	r := c.tool(t, "get_state", map[string]any{"state_key": "k"})
	assert.True(t, r.IsError)
	assert.Equal(t, "Error: UNAUTHORIZED: Unauthorized", r.Content[0].Text)
}

func TestStdioRefusesMalformedKey(t *testing.T) {
	err := run(context.Background(), []string{"-api-key", "as_live_short"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "malformed")
}

// Redis going away mid-session: the tool call is an isError result that names
// STORE_UNAVAILABLE and says to retry; once Redis is back the same session works again.
func TestStdioStoreOutage(t *testing.T) {
	srv := testenv.StartRedis(t, 7204, "--appendonly", "yes", "--appendfsync", "always")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	e := &testenv.Env{Rdb: rdb, Store: redisstore.New(rdb), Clock: testenv.NewClock()}
	p := testenv.NewProject(t, e.App(t))
	c := start(t, "-redis-url", "redis://"+srv.Addr(), "-api-key", p.Key)
	args := map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{"n": 1}}
	require.False(t, c.tool(t, "upsert_state", args).IsError)

	srv.Kill()
	r := c.tool(t, "get_state", map[string]any{"state_key": "k"})
	assert.True(t, r.IsError)
	assert.Equal(t, "Error: STORE_UNAVAILABLE: The store is temporarily unavailable; retry shortly", r.Content[0].Text)

	srv.Start()
	require.Eventually(t, func() bool { return !c.tool(t, "get_state", map[string]any{"state_key": "k"}).IsError },
		10*time.Second, 100*time.Millisecond)
}
