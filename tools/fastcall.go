package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/jsonx"
)

// mcp-go v1.2.1 decodes a streamable HTTP tools/call nine times with encoding/json (the
// transport's envelope, its era check, HandleMessage's envelope, protocol info, standard
// headers, trace _meta, the request, its arguments into a map; each pass also validates the
// whole body first) and runs a goroutine and channels per POST for notifications the call may
// send. For a modern upsert_state that was ~53 % of the server's CPU per call, and MCP ÷ REST
// latency 1.8–2.7 (issue #20; docs/benchmarks.md, "MCP tools/call parsed once").
//
// FastCalls answers the common shape of that request itself, from one strict decoding of the
// body: a single tools/call of a tool that answers without waiting, with no progress token,
// task or multi-round-trip fields, on either protocol era. It runs the same handler mcp-go
// would (Server.handlers: the tool's Handler in the same middleware) and writes what mcp-go
// writes for it. Everything else — another method, a batch, any field it does not know, any
// check that would fail (content type, Host on a loopback listener, protocol version, Mcp-*
// headers, session id) — goes to mcp-go with the same bytes, which answers as it always has.
// (A legacy call of a tool whose operation settles its own admission checks its session in
// that round trip: get_state's read, a write's script; an unknown session drops the tool's
// answer and goes to mcp-go the same way.)
// TestFastCallsAnswerAsMCPGo holds the two paths to the same answers.
//
// What FastCalls leaves out, because nothing here uses it: the ephemeral mcp-go session in the
// handler's context (tools notify only with a progress token), the arguments decoded into a
// map (Tool.Handler reads RawArguments), notifications/cancelled for the call's id (only tools
// that wait need it, and they stay on mcp-go's path), and mcp-go's request logger, tracer,
// input or output schema validation and call hooks, none of which NewServer configures.

// FastCalls wraps next, mcp-go's streamable HTTP server of s. prepare is its HTTP context
// function; session reports whether a legacy request's Mcp-Session-Id is one mcp-go would
// accept (its SessionIdManager's Validate).
func (s *Server) FastCalls(next http.Handler, prepare func(context.Context, *http.Request) context.Context,
	session func(r *http.Request, id string) bool) http.Handler {
	f := fastCalls{handlers: s.handlers, checksSession: s.checksSession, next: next, prepare: prepare, session: session,
		info: mcp.Implementation{Name: serverName, Version: core.ProductVersion}}
	meta := &mcp.Meta{}
	meta.SetServerInfo(f.info)
	f.meta, _ = json.Marshal(meta) // a 2026-07-28 result's _meta, as mcp-go marshals it
	return f
}

type fastCalls struct {
	handlers      map[string]server.ToolHandlerFunc // Server.handlers
	checksSession map[string]bool                   // Server.checksSession
	next          http.Handler
	prepare       func(context.Context, *http.Request) context.Context
	session       func(*http.Request, string) bool
	info          mcp.Implementation
	meta          []byte
}

// fastRequest is every field FastCalls serves; DecodeStrict refuses any other.
type fastRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
		Meta      json.RawMessage `json:"_meta"`
	} `json:"params"`
}

// fastMeta are the _meta keys FastCalls serves (what a 2026-07-28 request declares).
var fastMeta = map[string]bool{mcp.MetaKeyProtocolVersion: true, mcp.MetaKeyClientInfo: true,
	mcp.MetaKeyClientCapabilities: true, mcp.MetaKeyLogLevel: true}

// fastCall is a request FastCalls answers.
type fastCall struct {
	id      any // as encoding/json decodes it, as mcp-go echoes it
	handler server.ToolHandlerFunc
	req     mcp.CallToolRequest
	info    *server.RequestProtocolInfo
}

func (f fastCalls) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Body == nil {
		f.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		// mcp-go reads the same bytes and meets the same error, and words it.
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
		f.next.ServeHTTP(w, r)
		return
	}
	call, ok := f.parse(r, body)
	// A legacy request's session is checked first, as mcp-go checks it, except by a tool that
	// checks it itself: the round trip that settles its admission (its read, or its write's
	// script, which writes nothing under an unknown session) carries the session check too, and
	// the session is checked from that before anything is answered.
	legacy := ok && call.info.ProtocolVersion == ""
	sessionAfter := legacy && f.checksSession[call.req.Params.Name] && r.Header.Get(server.HeaderKeySessionID) != ""
	if legacy && !sessionAfter {
		ok = f.legacySession(r)
	}
	var res *mcp.CallToolResult
	if ok {
		res, err = call.handler(server.WithRequestProtocolInfo(f.prepare(r.Context(), r), call.info), call.req)
		// An unknown session: the tool's answer is dropped, and mcp-go answers as it does for one
		// (its 404, or the credential's refusal once settled).
		ok = !sessionAfter || f.legacySession(r)
	}
	if !ok {
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.next.ServeHTTP(w, r)
		return
	}
	f.answer(w, call, res, err)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// parse reports whether r is a call FastCalls answers, checking what mcp-go's transport and
