package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// stdioClient drives run() over pipes, one JSON-RPC message per line.
type stdioClient struct {
	in    io.Writer
	id    int
	resps chan rpcMsg
	notes chan string // methods and params of the notifications received
}

type rpcMsg struct {
	ID     int             `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// newStdioClient reads out in the background: notifications to notes, responses to resps.
func newStdioClient(t *testing.T, in io.Writer, out io.Reader) *stdioClient {
	c := &stdioClient{in: in, resps: make(chan rpcMsg, 100), notes: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var msg rpcMsg
			if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
				t.Errorf("stdout must carry only JSON-RPC: %s", sc.Text())
				return
			}
			if msg.Method != "" {
				c.notes <- msg.Method + " " + string(msg.Params)
			} else {
				c.resps <- msg
			}
		}
		close(c.resps)
	}()
	return c
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
	return newStdioClient(t, inW, outR)
}

func (c *stdioClient) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	res, rpcErr := c.send(t, method, params)
	require.Nil(t, rpcErr, "%s: %s", method, rpcErr)
	return res
}

// send makes one request and returns its result or its JSON-RPC error; notifications that
// arrive meanwhile go to c.notes.
func (c *stdioClient) send(t *testing.T, method string, params any) (json.RawMessage, json.RawMessage) {
	t.Helper()
	c.id++
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": method, "params": params})
	_, err := fmt.Fprintf(c.in, "%s\n", b)
	require.NoError(t, err)
	for {
		select {
		case msg, ok := <-c.resps:
			if !ok {
				t.Fatal("stdout closed")
			}
			if msg.ID == c.id {
				return msg.Result, msg.Error
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no response to %s", method)
		}
	}
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

	subscribeAndRevoke(t, c, a, p, func() {
		// Revoke the key behind the server's back.
		require.NoError(t, e.Rdb.HSet(context.Background(), "as:cred:"+core.SHA256Hex([]byte(p.Key)), "revoked_at", 1).Err())
	})
}

// subscribeAndRevoke subscribes to a state, sees a write notified, revokes the credential and
// then checks that every kind of request is refused and the subscription delivers no more.
func subscribeAndRevoke(t *testing.T, c *stdioClient, a *app.App, p testenv.Project, revoke func()) {
	t.Helper()
	write := func(n int) {
		_, _, err := a.States.Put(context.Background(), p.P, core.PutState{Key: "watched", Body: core.StateWrite{AgentID: "other", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}})
		require.NoError(t, err)
	}
	write(1)
	uri := "agentstate://states/watched"
	c.call(t, "resources/subscribe", map[string]any{"uri": uri})
	c.call(t, "resources/subscribe", map[string]any{"uri": uri}) // subscribing again is safe
	write(2)
	select {
	case n := <-c.notes:
		assert.Contains(t, n, "notifications/resources/updated")
		assert.Contains(t, n, uri)
	case <-time.After(10 * time.Second):
		t.Fatal("no notifications/resources/updated after a write to a subscribed state")
	}

	revoke()
	for _, req := range []struct {
		method string
		params any
	}{
		{"tools/list", map[string]any{}},
		{"tools/call", map[string]any{"name": "get_state", "arguments": map[string]any{"state_key": "k"}}},
		{"resources/read", map[string]any{"uri": uri}},
		{"resources/templates/list", map[string]any{}},
	} {
		_, rpcErr := c.send(t, req.method, req.params)
		require.NotNil(t, rpcErr, "%s after revocation must be refused", req.method)
		assert.Contains(t, string(rpcErr), "UNAUTHORIZED", req.method)
	}
	write(3)
	select {
	case n := <-c.notes:
		t.Fatalf("a revoked credential's subscription still delivers: %s", n)
	case <-time.After(1500 * time.Millisecond):
	}
}

// TestStdioRefusesUnknownKeyAtStart: a key the store does not know stops the server at once
// with a message saying so (main prints it to stderr and exits 1).
func TestStdioRefusesUnknownKeyAtStart(t *testing.T) {
	testenv.Stores[0].Open(t)
	err := run(context.Background(), []string{"-redis-url", testenv.RedisURL(), "-api-key", core.NewAPIKeySecret()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a live credential")
}

func TestStdioRefusesMalformedKey(t *testing.T) {
	err := run(context.Background(), []string{"-api-key", "as_live_short"}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "malformed")
}

// TestRemoteStdio: with AGENTSTATE_URL the stdio server forwards to a real http-server
// (our handler on a loopback port, real Redis): tools, a resource subscription delivered over
// the GET stream, and revocation mid-session all behave as on local stdio.
func TestRemoteStdio(t *testing.T) {
	e := testenv.Stores[0].Open(t)
	s := testenv.NewServer(t, e)
	c := start(t, "-url", s.URL, "-api-key", s.Project.Key)
	exercise(t, c)
	subscribeAndRevoke(t, c, s.App, s.Project, func() {
		require.NoError(t, e.Rdb.HSet(context.Background(), "as:cred:"+core.SHA256Hex([]byte(s.Project.Key)), "revoked_at", 1).Err())
	})

	err := run(context.Background(), []string{"-url", s.URL, "-api-key", core.NewAPIKeySecret()}, nil, io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused AGENTSTATE_API_KEY")
}

// TestRemoteStdioSurvivesALostSession: the server forgets the bridge's session (idle past its
// time; here its record is deleted) and answers 404; the bridge opens a new one with the host's
// initialize and the host's next calls work as before.
func TestRemoteStdioSurvivesALostSession(t *testing.T) {
	e := testenv.Stores[0].Open(t)
	s := testenv.NewServer(t, e)
	c := start(t, "-url", s.URL, "-api-key", s.Project.Key)
	exercise(t, c)
	forget := func() int {
		n := 0
		for _, k := range e.ProjectKeys(t, s.Project.ID) {
			if strings.Contains(k, ":mcpsess:") {
				require.NoError(t, e.Rdb.Del(context.Background(), k).Err())
				n++
			}
		}
		return n
	}
	for range 2 { // twice: each lost session is replaced
		require.Equal(t, 1, forget(), "the bridge holds one session")
		r := c.tool(t, "get_state", map[string]any{"state_key": "k"})
		assert.False(t, r.IsError, "after the server lost the session: %s", r.Content)
	}
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
	assert.True(t, strings.HasPrefix(r.Content[0].Text, "Error: STORE_UNAVAILABLE: The store is temporarily unavailable; retry shortly"), "%v", r.Content)

	srv.Start()
	require.Eventually(t, func() bool { return !c.tool(t, "get_state", map[string]any{"state_key": "k"}).IsError },
		10*time.Second, 100*time.Millisecond)
}
