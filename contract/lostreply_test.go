package contract

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// TestStateWriteAppliedOnceWhenItsReplyIsLost: Redis executes a write script, its reply is lost
// on the way back, and go-redis sends the script again on a new connection. Each write must be
// applied once and answered as what happened — not a second event, not a 409 or 404 caused by
// the request's own first execution.
func TestStateWriteAppliedOnceWhenItsReplyIsLost(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		pe, proxy := e.ThroughProxy(t)
		s := testenv.NewServer(t, pe)
		lost := func(method, key string, body any, hdr map[string]string) (int, []byte, string) {
			t.Helper()
			before := proxy.Dropped.Load()
			proxy.DropNextReply("EVALSHA")
			resp, out := send(t, method, s.URL+"/api/v1/states/"+key, s.Project.Key, body, hdr)
			require.Equal(t, before+1, proxy.Dropped.Load(), "the fault happened")
			return resp.StatusCode, out, resp.Header.Get("Idempotency-Replayed")
		}
		events := func(key string) int {
			t.Helper()
			page, err := s.App.States.Events(t.Context(), s.Project.P, key, 0, 100)
			require.NoError(t, err)
			return len(page.Data)
		}
		version := func(out []byte) int64 {
			var st core.State
			require.NoError(t, json.Unmarshal(out, &st), string(out))
			return st.Version
		}

		st, out, _ := lost("PUT", "k", map[string]any{"agent_id": "a", "data": map[string]any{"n": 1}}, nil)
		require.Equal(t, 200, st, string(out))
		assert.EqualValues(t, 1, version(out))
		assert.Equal(t, 1, events("k"), "a plain PUT")

		st, out, _ = lost("PUT", "k", map[string]any{"agent_id": "a", "data": map[string]any{"n": 2}}, map[string]string{"If-Match": "1"})
		require.Equal(t, 200, st, "a CAS PUT is not refused by its own first execution: %s", out)
		assert.EqualValues(t, 2, version(out))
		assert.Equal(t, 2, events("k"))

		st, out, _ = lost("PUT", "fresh", map[string]any{"agent_id": "a", "data": map[string]any{}}, map[string]string{"If-None-Match": "*"})
		require.Equal(t, 200, st, "a create-only PUT does not find itself existing: %s", out)
		assert.Equal(t, 1, events("fresh"))

		st, out, replayed := lost("PUT", "once", map[string]any{"agent_id": "a", "data": map[string]any{}}, map[string]string{"Idempotency-Key": "r1"})
		require.Equal(t, 200, st, string(out))
		assert.Empty(t, replayed, "the client sent it once: not a replay")
		assert.Equal(t, 1, events("once"))

		st, out, _ = lost("DELETE", "k", nil, nil)
		require.Equal(t, 200, st, "a DELETE does not find its own deletion: %s", out)
		assert.Equal(t, 3, events("k"))
	})
}

// TestConversationAndClaimWritesAppliedOnceWhenTheirReplyIsLost: the same fault for the other
// write scripts: a create is not refused for its own external_id, messages are not appended
// twice, and a claim is logged once.
func TestConversationAndClaimWritesAppliedOnceWhenTheirReplyIsLost(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		pe, proxy := e.ThroughProxy(t)
		s := testenv.NewServer(t, pe)
		lost := func(method, path string, body any) (int, []byte) {
			t.Helper()
			before := proxy.Dropped.Load()
			proxy.DropNextReply("EVALSHA")
			resp, out := send(t, method, s.URL+path, s.Project.Key, body, nil)
			require.Equal(t, before+1, proxy.Dropped.Load(), "the fault happened")
			return resp.StatusCode, out
		}
		st, out := lost("POST", "/api/v1/conversations", map[string]any{"external_id": "ext-1", "messages": msgs("hello", "hi")})
		require.Equal(t, 201, st, "not refused for its own external_id: %s", out)
		var c struct {
			ID           string `json:"id"`
			MessageCount int    `json:"message_count"`
		}
		require.NoError(t, json.Unmarshal(out, &c))
		st, out = lost("POST", "/api/v1/conversations/"+c.ID+"/messages", map[string]any{"messages": msgs("more")})
		require.Equal(t, 201, st, string(out))
		got, err := s.App.Convs.Get(t.Context(), s.Project.P, c.ID, 0)
		require.NoError(t, err)
		assert.EqualValues(t, 3, got.MessageCount, "each message stored once")
		assert.Len(t, got.Messages, 3)

		size := func() int {
			ex, err := s.App.Claims.Export(t.Context(), s.Project.P)
			require.NoError(t, err)
			return len(ex.Entries)
		}
		before := size()
		st, out = lost("POST", "/api/v1/claims", map[string]any{"subject_type": "task", "subject_id": "t1", "statement": "done",
			"evidence": []map[string]any{{"kind": "text_hash", "source": "s", "data": "x", "hash": core.SHA256Hex([]byte("x"))}}})
		require.Equal(t, 201, st, string(out))
		assert.Equal(t, before+1, size(), "the claim is logged once")
		ex, err := s.App.Claims.Export(t.Context(), s.Project.P)
		require.NoError(t, err)
		require.NoError(t, core.VerifyLog(ex.Entries, ex.Checkpoint, ex.PublicKey, true, ""), "the chain is intact")
	})
}