// HandleMessage check on the way to the tool, in their order.
func (f fastCalls) parse(r *http.Request, body []byte) (fastCall, bool) {
	var c fastCall
	if !bytes.Contains(body, []byte(`"tools/call"`)) {
		return c, false // any other method (an escaped "tools\/call" too) costs no decoding here
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" ||
		rebinding(r) {
		return c, false
	}
	if _, ok := core.PrincipalFrom(r.Context()); !ok {
		return c, false // the face authenticated nothing: gate checks the connection's credential
	}
	var m fastRequest
	if jsonx.DecodeStrict(body, &m) != nil || !jsonx.Valid(body) || m.JSONRPC != mcp.JSONRPC_VERSION ||
		m.Method != string(mcp.MethodToolsCall) || !scalar(m.ID) || json.Unmarshal(m.ID, &c.id) != nil {
		return c, false
	}
	handler, ok := f.handlers[m.Params.Name]
	if !ok || !(len(m.Params.Arguments) == 0 || m.Params.Arguments[0] == '{' || string(m.Params.Arguments) == "null") {
		return c, false
	}
	var meta *mcp.Meta
	var values metaValues
	if len(m.Params.Meta) > 0 && string(m.Params.Meta) != "null" {
		// What mcp.Meta's UnmarshalJSON builds, decoded by jsonx, and the typed values era needs.
		var raw map[string]json.RawMessage
		if jsonx.Unmarshal(m.Params.Meta, &raw) != nil || raw == nil {
			return c, false
		}
		fields := make(map[string]any, len(raw))
		for k, v := range raw {
			var x any
			if !fastMeta[k] || jsonx.Unmarshal(v, &x) != nil { // a progress token among them
				return c, false
			}
			fields[k] = x
		}
		meta = &mcp.Meta{AdditionalFields: fields}
		values = decodeMetaValues(raw)
	}
	c.handler = handler
	c.req.Method = m.Method
	c.req.Header = r.Header
	c.req.Params.Name = m.Params.Name
	c.req.Params.RawArguments = m.Params.Arguments
	c.req.Params.Meta = meta
	if ok := f.era(r, &c, meta, values); !ok {
		return c, false
	}
	return c, true
}

// era fills c.info as mcp-go's protocol info for the request, and reports whether the
// request passes the era's checks (streamable_http_modern.go, HandleMessage).
func (f fastCalls) era(r *http.Request, c *fastCall, meta *mcp.Meta, values metaValues) bool {
	metaVersion, headerVersion := meta.ProtocolVersion(), r.Header.Get(mcp.HeaderProtocolVersion)
	if !mcp.IsModernProtocol(metaVersion) && !mcp.IsModernProtocol(headerVersion) {
		c.info = &server.RequestProtocolInfo{ProtocolVersion: metaVersion}
		// A legacy body naming a legacy version in _meta is unusual; leave it to mcp-go.
		return metaVersion == "" && (headerVersion == "" || mcp.IsValidProtocolVersion(headerVersion))
	}
	if r.Header.Get(mcp.HeaderLastEventID) != "" || headerVersion != metaVersion || !mcp.IsValidProtocolVersion(metaVersion) {
		return false
	}
	caps := values.capabilities
	name, _ := json.Marshal(struct {
		Name string `json:"name"`
	}{c.req.Params.Name})
	if caps == nil || mcp.ValidateStandardHeaders(r.Header.Get, metaVersion, mcp.MethodToolsCall, name) != nil {
		return false
	}
	c.info = &server.RequestProtocolInfo{Modern: true, ProtocolVersion: metaVersion, ClientInfo: values.clientInfo,
		LogLevel: values.logLevel, ClientCapabilities: caps}
	return true
}

// metaValues are the _meta values of mcp-go's protocol info, as mcp.Meta's accessors give them
// (ClientInfo, ClientCapabilities, LogLevel: a value that does not decode as its type is
// absent), decoded once from the raw value. The accessors re-encode the value decoded into the
// Meta's map and decode that again with encoding/json: ~18k instructions per 2026-07-28 call.
type metaValues struct {
	clientInfo   *mcp.Implementation
	capabilities *mcp.ClientCapabilities
	logLevel     mcp.LoggingLevel
}

func decodeMetaValues(raw map[string]json.RawMessage) metaValues {
	var v metaValues
	decodeMetaValue(raw[mcp.MetaKeyClientInfo], &v.clientInfo)
	decodeMetaValue(raw[mcp.MetaKeyClientCapabilities], &v.capabilities)
	decodeMetaValue(raw[mcp.MetaKeyLogLevel], &v.logLevel)
	return v
}

// decodeMetaValue decodes b into *out, leaving it zero when b is absent or does not decode.
func decodeMetaValue[T any](b json.RawMessage, out *T) {
	if len(b) > 0 && jsonx.Unmarshal(b, out) != nil {
		var zero T
		*out = zero
	}
}

// legacySession reports whether a legacy request's session id (if any) is valid; an unknown
// one is mcp-go's 404.
func (f fastCalls) legacySession(r *http.Request) bool {
	id := r.Header.Get(server.HeaderKeySessionID)
	return id == "" || f.session(r, id)
}

// answer writes mcp-go's response for the call's result (res, err).
func (f fastCalls) answer(w http.ResponseWriter, c fastCall, res *mcp.CallToolResult, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK) // INTERNAL_ERROR maps to 200 in 2026-07-28 too
	if err != nil {
		_ = json.NewEncoder(w).Encode(mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(c.id),
			Error: mcp.NewJSONRPCErrorDetails(mcp.INTERNAL_ERROR, err.Error(), nil)})
		return
	}
	plain := res.Meta == nil && res.ResultType == ""
	if c.info.Modern { // decorateResponse: resultType and serverInfo, from 2026-07-28
		if res.GetResultType() == "" {
			res.SetResultType(mcp.ResultTypeComplete)
		}
		if meta := res.EnsureResultMeta(); meta.ServerInfo() == nil {
			meta.SetServerInfo(f.info)
		}
	}
	if plain {
		buf := responses.Get().(*[]byte)
		defer func() {
			if cap(*buf) <= maxPooledResponse { // a rare large answer is not kept
				responses.Put(buf)
			}
		}()
		var ok bool
		if *buf, ok = f.appendResponse((*buf)[:0], c, res); ok {
			_, _ = w.Write(*buf)
			return
		}
	}
	_ = json.NewEncoder(w).Encode(mcp.NewJSONRPCResultResponse(mcp.NewRequestId(c.id), res))
}

