package contract

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// Cursors and numbers a probe sent: int64's maximum, the first integer past
// core.MaxCursorSequence, and a stream id part past uint64.
var (
	maxInt64     = strconv.FormatInt(math.MaxInt64, 10)
	pastCursor   = strconv.FormatInt(core.MaxCursorSequence+1, 10)
	pastUint64ID = "18446744073709551616-0"
)

// projectSnapshot is every key of the project with its type and full contents, except the
// rate-limit windows every request counts in. Two equal snapshots mean a request changed
// nothing in the store.
func projectSnapshot(t *testing.T, e *testenv.Env, project string) map[string]string {
	t.Helper()
	ctx := context.Background()
	var node redis.Cmdable = e.Rdb
	if c, ok := e.Rdb.(*redis.ClusterClient); ok {
		m, err := c.MasterForKey(ctx, "as:{"+project+"}:")
		require.NoError(t, err)
		node = m
	}
	snap := map[string]string{}
	for _, k := range e.ProjectKeys(t, project) {
		if strings.Contains(k, "}:rl:") {
			continue
		}
		typ, err := node.Type(ctx, k).Result()
		require.NoError(t, err)
		var v any
		switch typ {
		case "string":
			v, err = node.Get(ctx, k).Result()
		case "hash":
			v, err = node.HGetAll(ctx, k).Result()
		case "zset":
			v, err = node.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "set":
			v, err = node.SMembers(ctx, k).Result()
		case "list":
			v, err = node.LRange(ctx, k, 0, -1).Result()
		case "stream":
			v, err = node.XRange(ctx, k, "-", "+").Result()
		default:
			t.Fatalf("snapshot: key %s has type %s", k, typ)
		}
		require.NoError(t, err)
		snap[k] = typ + " " + fmt.Sprint(v)
	}
	return snap
}

// seedProject gives the project something of each kind a bad request could touch: a state
// with two versions, a live lease (so a fencing counter and lease events exist), a claim, a
// conversation.
func seedProject(t *testing.T, s *testenv.Server) {
	t.Helper()
	for _, n := range []int{1, 2} {
		resp, out := send(t, "PUT", s.URL+"/api/v1/states/k", s.Project.Key, map[string]any{"agent_id": "a", "data": map[string]any{"n": n}}, nil)
		require.Equal(t, 200, resp.StatusCode, string(out))
	}
	resp, out := send(t, "POST", s.URL+"/api/v1/states/L/lease", s.Project.Key, map[string]any{"holder": "h", "ttl_ms": 600000}, nil)
	require.Equal(t, 201, resp.StatusCode, string(out))
	resp, out = send(t, "POST", s.URL+"/api/v1/claims", s.Project.Key, map[string]any{"subject_type": "task", "subject_id": "t1", "statement": "done",
		"evidence": []map[string]any{{"kind": "text_hash", "source": "s", "data": "x", "hash": core.SHA256Hex([]byte("x"))}}}, nil)
	require.Equal(t, 201, resp.StatusCode, string(out))
	resp, out = send(t, "POST", s.URL+"/api/v1/conversations", s.Project.Key, map[string]any{"messages": msgs("hello")}, nil)
	require.Equal(t, 201, resp.StatusCode, string(out))
}

