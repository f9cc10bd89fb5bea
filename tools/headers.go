package tools

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentstate/agentstate-go/internal/jsonx"
)

// From protocol version 2026-07-28 a streamable HTTP request repeats its method and the name it
// acts on in the Mcp-Method and Mcp-Name headers (and x-mcp-header-annotated arguments in
// Mcp-Param-* headers), and the server must refuse one whose headers disagree with the body.
// mcp-go v1.2.1 checks that on every request whose Mcp-Protocol-Version header is set, and for
// a tools/call it also re-marshals and decodes the tool's whole input schema to find
// x-mcp-header annotations: about a third of a modern upsert_state's server CPU, for a schema
// that never changes and, for every tool here, has no annotation.
//
// So the check runs here once, in the OnRequestInitialization hook (HandleMessage calls it
// just before its own check), with the very function mcp-go uses for it
// (mcp.ValidateStandardHeaders) on the same inputs; the Mcp-Param-* part is skipped only for
// tools without x-mcp-header bindings, where mcp.ValidateParamHeadersLookup has nothing to
// compare and returns nil. When the headers agree, the hook removes Mcp-Protocol-Version
// from the request's header map, which is what mcp-go's check reads to decide to run
// (transport-level validation of that header, the era and its match with _meta, has already
// run in the transport by then; nothing after the hook reads it but a span attribute of
// mcp-go's tracer, which is not configured here). When they do not, or the body cannot be
// read, the header stays and mcp-go refuses the request itself, exactly as before.

type httpHeaderKey struct{}

// WithHTTPHeader records the headers of a streamable HTTP MCP request for the header check.
// A request without them (stdio, the legacy SSE transport) is left to mcp-go.
func WithHTTPHeader(ctx context.Context, h http.Header) context.Context {
	return context.WithValue(ctx, httpHeaderKey{}, h)
}

// standardHeaders checks a modern request's Mcp-* headers once (see above). paramHeaders
// names the tools whose input schema binds arguments to Mcp-Param-* headers.
type standardHeaders struct{ paramHeaders map[string]bool }

func (c standardHeaders) check(ctx context.Context, _ any, message any) error {
	h, _ := ctx.Value(httpHeaderKey{}).(http.Header)
	version := h.Get(mcp.HeaderProtocolVersion)
	raw, ok := message.(json.RawMessage)
	if !ok || !mcp.RequiresStandardHeaders(version) {
		return nil
	}
	var m struct {
		Method mcp.MCPMethod   `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if jsonx.Unmarshal(raw, &m) != nil || mcp.ValidateStandardHeaders(h.Get, version, m.Method, m.Params) != nil {
		return nil // mcp-go's own check refuses it
	}
	if m.Method == mcp.MethodToolsCall && len(c.paramHeaders) > 0 {
		if name, _ := mcp.ExtractHeaderName(m.Method, m.Params); c.paramHeaders[name] {
			return nil // Mcp-Param-* headers to compare: mcp-go does
		}
	}
	h.Del(mcp.HeaderProtocolVersion)
	return nil
}