var responses = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledResponse = 64 << 10

// appendResponse appends what json.NewEncoder(w).Encode(mcp.NewJSONRPCResultResponse(id, res))
// writes (CallToolResult.MarshalJSON builds a map and marshals it, which the encoder then
// validates and compacts again), for the results tools build (results.go: one text content,
// structured content as a json.RawMessage or none) with no _meta or resultType of their own.
// ok = false for any other result: the encoder writes it.
func (f fastCalls) appendResponse(b []byte, c fastCall, res *mcp.CallToolResult) ([]byte, bool) {
	var text mcp.TextContent
	if len(res.Content) == 1 {
		text, _ = res.Content[0].(mcp.TextContent)
	}
	raw, isRaw := res.StructuredContent.(json.RawMessage)
	id, err := json.Marshal(c.id)
	if text.Type != "text" || text.Annotations != nil || text.Meta != nil || (res.StructuredContent != nil && !isRaw) ||
		len(res.RawStructuredContent) > 0 || len(res.InputRequests) > 0 || res.RequestState != "" || err != nil {
		return b, false
	}
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"result":{`...) // the map's keys, sorted
	if c.info.Modern {
		b = append(b, `"_meta":`...)
		b = append(b, f.meta...)
		b = append(b, ',')
	}
	b = append(b, `"content":[{"type":"text","text":`...)
	b = core.AppendString(b, text.Text)
	b = append(b, "}]"...)
	if res.IsError {
		b = append(b, `,"isError":true`...)
	}
	if c.info.Modern {
		b = append(b, `,"resultType":`...)
		b = core.AppendString(b, string(res.ResultType))
	}
	if isRaw {
		// successResult's bytes are json.Marshal's (or AppendJSON's, held to them): compact
		// and HTML-escaped already, which the encoder's compaction leaves as they are.
		b = append(b, `,"structuredContent":`...)
		b = append(b, raw...)
	}
	return append(b, "}}\n"...), true
}

// scalar: a JSON-RPC id FastCalls echoes (a string or a number; mcp-go treats others apart).
func scalar(id json.RawMessage) bool {
	return len(id) > 0 && (id[0] == '"' || id[0] == '-' || (id[0] >= '0' && id[0] <= '9'))
}

// rebinding is mcp-go's DNS rebinding refusal (http_localhost.go): a request on a loopback
// listener whose Host is not loopback.
func rebinding(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && local != nil && loopback(local.String()) && !loopback(r.Host)
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