// requireEnvelope checks a REST error answer: the status, valid UTF-8 JSON, the v1 envelope
// with the code and a message.
func requireEnvelope(t *testing.T, what string, status int, hdr http.Header, body []byte, wantStatus int, wantCode core.Code) {
	t.Helper()
	require.Equal(t, wantStatus, status, "%s: %s", what, body)
	assert.True(t, strings.HasPrefix(hdr.Get("Content-Type"), "application/json"), "%s: Content-Type %q", what, hdr.Get("Content-Type"))
	require.True(t, utf8.Valid(body) && json.Valid(body), "%s: not UTF-8 JSON: %q", what, body)
	var env struct {
		Error core.WireError `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &env), what)
	assert.Equal(t, wantCode, env.Error.Code, "%s: %s", what, body)
	assert.NotEmpty(t, env.Error.Message, what)
	assert.False(t, env.Error.Retryable, "%s: bad input is not worth retrying", what)
}

// TestBadInputIsRefusedOverREST: each input a probe found answered with a 500, stored as sent
// or silently altered is now a 400 in the v1 envelope, and the project's data is unchanged
// after all of them.
func TestBadInputIsRefusedOverREST(t *testing.T) {
	bad := "\xff\xfe"
	cases := []struct {
		name, method, path string
		body               string
		hdr                map[string]string
		status             int
		code               core.Code
	}{
		{"events after int64 max", "GET", "/api/v1/states/k/events?after=" + maxInt64, "", nil, 400, core.CodeInvalidCursor},
		{"events after 2^53", "GET", "/api/v1/states/k/events?after=" + pastCursor, "", nil, 400, core.CodeInvalidCursor},
		{"claims log after int64 max", "GET", "/api/v1/claims/log?after=" + maxInt64, "", nil, 400, core.CodeInvalidCursor},
		{"claims log after -1", "GET", "/api/v1/claims/log?after=-1", "", nil, 400, core.CodeInvalidCursor},
		{"claims log after text", "GET", "/api/v1/claims/log?after=abc", "", nil, 400, core.CodeInvalidCursor},
		{"lease events after a uint64 overflow", "GET", "/api/v1/leases/events?after=" + pastUint64ID, "", nil, 400, core.CodeInvalidCursor},
		{"lease events after int64 max", "GET", "/api/v1/leases/events?after=" + maxInt64, "", nil, 400, core.CodeInvalidCursor},
		{"watch after 2^53", "GET", "/api/v1/states/watch?once=true&after=" + pastCursor, "", nil, 400, core.CodeInvalidCursor},
		{"watch lease part past uint64", "GET", "/api/v1/states/watch?once=true&leases=true&after=1." + pastUint64ID, "", nil, 400, core.CodeInvalidCursor},
		{"query cursor int64 max", "POST", "/api/v1/states/query", `{"cursor":"` + maxInt64 + `"}`, nil, 400, core.CodeInvalidCursor},
		{"invalid UTF-8 in data", "PUT", "/api/v1/states/k", `{"agent_id":"a","data":{"x":"` + bad + `"}}`, nil, 400, core.CodeBadRequest},
		{"invalid UTF-8 as a data key", "PUT", "/api/v1/states/new", `{"agent_id":"a","data":{"` + bad + `":1}}`, nil, 400, core.CodeBadRequest},
		{"invalid UTF-8 in agent_id", "PUT", "/api/v1/states/k", `{"agent_id":"a` + bad + `","data":{}}`, nil, 400, core.CodeBadRequest},
		{"invalid UTF-8 in metadata", "PUT", "/api/v1/states/k", `{"agent_id":"a","data":{},"metadata":{"m":"` + bad + `"}}`, nil, 400, core.CodeBadRequest},
		{"invalid UTF-8 in a message", "POST", "/api/v1/conversations", `{"messages":[{"role":"user","content":"` + bad + `"}]}`, nil, 400, core.CodeBadRequest},
		{"invalid UTF-8 in a claim", "POST", "/api/v1/claims", `{"subject_type":"t","subject_id":"s","statement":"` + bad + `","evidence":[]}`, nil, 400, core.CodeBadRequest},
		{"invalid UTF-8 in a lease holder", "POST", "/api/v1/states/L2/lease", `{"holder":"` + bad + `"}`, nil, 400, core.CodeBadRequest},
		{"invalid UTF-8 in a state key", "PUT", "/api/v1/states/%FF", `{"agent_id":"a","data":{}}`, nil, 400, core.CodeBadRequest},
		{"wait_ms above its bound", "POST", "/api/v1/states/L/lease", `{"holder":"h2","wait_ms":60001}`, nil, 400, core.CodeBadRequest},
		{"negative wait_ms", "POST", "/api/v1/states/L/lease", `{"holder":"h2","wait_ms":-1}`, nil, 400, core.CodeBadRequest},
		{"wait_ms int64 max", "POST", "/api/v1/states/L/lease", `{"holder":"h2","wait_ms":` + maxInt64 + `}`, nil, 400, core.CodeBadRequest},
		{"wait_ms past int64", "POST", "/api/v1/states/L/lease", `{"holder":"h2","wait_ms":1e30}`, nil, 400, core.CodeBadRequest},
		{"ttl_ms int64 max", "POST", "/api/v1/states/L2/lease", `{"holder":"h2","ttl_ms":` + maxInt64 + `}`, nil, 400, core.CodeBadRequest},
		{"long poll wait_ms int64 max", "GET", "/api/v1/states/k?wait_version=1&wait_ms=" + maxInt64, "", nil, 400, core.CodeBadRequest},
		{"If-Match past int64", "PUT", "/api/v1/states/k", `{"agent_id":"a","data":{}}`, map[string]string{"If-Match": "99999999999999999999"}, 400, core.CodeBadRequest},
		{"expected_version past int64", "PUT", "/api/v1/states/k", `{"agent_id":"a","data":{},"expected_version":99999999999999999999}`, nil, 400, core.CodeBadRequest},
		{"fencing token past int64", "PUT", "/api/v1/states/k", `{"agent_id":"a","data":{}}`, map[string]string{"X-Fencing-Token": "99999999999999999999"}, 400, core.CodeBadRequest},
	}
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		seedProject(t, s)
		before := projectSnapshot(t, e, s.Project.ID)
		for _, c := range cases {
			var body any
			if c.body != "" {
				body = []byte(c.body)
			}
			resp, out := send(t, c.method, s.URL+c.path, s.Project.Key, body, c.hdr)
			requireEnvelope(t, c.name, resp.StatusCode, resp.Header, out, c.status, c.code)
		}
		assert.Equal(t, before, projectSnapshot(t, e, s.Project.ID), "a refused request changed the store")
	})
}

// TestBadInputIsRefusedOverMCP: the same inputs as tool arguments, over the MCP face (the REST
// face runs the same table): an isError result with the code, and nothing changed. Invalid
// UTF-8 goes as raw bytes, since a Go string would be re-encoded with U+FFFD.
func TestBadInputIsRefusedOverMCP(t *testing.T) {
	cases := []struct {
		name, tool string
		args       map[string]any
		code       core.Code
	}{
		{"events after int64 max", "list_state_events", map[string]any{"state_key": "k", "after": int64(math.MaxInt64)}, core.CodeInvalidCursor},
		{"events after 2^53", "list_state_events", map[string]any{"state_key": "k", "after": core.MaxCursorSequence + 1}, core.CodeInvalidCursor},
		{"query cursor int64 max", "query_states", map[string]any{"cursor": maxInt64}, core.CodeInvalidCursor},
		{"wait_ms above its bound", "acquire_lease", map[string]any{"state_key": "L", "holder": "h2", "wait_ms": 60001}, core.CodeBadRequest},
		{"negative wait_ms", "acquire_lease", map[string]any{"state_key": "L", "holder": "h2", "wait_ms": -1}, core.CodeBadRequest},
		{"ttl_ms int64 max", "acquire_lease", map[string]any{"state_key": "L2", "holder": "h2", "ttl_ms": int64(math.MaxInt64)}, core.CodeBadRequest},
	}
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		seedProject(t, s)
		before := projectSnapshot(t, e, s.Project.ID)
		for _, c := range cases {
			r := f.Call(t, c.tool, c.args)
			assert.Equal(t, c.code, r.Code, "%s: %s", c.name, r.Body)
		}
		if m, ok := f.(*mcpFace); ok {
			bad := "\xff\xfe"
			for name, args := range map[string]string{
				"invalid UTF-8 in data":     `{"state_key":"k","data":{"x":"` + bad + `"}}`,
				"invalid UTF-8 in agent_id": `{"state_key":"k","agent_id":"a` + bad + `","data":{}}`,
				"invalid UTF-8 in a key":    `{"state_key":"` + bad + `","data":{}}`,
			} {
				req := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"upsert_state","arguments":` + args + `}}`
				resp, out := send(t, "POST", m.base+"/api/mcp", m.key, []byte(req), nil)
				require.Equal(t, 200, resp.StatusCode, "%s: %s", name, out)
				require.True(t, utf8.Valid(out), "%s: the answer is not UTF-8: %q", name, out)
				var msg struct {
					Result struct {
						IsError bool `json:"isError"`
						Content []struct{ Text string }
					} `json:"result"`
				}
				require.NoError(t, json.Unmarshal(out, &msg), name)
				require.True(t, msg.Result.IsError, "%s: %s", name, out)
				assert.Contains(t, msg.Result.Content[0].Text, `"code":"BAD_REQUEST"`, name)
			}
		}
		assert.Equal(t, before, projectSnapshot(t, e, s.Project.ID), "a refused call changed the store")
	})
}

