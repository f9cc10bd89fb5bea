package contract

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

func envelope(t *testing.T, body []byte) core.WireError {
	t.Helper()
	var env struct {
		Error core.WireError `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &env), "body: %s", body)
	require.NotEmpty(t, env.Error.Code, "body: %s", body)
	return env.Error
}

func TestRESTCrossCutting(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		key := s.Project.Key
		states := s.URL + "/api/v1/states/"

		t.Run("health", func(t *testing.T) {
			resp, body := send(t, "GET", s.URL+"/api", "", nil, nil)
			assert.Equal(t, 200, resp.StatusCode)
			assert.JSONEq(t, `{"name":"agentstate","version":"0.1.4","status":"ok"}`, string(body))
			assert.Equal(t, "public, max-age=60, stale-while-revalidate=300", resp.Header.Get("Cache-Control"))
			resp, _ = send(t, "GET", s.URL+"/readyz", "", nil, nil)
			assert.Equal(t, 200, resp.StatusCode)
			resp, body = send(t, "GET", s.URL+"/openapi.json", "", nil, nil)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Contains(t, string(body), `"openapi":`)
		})
		t.Run("request id and security headers", func(t *testing.T) {
			resp, _ := send(t, "GET", s.URL+"/api", "", nil, map[string]string{"X-Request-Id": "my-trace_123"})
			assert.Equal(t, "my-trace_123", resp.Header.Get("X-Request-Id"))
			resp, _ = send(t, "GET", s.URL+"/api", "", nil, map[string]string{"X-Request-Id": "bad id!"})
			assert.Regexp(t, `^[A-Za-z0-9_-]{16}$`, resp.Header.Get("X-Request-Id"))
			assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
			assert.Empty(t, resp.Header.Get("Strict-Transport-Security"), "no HSTS over plain HTTP (internal/app TestHSTSOnlyOverTLS)")
			assert.Equal(t, "strict-origin-when-cross-origin", resp.Header.Get("Referrer-Policy"))
			assert.Equal(t, "default-src 'none'", resp.Header.Get("Content-Security-Policy"))
		})
		t.Run("unauthenticated", func(t *testing.T) {
			for name, k := range map[string]string{
				"missing": "", "malformed": "as_live_short", "unknown": core.NewAPIKeySecret(),
			} {
				resp, body := send(t, "GET", states+"x", k, nil, nil)
				assert.Equal(t, 401, resp.StatusCode, name)
				assert.Equal(t, core.WireError{Code: core.CodeUnauthorized, Message: "Unauthorized"}, envelope(t, body), name)
			}
		})
		t.Run("invalid JSON and wrong body types", func(t *testing.T) {
			for body, msg := range map[string]string{
				`{"agent_id":`: "Invalid JSON body", ``: "Invalid JSON body", `[1]`: "Expected object, received array",
				`{"agent_id":"a","data":{},"tags":"x"}`: "Expected array, received string",
			} {
				resp, out := send(t, "PUT", states+"j", key, []byte(body), nil)
				assert.Equal(t, 400, resp.StatusCode, body)
				assert.Equal(t, msg, envelope(t, out).Message, body)
			}
		})
		t.Run("oversized body is 413 and writes nothing", func(t *testing.T) {
			big := `{"agent_id":"a","data":{"x":"` + strings.Repeat("x", 1<<20) + `"}}`
			resp, out := send(t, "PUT", states+"big", key, []byte(big), nil)
			assert.Equal(t, 413, resp.StatusCode)
			assert.Equal(t, core.CodePayloadTooLarge, envelope(t, out).Code)
			resp, _ = send(t, "GET", states+"big", key, nil, nil)
			assert.Equal(t, 404, resp.StatusCode)
		})
		t.Run("percent-encoded keys", func(t *testing.T) {
			resp, out := send(t, "PUT", states+"a%2Fb%20c%25", key, map[string]any{"agent_id": "a", "data": map[string]any{}}, nil)
			require.Equal(t, 200, resp.StatusCode, string(out))
			var st core.State
			require.NoError(t, json.Unmarshal(out, &st))
			assert.Equal(t, "a/b c%", st.StateKey)
			resp, _ = send(t, "GET", states+"plain-key", key, nil, nil)
			assert.Equal(t, 404, resp.StatusCode)
		})
		t.Run("If-Match, If-None-Match and ETag", func(t *testing.T) {
			body := map[string]any{"agent_id": "a", "data": map[string]any{"n": 1}}
			resp, _ := send(t, "PUT", states+"cas", key, body, map[string]string{"If-None-Match": "*"})
			require.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, `"1"`, resp.Header.Get("ETag"))
			resp, out := send(t, "PUT", states+"cas", key, body, map[string]string{"If-None-Match": "*"})
			assert.Equal(t, 409, resp.StatusCode)
			assert.Equal(t, core.CodeVersionConflict, envelope(t, out).Code)
			resp, _ = send(t, "PUT", states+"cas", key, body, map[string]string{"If-Match": `"1"`})
			assert.Equal(t, 200, resp.StatusCode)
			resp, out = send(t, "PUT", states+"cas", key, body, map[string]string{"If-Match": "1"})
			assert.Equal(t, 409, resp.StatusCode, string(out))
			resp, out = send(t, "PUT", states+"cas", key, body, map[string]string{"If-Match": "abc"})
			assert.Equal(t, 400, resp.StatusCode, string(out))
			b2 := map[string]any{"agent_id": "a", "data": map[string]any{}, "expected_version": 2}
			resp, out = send(t, "PUT", states+"cas", key, b2, map[string]string{"If-Match": "1"})
			assert.Equal(t, 400, resp.StatusCode, "header and body disagree: %s", out)
			resp, _ = send(t, "GET", states+"cas", key, nil, nil)
			assert.Equal(t, `"2"`, resp.Header.Get("ETag"))
			resp, out = send(t, "DELETE", states+"cas", key, nil, map[string]string{"If-Match": "1"})
			assert.Equal(t, 409, resp.StatusCode, string(out))
		})
		t.Run("bad events cursor", func(t *testing.T) {
			resp, out := send(t, "GET", states+"x/events?after=abc", key, nil, nil)
			assert.Equal(t, 400, resp.StatusCode)
			assert.Equal(t, core.CodeInvalidCursor, envelope(t, out).Code)
		})
		t.Run("unknown route and method", func(t *testing.T) {
			resp, out := send(t, "GET", s.URL+"/api/v1/nope", key, nil, nil)
			assert.Equal(t, 404, resp.StatusCode)
			envelope(t, out)
			resp, out = send(t, "GET", s.URL+"/api/mcp", key, nil, nil)
			assert.Equal(t, 405, resp.StatusCode)
			assert.Equal(t, core.CodeMethodNotAllowed, envelope(t, out).Code)
		})
	})
}

func TestMCPTransport(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		f := &mcpFace{base: s.URL, key: s.Project.Key}

		t.Run("401 names the resource metadata", func(t *testing.T) {
			resp, out := send(t, "POST", s.URL+"/api/mcp", "", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping"}, nil)
			assert.Equal(t, 401, resp.StatusCode)
			assert.Equal(t, core.CodeUnauthorized, envelope(t, out).Code)
			assert.Equal(t, `Bearer resource_metadata="`+s.URL+`/.well-known/oauth-protected-resource"`, resp.Header.Get("WWW-Authenticate"))
			resp, out = send(t, "GET", s.URL+"/.well-known/oauth-protected-resource", "", nil, nil)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Contains(t, string(out), `"resource":"`+s.URL+`/api/mcp"`)
		})
		t.Run("initialize", func(t *testing.T) {
			var res struct {
				ProtocolVersion string `json:"protocolVersion"`
				ServerInfo      struct{ Name, Version string }
			}
			require.NoError(t, json.Unmarshal(f.rpc(t, "initialize", map[string]any{
				"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
				"clientInfo": map[string]any{"name": "test", "version": "1"},
			}), &res))
			assert.Equal(t, "2025-06-18", res.ProtocolVersion)
			assert.Equal(t, "agentstate", res.ServerInfo.Name)
		})
		t.Run("notification is 202", func(t *testing.T) {
			resp, _ := send(t, "POST", s.URL+"/api/mcp", s.Project.Key, map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}, nil)
			assert.Equal(t, 202, resp.StatusCode)
		})
		t.Run("tools/list shows the states tools with all hints", func(t *testing.T) {
			var res struct {
				Tools []struct {
					Name        string
					Annotations map[string]any
					InputSchema map[string]any `json:"inputSchema"`
				}
			}
			require.NoError(t, json.Unmarshal(f.rpc(t, "tools/list", map[string]any{}), &res))
			names := []string{}
			for _, tl := range res.Tools {
				names = append(names, tl.Name)
				for _, h := range []string{"destructiveHint", "openWorldHint"} { // the two that default to true; the others are sent when true
					assert.Contains(t, tl.Annotations, h, tl.Name)
				}
				assert.Equal(t, "object", tl.InputSchema["type"], tl.Name)
			}
			assert.Subset(t, names, []string{"upsert_state", "get_state", "query_states", "delete_state", "list_state_events"})
		})
		t.Run("a body that is not JSON-RPC", func(t *testing.T) {
			resp, out := send(t, "POST", s.URL+"/api/mcp", s.Project.Key, []byte("{nope"), nil)
			assert.Equal(t, 400, resp.StatusCode)
			assert.True(t, bytes.Contains(out, []byte("-32700")), string(out))
		})
	})
}

func TestMCPScopeFilteredToolsAndForbiddenCall(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		// A read-only key, created directly in the store (key management is a later issue).
		raw := core.NewAPIKeySecret()
		require.NoError(t, s.App.Store.CreateAPIKey(t.Context(), s.Project.ID, core.APIKey{
			ID: core.NewID(), Name: "ro", KeyPrefix: raw[:12], Scopes: []string{"state:read"},
		}, core.SHA256Hex([]byte(raw))))
		f := &mcpFace{base: s.URL, key: raw}
		var res struct{ Tools []struct{ Name string } }
		require.NoError(t, json.Unmarshal(f.rpc(t, "tools/list", map[string]any{}), &res))
		names := []string{}
		for _, tl := range res.Tools {
			names = append(names, tl.Name)
		}
		assert.ElementsMatch(t, []string{"whoami", "get_state", "query_states", "list_state_events", "get_lease", "list_leases", "wait_for_state_change"}, names)

		r := f.Call(t, "upsert_state", map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{}})
		assert.Equal(t, core.CodeForbidden, r.Code)
		rest := &restFace{base: s.URL, key: raw}
		r = rest.Call(t, "upsert_state", map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{}})
		assert.Equal(t, 403, r.Status)
		assert.Equal(t, "Missing required scope: state:write", r.Message)
	})
}