// TestRetriedWriteAnsweredWithItsBudget: a write admitted by its own script (a remembered
// credential) whose reply is lost, and which go-redis sends again, is counted once — by its
// first execution — and its answer still carries the rate-limit headers, with the count as it
// stands. For each script that answers a retried execution with DONE: the state write and the
// lease acquire, renew and release, over REST and as 2026-07-28 MCP tool calls (raw JSON-RPC:
// the HTTP answer's headers are what is checked).
func TestRetriedWriteAnsweredWithItsBudget(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		const limit = 1000
		pe, proxy := e.ThroughProxy(t)
		s := testenv.NewServer(t, pe, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(pe.Store, pe.Clock, limit) })
		remaining := func(resp *http.Response) int {
			t.Helper()
			n, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining"))
			require.NoError(t, err, "X-RateLimit-Remaining %q", resp.Header.Get("X-RateLimit-Remaining"))
			assert.Equal(t, strconv.Itoa(limit), resp.Header.Get("X-RateLimit-Limit"))
			return n
		}
		resp, out := send(t, "PUT", s.URL+"/api/v1/states/warm", s.Project.Key, map[string]any{"agent_id": "a", "data": map[string]any{}}, nil)
		require.Equal(t, 200, resp.StatusCode, string(out)) // first sight: admitted the long way
		left := remaining(resp)
		// dropped sends one request with its script's reply dropped, and checks it was counted
		// once and told so.
		dropped := func(what string, do func() *http.Response) {
			t.Helper()
			before := proxy.Dropped.Load()
			proxy.DropNextReply("EVALSHA")
			resp := do()
			require.Equal(t, before+1, proxy.Dropped.Load(), "%s: the fault happened", what)
			left--
			assert.Equal(t, left, remaining(resp), "%s: counted once, and told", what)
		}
		lost := func(want int, method, path string, body any) (out []byte) {
			t.Helper()
			dropped(method+" "+path, func() *http.Response {
				resp, b := send(t, method, s.URL+path, s.Project.Key, body, nil)
				require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, b)
				out = b
				return resp
			})
			return out
		}
		lostTool := func(tool string, args map[string]any) (out string) {
			t.Helper()
			dropped(tool, func() *http.Response {
				resp, b := modernToolCall(t, s, s.Project.Key, tool, args)
				require.Equal(t, 200, resp.StatusCode, "%s: %s", tool, b)
				require.NotContains(t, b, `"isError":true`, tool)
				out = b
				return resp
			})
			return out
		}
		lost(200, "PUT", "/api/v1/states/k", map[string]any{"agent_id": "a", "data": map[string]any{"n": 1}})
		var l core.Lease
		require.NoError(t, json.Unmarshal(lost(201, "POST", "/api/v1/states/k/lease", map[string]any{"holder": "h", "ttl_ms": 60_000}), &l))
		assert.EqualValues(t, 1, l.FencingToken, "one token issued")
		lost(200, "POST", "/api/v1/leases/"+l.ID+"/renew", map[string]any{"ttl_ms": 90_000})
		lost(204, "DELETE", "/api/v1/leases/"+l.ID, nil)

		lostTool("upsert_state", map[string]any{"state_key": "m", "agent_id": "a", "data": map[string]any{"n": 1}})
		var acquired struct {
			Result struct {
				StructuredContent core.Lease `json:"structuredContent"`
			} `json:"result"`
		}
		b := lostTool("acquire_lease", map[string]any{"state_key": "m", "holder": "h", "ttl_ms": 60_000})
		require.NoError(t, json.Unmarshal([]byte(b), &acquired), b)
		ml := acquired.Result.StructuredContent
		require.NotEmpty(t, ml.ID, b)
		assert.EqualValues(t, 1, ml.FencingToken, "one token issued")
		lostTool("renew_lease", map[string]any{"lease_id": ml.ID, "ttl_ms": 90_000})
		lostTool("release_lease", map[string]any{"lease_id": ml.ID})

		resp, out = send(t, "GET", s.URL+"/api/v1/states/k", s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode, string(out))
		assert.Equal(t, left-1, remaining(resp), "no request counted twice")
	})
}