// TestMalformedRequestGetsTheEnvelope: a request net/http cannot parse (here a path with
// "%zz") is answered before any handler runs; through the server's listener that answer is
// the v1 envelope with its 400, not net/http's plain text.
func TestMalformedRequestGetsTheEnvelope(t *testing.T) {
	e := testenv.Stores[1].Open(t) // the embedded store: this is about HTTP parsing alone
	require.Equal(t, "embedded", e.Name)
	cfg := app.Config{Addr: "127.0.0.1:0", BodyTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	srv, ln, err := cfg.Serve(e.App(t).NewHandler(0))
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	for name, req := range map[string]string{
		"bad escape in path":    "GET /api/v1/states/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		"truncated escape":      "PUT /api/v1/states/a%2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"missing Host":          "GET /api/v1/states/a HTTP/1.1\r\n\r\n",
		"header without colon":  "GET /api/v1/states/a HTTP/1.1\r\nHost: x\r\nbroken\r\n\r\n",
		"unsupported encoding":  "POST /api/v1/states/query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
		"unsupported HTTP/9.9":  "GET /api/v1/states/a HTTP/9.9\r\nHost: x\r\n\r\n",
		"control byte in path ": "GET /api/v1/states/a\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		_, err = io.WriteString(conn, req)
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, name)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err, name)
		conn.Close()
		requireEnvelope(t, name, resp.StatusCode, resp.Header, body, resp.StatusCode, core.CodeBadRequest)
		assert.GreaterOrEqual(t, resp.StatusCode, 400, name)
		assert.NotEmpty(t, resp.Header.Get("X-Request-Id"), name)
	}
}
