package contract

import (
	"testing"

	"github.com/agentstate/agentstate-go/conversations"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// TestCrossProjectIsolation: with B's full-access credential nothing of project A can be read,
// listed, searched, changed or released, over either face; A sees its data unchanged after.
func TestCrossProjectIsolation(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		a := f // project A's full key
		var st core.State
		mustOK(t, a.Call(t, "upsert_state", map[string]any{"state_key": "shared", "agent_id": "a-agent", "data": map[string]any{"secret": "A"}, "tags": []string{"t"}})).Decode(t, &st)
		var lease core.Lease
		mustOK(t, a.Call(t, "acquire_lease", map[string]any{"state_key": "held", "holder": "a"})).Decode(t, &lease)
		aKey := createKey(t, a, map[string]any{"name": "a-key"})
		aTok := mintToken(t, a, map[string]any{"name": "a-tok", "scopes": []string{"state:read"}})
		aConv := storeConv(t, a, map[string]any{"external_id": "a-ext", "messages": msgs("zanzibar confidential")})
		mustOK(t, a.Call(t, "conversation_tags", map[string]any{"id": aConv.ID, "add": []string{"a-tag"}}))

		other := testenv.NewProject(t, s.App)
		b := as(f, s, other.Key)
		leaks := func(r Result, what string) {
			t.Helper()
			for _, secret := range []string{`"secret":"A"`, "a-agent", lease.ID, aKey.ID, aTok.ID, aConv.ID, "zanzibar", "a-tag"} {
				assert.NotContains(t, string(r.Body), secret, "%s leaks A's data", what)
			}
		}
		expectErr(t, b.Call(t, "get_state", map[string]any{"state_key": "shared"}), core.CodeNotFound, "")
		for tool, args := range map[string]map[string]any{
			"query_states":           {},
			"list_state_events":      {"state_key": "shared"},
			"list_leases":            {},
			"list_api_keys":          nil,
			"list_capability_tokens": nil,
			"list_conversations":     {},
			"search_conversations":   {"q": "zanzibar confidential"},
		} {
			r := b.Call(t, tool, args)
			require.Empty(t, r.Code, "%s: %s", tool, r.Message)
			leaks(r, tool)
		}
		r := b.Call(t, "query_states", map[string]any{"agent_id": "a-agent", "tags": []string{"t"}})
		var page core.StatePage
		mustOK(t, r).Decode(t, &page)
		assert.Empty(t, page.Data, "A's indexes are not B's")
		for _, tool := range []string{"get_lease", "renew_lease", "release_lease"} {
			expectErr(t, b.Call(t, tool, map[string]any{"lease_id": lease.ID}), core.CodeNotFound, "")
		}
		expectErr(t, b.Call(t, "revoke_api_key", map[string]any{"id": aKey.ID}), core.CodeNotFound, "")
		expectErr(t, b.Call(t, "revoke_capability_token", map[string]any{"id": aTok.ID}), core.CodeNotFound, "")
		expectErr(t, b.Call(t, "delete_state", map[string]any{"state_key": "shared"}), core.CodeNotFound, "")
		expectErr(t, b.Call(t, "recall_conversation", map[string]any{"id": aConv.ID}), core.CodeNotFound, "")
		expectErr(t, b.Call(t, "append_messages", map[string]any{"id": aConv.ID, "messages": msgs("x")}), core.CodeNotFound, "")
		expectErr(t, b.Call(t, "conversation_tags", map[string]any{"id": aConv.ID, "add": []string{"b"}}), core.CodeNotFound, "")
		mustOK(t, b.Call(t, "store_conversation", map[string]any{"external_id": "a-ext"})) // external ids are per project
		for _, path := range []string{"/api/v1/tags", "/api/v1/analytics/tags", "/api/v1/conversations/by-external-id/a-ext"} {
			resp, out := send(t, "GET", s.URL+path, other.Key, nil, nil)
			assert.NotContains(t, string(out), "a-tag", path)
			assert.NotContains(t, string(out), aConv.ID, "%s (%d)", path, resp.StatusCode)
		}
		mustOK(t, b.Call(t, "upsert_state", map[string]any{"state_key": "shared", "agent_id": "b", "data": map[string]any{"secret": "B"}}))
		mustOK(t, b.Call(t, "acquire_lease", map[string]any{"state_key": "held", "holder": "b"}))

		resp, out := send(t, "GET", s.URL+"/api/v1/states/watch?once=true", other.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		assert.NotContains(t, string(out), `"secret":"A"`, "B's watch carries only B's events")

		// A is untouched.
		var again core.State
		mustOK(t, a.Call(t, "get_state", map[string]any{"state_key": "shared"})).Decode(t, &again)
		assert.Equal(t, st.Version, again.Version)
		assert.JSONEq(t, `{"secret":"A"}`, string(again.Data))
		var l core.Lease
		mustOK(t, a.Call(t, "get_lease", map[string]any{"lease_id": lease.ID})).Decode(t, &l)
		assert.Equal(t, "active", l.Status)
		assert.Equal(t, 200, status(t, s, "GET", "/api/v1/states/shared", aTok.Token, nil), "A's token still works")
		var conv conversations.Conversation
		mustOK(t, a.Call(t, "recall_conversation", map[string]any{"id": aConv.ID})).Decode(t, &conv)
		assert.EqualValues(t, 1, conv.MessageCount)
	})
}
