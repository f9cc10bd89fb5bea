package tools

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
)

// TestStandardHeadersLeaveMcpGoItsCheck: the header check takes over (drops
// Mcp-Protocol-Version, so mcp-go skips its own) only for a modern request whose Mcp-* headers
// agree with the body and whose tool binds no argument to a Mcp-Param-* header; every other
// request keeps the header and gets mcp-go's check (and its refusal).
func TestStandardHeadersLeaveMcpGoItsCheck(t *testing.T) {
	const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"upsert_state","arguments":{}}}`
	c := standardHeaders{paramHeaders: map[string]bool{"bound_tool": true}}
	for _, tc := range []struct {
		name, version, method, toolName, body string
		takesOver                             bool
	}{
		{"headers agree", mcp.ProtocolVersion20260728, "tools/call", "upsert_state", body, true},
		{"other Mcp-Name", mcp.ProtocolVersion20260728, "tools/call", "get_state", body, false},
		{"other Mcp-Method", mcp.ProtocolVersion20260728, "tools/list", "upsert_state", body, false},
		{"legacy revision: no such headers", mcp.LATEST_LEGACY_PROTOCOL_VERSION, "tools/call", "upsert_state", body, false},
		{"tool with Mcp-Param-* bindings", mcp.ProtocolVersion20260728, "tools/call", "bound_tool",
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"bound_tool","arguments":{}}}`, false},
		{"unreadable body", mcp.ProtocolVersion20260728, "tools/call", "upsert_state", `{"jsonrpc":`, false},
	} {
		h := http.Header{}
		h.Set(mcp.HeaderProtocolVersion, tc.version)
		h.Set(mcp.HeaderMethod, tc.method)
		h.Set(mcp.HeaderName, tc.toolName)
		assert.NoError(t, c.check(WithHTTPHeader(context.Background(), h), 1, json.RawMessage(tc.body)), tc.name)
		assert.Equal(t, tc.takesOver, h.Get(mcp.HeaderProtocolVersion) == "", tc.name)
	}
	assert.NoError(t, c.check(context.Background(), 1, json.RawMessage(body)), "stdio: no headers")
}
