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
