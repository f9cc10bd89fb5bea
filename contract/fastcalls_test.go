package contract

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// The streamable HTTP face answers common tools/calls from one decoding of the body
// (tools.Server.FastCalls) and everything else through mcp-go. Both must give every client the
// same answer: each request below goes to a server with FastCalls and to one without
// (-mcp-fast-calls=false) over the same store and credential, and the status, the headers a
// client reads and the body must be the same. The requests are those FastCalls answers (both
// eras, with and without a session, successes and tool errors, HTML-escaped data, every id
// form) and those it must leave to mcp-go because mcp-go refuses or treats them apart; raw
// JSON-RPC, because no client sends most of them.
func TestFastCallsAnswerAsMCPGo(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		fast := testenv.NewServer(t, e)
		full := testenv.NewServer(t, e, func(a *app.App) { a.HTTP.NoFastCalls = true })
		key := fast.Project.Key
		resp, b := send(t, "PUT", fast.URL+"/api/v1/states/seen", key,
			map[string]any{"agent_id": "a", "data": map[string]any{"html": "<b>&</b>\u2028", "n": 1.5, "big": json.Number("12345678901234567890")}}, nil)
		require.Equal(t, 200, resp.StatusCode, string(b))
		reader := mint(t, fast, key, "state:read")
		sid := legacySession(t, fast, key)

		modernMeta := func() map[string]any {
			return map[string]any{mcp.MetaKeyProtocolVersion: mcp.ProtocolVersion20260728, mcp.MetaKeyClientCapabilities: map[string]any{},
				mcp.MetaKeyClientInfo: map[string]any{"name": "contract", "version": "1"}}
		}
		type request struct {
			body any // a map, or raw []byte
			hdr  map[string]string
			host string
			cred string
		}
		modern := func(tool string, args any) request {
			return request{body: map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call",
				"params": map[string]any{"_meta": modernMeta(), "name": tool, "arguments": args}},
				hdr: map[string]string{"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": mcp.ProtocolVersion20260728,
					"Mcp-Method": "tools/call", "Mcp-Name": tool}}
		}
		legacy := func(session, tool string, args any) request {
			return request{body: map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call",
				"params": map[string]any{"name": tool, "arguments": args}}, hdr: legacyHeaders(session)}
		}
		with := func(r request, edit func(body, params map[string]any, hdr map[string]string)) request {
			body := r.body.(map[string]any)
			hdr := map[string]string{}
			for k, v := range r.hdr {
				hdr[k] = v
			}
			edit(body, body["params"].(map[string]any), hdr)
			r.hdr = hdr
			return r
		}
		get := map[string]any{"state_key": "seen"}
		cases := map[string]request{
			// What FastCalls answers.
			"modern get_state":            modern("get_state", get),
			"legacy get_state":            legacy(sid, "get_state", get),
			"stateless get_state":         legacy("", "get_state", get),
			"no protocol header":          with(legacy("", "get_state", get), func(_, _ map[string]any, h map[string]string) { delete(h, "MCP-Protocol-Version") }),
			"modern missing state":        modern("get_state", map[string]any{"state_key": "absent"}),
			"legacy missing state":        legacy(sid, "get_state", map[string]any{"state_key": "absent"}),
			"modern unknown argument":     modern("upsert_state", map[string]any{"state_key": "w", "data": map[string]any{}, "expected_versoin": 1}),
			"legacy bad argument type":    legacy(sid, "upsert_state", map[string]any{"state_key": 5, "data": map[string]any{}}),
			"modern version conflict":     modern("upsert_state", map[string]any{"state_key": "seen", "agent_id": "a", "data": map[string]any{}, "expected_version": 99}),
			"modern whoami":               modern("whoami", map[string]any{}),
			"legacy whoami no arguments":  with(legacy(sid, "whoami", nil), func(_, p map[string]any, _ map[string]string) { delete(p, "arguments") }),
			"modern null arguments":       modern("whoami", nil),
			"string id":                   with(modern("get_state", get), func(b, _ map[string]any, _ map[string]string) { b["id"] = "x-\u00e9<1>" }),
			"negative fractional id":      with(legacy(sid, "get_state", get), func(b, _ map[string]any, _ map[string]string) { b["id"] = -2.5 }),
			"id beyond float precision":   {body: []byte(`{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call","params":{"name":"get_state","arguments":{"state_key":"seen"}}}`), hdr: legacyHeaders("")},
			"token without the scope":     {body: modern("upsert_state", map[string]any{"state_key": "w", "data": map[string]any{}}).body, hdr: modern("upsert_state", nil).hdr, cred: reader.Token},
			"token lists a tool it calls": {body: legacy("", "get_state", get).body, hdr: legacyHeaders(""), cred: reader.Token},
			"whitespace around the body":  {body: []byte(" \n{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"get_state\",\"arguments\":{ \"state_key\" : \"seen\" }}}\n "), hdr: legacyHeaders("")},
			"content type with charset":   with(legacy("", "get_state", get), func(_, _ map[string]any, h map[string]string) { h["Content-Type"] = "application/json; charset=utf-8" }),

			// What FastCalls leaves to mcp-go.
			"unknown session":          legacy("mcp-session-never-issued", "get_state", get),
			"unsupported version":      with(legacy("", "get_state", get), func(_, _ map[string]any, h map[string]string) { h["MCP-Protocol-Version"] = "1999-01-01" }),
			"modern Mcp-Name mismatch": with(modern("get_state", get), func(_, _ map[string]any, h map[string]string) { h["Mcp-Name"] = "whoami" }),
			"modern no Mcp-Method":     with(modern("get_state", get), func(_, _ map[string]any, h map[string]string) { delete(h, "Mcp-Method") }),
			"modern header only":       with(modern("get_state", get), func(_, p map[string]any, _ map[string]string) { delete(p, "_meta") }),
			"modern body only":         with(modern("get_state", get), func(_, _ map[string]any, h map[string]string) { delete(h, "Mcp-Protocol-Version") }),
			"modern no capabilities": with(modern("get_state", get), func(_, p map[string]any, _ map[string]string) {
				delete(p["_meta"].(map[string]any), mcp.MetaKeyClientCapabilities)
			}),
			"modern capabilities a string": with(modern("get_state", get), func(_, p map[string]any, _ map[string]string) {
				p["_meta"].(map[string]any)[mcp.MetaKeyClientCapabilities] = "all"
			}),
			"modern client info malformed": with(modern("get_state", get), func(_, p map[string]any, _ map[string]string) {
				p["_meta"].(map[string]any)[mcp.MetaKeyClientInfo] = map[string]any{"name": 5}
			}),
			"modern log level": with(modern("get_state", get), func(_, p map[string]any, _ map[string]string) {
				p["_meta"].(map[string]any)[mcp.MetaKeyLogLevel] = "debug"
			}),
			"modern Last-Event-ID":        with(modern("get_state", get), func(_, _ map[string]any, h map[string]string) { h["Last-Event-ID"] = "1" }),
			"progress token":              with(legacy(sid, "get_state", get), func(_, p map[string]any, _ map[string]string) { p["_meta"] = map[string]any{"progressToken": 1} }),
			"other _meta":                 with(modern("get_state", get), func(_, p map[string]any, _ map[string]string) { p["_meta"].(map[string]any)["traceparent"] = "x" }),
			"task":                        with(modern("get_state", get), func(_, p map[string]any, _ map[string]string) { p["task"] = map[string]any{"ttl": 1000} }),
			"extra top-level field":       with(legacy("", "get_state", get), func(b, _ map[string]any, _ map[string]string) { b["result"] = map[string]any{} }),
			"jsonrpc 1.0":                 with(legacy("", "get_state", get), func(b, _ map[string]any, _ map[string]string) { b["jsonrpc"] = "1.0" }),
			"notification":                with(legacy("", "get_state", get), func(b, _ map[string]any, _ map[string]string) { delete(b, "id") }),
			"null id":                     with(legacy("", "get_state", get), func(b, _ map[string]any, _ map[string]string) { b["id"] = nil }),
			"object id":                   with(legacy("", "get_state", get), func(b, _ map[string]any, _ map[string]string) { b["id"] = map[string]any{} }),
			"id out of range":             {body: []byte(`{"jsonrpc":"2.0","id":1e400,"method":"tools/call","params":{"name":"get_state","arguments":{"state_key":"seen"}}}`), hdr: legacyHeaders("")},
			"arguments an array":          legacy("", "get_state", []any{1}),
			"arguments a string":          legacy("", "get_state", "seen"),
			"unknown tool":                legacy("", "no_such_tool", get),
			"a tool that waits":           modern("wait_for_state_change", map[string]any{"state_key": "seen", "after_version": 0, "timeout_ms": 0}),
			"another method":              with(legacy("", "get_state", get), func(b, _ map[string]any, _ map[string]string) { b["method"] = "tools/list" }),
			"trailing data":               {body: []byte(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{}}} {}`), hdr: legacyHeaders("")},
			"batch":                       {body: []byte(`[{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{}}}]`), hdr: legacyHeaders("")},
			"escaped method":              {body: []byte(`{"jsonrpc":"2.0","id":3,"method":"tools\/call","params":{"name":"whoami","arguments":{}}}`), hdr: legacyHeaders("")},
			"not JSON":                    {body: []byte(`{"jsonrpc":"2.0",`), hdr: legacyHeaders("")},
			"text/plain":                  with(legacy("", "get_state", get), func(_, _ map[string]any, h map[string]string) { h["Content-Type"] = "text/plain" }),
			"Host not loopback":           {body: legacy("", "get_state", get).body, hdr: legacyHeaders(""), host: "evil.example"},
			"case-folded field names":     {body: []byte(`{"JSONRPC":"2.0","ID":3,"Method":"tools/call","Params":{"Name":"whoami","Arguments":{}}}`), hdr: legacyHeaders("")},
			"duplicate method, last wins": {body: []byte(`{"jsonrpc":"2.0","id":3,"method":"tools/list","method":"tools/call","params":{"name":"whoami","arguments":{}}}`), hdr: legacyHeaders("")},
		}
		post := func(base string, r request) (*http.Response, []byte) {
			t.Helper()
			body, ok := r.body.([]byte)
			if !ok {
				var err error
				body, err = json.Marshal(r.body)
				require.NoError(t, err)
			}
			req, err := http.NewRequest("POST", base+"/api/mcp", bytes.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			cred := r.cred
			if cred == "" {
				cred = key
			}
			req.Header.Set("Authorization", "Bearer "+cred)
			for k, v := range r.hdr {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			if r.host != "" {
				req.Host = r.host
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			out, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			return resp, out
		}
		for name, r := range cases {
			t.Run(name, func(t *testing.T) {
				want, wantBody := post(full.URL, r)
				got, gotBody := post(fast.URL, r)
				assert.Equal(t, want.StatusCode, got.StatusCode, "status; mcp-go: %s, fast: %s", wantBody, gotBody)
				for _, h := range []string{"Content-Type", "Content-Length", "Mcp-Session-Id", "Cache-Control", "WWW-Authenticate"} {
					assert.Equal(t, want.Header.Values(h), got.Header.Values(h), h)
				}
				assert.Equal(t, string(wantBody), string(gotBody), "body")
			})
		}

		// A write: the same answer but for what a second write changes (version, sequence,
		// times), so each server writes its own key.
		write := func(base, k string) string {
			_, b := post(base, modern("upsert_state", map[string]any{"state_key": k, "agent_id": "a", "data": map[string]any{"x": "<&>"}}))
			return volatile.ReplaceAllString(strings.ReplaceAll(string(b), k, "K"), "${1}_")
		}
		assert.Equal(t, write(full.URL, "w-full"), write(fast.URL, "w-fast"), "upsert_state's answer")
	})
}

// volatile matches the values two otherwise equal writes differ in, escaped inside a text
// content or not.
var volatile = regexp.MustCompile(`(\\?"(?:created_at|updated_at|latest_sequence|sequence|event_id)\\?":\s*)(\\?"[^"\\]*\\?"|\d+)`)

// FastCalls must actually take the calls hosts send most (an upsert_state in either era), or
// the work above buys nothing: with it, the server allocates well under what mcp-go's path
// does per call (allocation counts of the handler alone, not time: the box's speed does not
// matter, and the store's work is the same on both sides).
func TestFastCallsTakeTheCommonCall(t *testing.T) {
	e := testenv.Stores[0].Open(t)
	handler := func(fastCalls bool) http.Handler {
		a := e.App(t)
		a.HTTP.NoFastCalls = !fastCalls
		return a.NewHandler(0)
	}
	fast, full := handler(true), handler(false)
	s := testenv.NewServer(t, e)
	key := s.Project.Key
	sid := legacySession(t, s, key) // kept in the store: both handlers serve it
	meta := map[string]any{mcp.MetaKeyProtocolVersion: mcp.ProtocolVersion20260728, mcp.MetaKeyClientCapabilities: map[string]any{},
		mcp.MetaKeyClientInfo: map[string]any{"name": "contract", "version": "1"}}
	args := map[string]any{"state_key": "hot", "agent_id": "a", "data": map[string]any{"pad": strings.Repeat("x", 200)}}
	for _, era := range []struct {
		name string
		body map[string]any
		hdr  map[string]string
	}{
		{"2026-07-28", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{"_meta": meta, "name": "upsert_state", "arguments": args}},
			map[string]string{"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": mcp.ProtocolVersion20260728, "Mcp-Method": "tools/call", "Mcp-Name": "upsert_state"}},
		{"2025-11-25", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{"name": "upsert_state", "arguments": args}}, legacyHeaders(sid)},
	} {
		body, err := json.Marshal(era.body)
		require.NoError(t, err)
		allocs := func(h http.Handler) float64 {
			req := httptest.NewRequest("POST", "/api/mcp", nil)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			for k, v := range era.hdr {
				req.Header.Set(k, v)
			}
			call := func() {
				rec := httptest.NewRecorder()
				r := req.Clone(req.Context())
				r.Body = io.NopCloser(bytes.NewReader(body))
				h.ServeHTTP(rec, r)
				if rec.Code != 200 || bytes.Contains(rec.Body.Bytes(), []byte(`"isError":true`)) {
					t.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
			call() // the credential's first sight: the long way
			return testing.AllocsPerRun(200, call)
		}
		f, m := allocs(fast), allocs(full)
		t.Logf("%s: %.0f allocations per call with FastCalls, %.0f through mcp-go", era.name, f, m)
		assert.Less(t, f, 0.7*m, "%s: FastCalls answered the call", era.name)
	}
}
