package contract

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
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
