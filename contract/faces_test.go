// Package contract runs the same cases against both faces of the server, REST /api/v1 and MCP
// at /api/mcp, over the real HTTP handler, on real Redis and on the embedded store.
package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// Result is what a face answered: Body is the success object, or the error object on failure.
type Result struct {
	Code    core.Code // "" on success
	Message string
	Body    json.RawMessage
	Header  http.Header // REST only
	Status  int         // REST only
}

// Decode unmarshals the body into v.
func (r Result) Decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Face calls one operation by its MCP tool name with MCP-style arguments.
type Face interface {
	Name() string
	Call(t *testing.T, tool string, args map[string]any) Result
}

// forEachFace runs fn against REST and MCP on each store.
func forEachFace(t *testing.T, fn func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env)) {
	forEachFaceOn(t, testenv.Stores, fn)
}

// forEachFaceOn is forEachFace over the given stores (search tests add RediSearch).
func forEachFaceOn(t *testing.T, stores []testenv.Store, fn func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env)) {
	testenv.ForEachStoreOf(t, stores, func(t *testing.T, e *testenv.Env) {
		for _, mk := range []func(*testenv.Server, string) Face{newREST, newMCP} {
			s := testenv.NewServer(t, e)
			f := mk(s, s.Project.Key)
			t.Run(f.Name(), func(t *testing.T) { fn(t, f, s, e) })
		}
	})
}

// rawJSON keeps bytes exactly as written, so tests can check key order survives.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// send makes one request and fails the test at once if it cannot; only for the test's own
// goroutine (t.Fatal must not be called from others: use trySend there).
func send(t *testing.T, method, u, key string, body any, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, out, err := trySend(method, u, key, body, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// trySend is send for worker goroutines: it returns the failure instead of ending the test.
func trySend(method, u, key string, body any, hdr map[string]string) (*http.Response, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp, out, err
}

// ---- REST ----

type restFace struct {
	base, key string
}

func newREST(s *testenv.Server, key string) Face { return &restFace{base: s.URL, key: key} }

func (f *restFace) Name() string { return "rest" }

func take(args map[string]any, name string) (any, bool) {
	v, ok := args[name]
	delete(args, name)
	return v, ok
}

// query encodes the named arguments that are present as a query string.
func query(args map[string]any, names ...string) string {
	q := url.Values{}
	for _, n := range names {
		if v, ok := args[n]; ok {
			q.Set(n, str(v))
		}
	}
	return q.Encode()
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return fmt.Sprint(v)
}

func (f *restFace) Call(t *testing.T, tool string, in map[string]any) Result {
	t.Helper()
	args := map[string]any{}
	for k, v := range in {
		args[k] = v
	}
	hdr := map[string]string{}
	if v, ok := take(args, "idempotency_key"); ok {
		hdr["Idempotency-Key"] = str(v)
	}
	keyAny, _ := take(args, "state_key")
	statePath := f.base + "/api/v1/states/" + url.PathEscape(str(keyAny))
	var method, u string
	var body any
	switch tool {
	case "upsert_state":
		method, u, body = http.MethodPut, statePath, args
	case "get_state":
		method, u = http.MethodGet, statePath+"?"+query(args, "at_sequence", "at_time")
	case "delete_state":
		if v, ok := args["lease_id"]; ok {
			hdr["X-Lease-Id"] = str(v)
		}
		if v, ok := args["expected_version"]; ok {
			hdr["If-Match"] = str(v)
		}
		if v, ok := args["fencing_token"]; ok {
			hdr["X-Fencing-Token"] = str(v)
		}
		method, u = http.MethodDelete, statePath
	case "list_state_events":
		method, u = http.MethodGet, statePath+"/events?"+query(args, "after", "limit")
	case "query_states":
		method, u, body = http.MethodPost, f.base+"/api/v1/states/query", args
	case "acquire_lease":
		method, u, body = http.MethodPost, statePath+"/lease", args
	case "renew_lease", "release_lease":
		id, _ := take(args, "lease_id")
		method, u, body = http.MethodPost, f.base+"/api/v1/leases/"+url.PathEscape(str(id))+"/renew", args
		if tool == "release_lease" {
			method, u, body = http.MethodDelete, f.base+"/api/v1/leases/"+url.PathEscape(str(id)), nil
		}
	case "get_lease":
		method, u = http.MethodGet, statePath+"/lease"
		if id, ok := args["lease_id"]; ok {
			u = f.base + "/api/v1/leases/" + url.PathEscape(str(id))
		}
	case "list_leases":
		method, u = http.MethodGet, f.base+"/api/v1/leases?"+query(args, "cursor", "limit")
	case "create_claim":
		method, u, body = http.MethodPost, f.base+"/api/v1/claims", args
	case "verify_claim":
		method, u = http.MethodPost, f.base+"/api/v1/claims/"+url.PathEscape(str(args["claim_id"]))+"/verify"
	case "get_claim":
		method, u = http.MethodGet, f.base+"/api/v1/claims/"+url.PathEscape(str(args["claim_id"]))
	case "list_claims":
		method, u = http.MethodGet, f.base+"/api/v1/claims?"+query(args, "cursor", "limit", "order", "subject_type", "subject_id")
	case "store_conversation":
		method, u, body = http.MethodPost, f.base+"/api/v1/conversations", args
	case "recall_conversation":
		method, u = http.MethodGet, f.base+"/api/v1/conversations/"+url.PathEscape(str(args["id"]))
	case "list_conversations":
		method, u = http.MethodGet, f.base+"/api/v1/conversations?"+query(args, "cursor", "limit", "order", "tag")
	case "append_messages":
		id, _ := take(args, "id")
		method, u, body = http.MethodPost, f.base+"/api/v1/conversations/"+url.PathEscape(str(id))+"/messages", args
	case "search_conversations":
		method, u = http.MethodGet, f.base+"/api/v1/conversations/search?"+query(args, "q", "cursor", "limit", "order", "tag")
	case "conversation_tags":
		// REST has no combined call: add, remove one by one, then read, as a client would.
		base := f.base + "/api/v1/conversations/" + url.PathEscape(str(args["id"])) + "/tags"
		if add, ok := args["add"]; ok {
			if r := f.do(t, http.MethodPost, base, map[string]any{"tags": add}, nil); r.Code != "" {
				return r
			}
		}
		if rm, ok := args["remove"].([]string); ok {
			for _, tag := range rm {
				if r := f.do(t, http.MethodDelete, base+"/"+url.PathEscape(tag), nil, nil); r.Code != "" {
					return r
				}
			}
		}
		method, u = http.MethodGet, base
	case "mint_capability_token":
		method, u, body = http.MethodPost, f.base+"/api/v1/capability-tokens", args
	case "list_capability_tokens":
		method, u = http.MethodGet, f.base+"/api/v1/capability-tokens"
	case "revoke_capability_token":
		method, u = http.MethodDelete, f.base+"/api/v1/capability-tokens/"+url.PathEscape(str(args["id"]))
	case "create_api_key":
		method, u, body = http.MethodPost, f.base+"/api/v1/keys", args
	case "list_api_keys":
		method, u = http.MethodGet, f.base+"/api/v1/keys"
	case "revoke_api_key":
		method, u = http.MethodDelete, f.base+"/api/v1/keys/"+url.PathEscape(str(args["id"]))
	default:
		t.Fatalf("rest face: no route for %s", tool)
	}
	r := f.do(t, method, u, body, hdr)
	if r.Status == http.StatusNoContent {
		// MCP's answers for REST's empty 204s.
		switch tool {
		case "release_lease":
			r.Body = json.RawMessage(`{"released":true}`)
		case "revoke_api_key", "revoke_capability_token":
			r.Body, _ = json.Marshal(map[string]any{"revoked": true, "id": args["id"]})
		}
	}
	return r
}

// do sends one request and maps an error envelope into the Result.
func (f *restFace) do(t *testing.T, method, u string, body any, hdr map[string]string) Result {
	t.Helper()
	resp, out := send(t, method, u, f.key, body, hdr)
	r := Result{Header: resp.Header, Status: resp.StatusCode, Body: out}
	if resp.StatusCode >= 400 {
		var env struct {
			Error core.WireError `json:"error"`
		}
		if err := json.Unmarshal(out, &env); err != nil || env.Error.Code == "" {
			t.Fatalf("%s %s: status %d without the error envelope: %s", method, u, resp.StatusCode, out)
		}
		r.Code, r.Message = env.Error.Code, env.Error.Message
		r.Body, _ = json.Marshal(env.Error)
	}
	return r
}

// ---- MCP ----

type mcpFace struct {
	base, key string
	id        int
}

func newMCP(s *testenv.Server, key string) Face { return &mcpFace{base: s.URL, key: key} }

func (f *mcpFace) Name() string { return "mcp" }

// rpc sends one JSON-RPC request to /api/mcp and returns its result.
func (f *mcpFace) rpc(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	f.id++
	resp, out := send(t, http.MethodPost, f.base+"/api/mcp", f.key,
		map[string]any{"jsonrpc": "2.0", "id": f.id, "method": method, "params": params}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mcp %s: status %d: %s", method, resp.StatusCode, out)
	}
	var msg struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(out, &msg); err != nil {
		t.Fatalf("mcp %s: %v: %s", method, err, out)
	}
	if msg.Error != nil {
		t.Fatalf("mcp %s: JSON-RPC error %d %s", method, msg.Error.Code, msg.Error.Message)
	}
	return msg.Result
}

func (f *mcpFace) Call(t *testing.T, tool string, args map[string]any) Result {
	t.Helper()
	raw := f.rpc(t, "tools/call", map[string]any{"name": tool, "arguments": args})
	var res struct {
		IsError           bool `json:"isError"`
		Content           []struct{ Text string }
		StructuredContent json.RawMessage `json:"structuredContent"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("tools/call %s: %v", tool, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("tools/call %s: want one text block: %s", tool, raw)
	}
	text := res.Content[0].Text
	if !res.IsError {
		// The text is the result as compact JSON; a tool with an output schema also sends it
		// as structured content.
		if len(res.StructuredContent) > 0 {
			var a, b any
			_ = json.Unmarshal(res.StructuredContent, &a)
			if json.Unmarshal([]byte(text), &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("tools/call %s: text content does not match structured content", tool)
			}
		}
		if !json.Valid([]byte(text)) || strings.Contains(text, "\n  ") {
			t.Fatalf("tools/call %s: result text is not compact JSON: %s", tool, text)
		}
		return Result{Body: json.RawMessage(text)}
	}
	// An error carries no structured content (it would have to match the success schema):
	// v1's text line, then the error object as JSON.
	if len(res.StructuredContent) > 0 {
		t.Fatalf("tools/call %s: error result with structured content: %s", tool, raw)
	}
	first, obj, _ := strings.Cut(text, "\n")
	var e struct {
		core.WireError
		Hint string `json:"hint"`
	}
	if err := json.Unmarshal([]byte(obj), &e); err != nil || e.Code == "" {
		t.Fatalf("tools/call %s: error text without an error object: %s", tool, text)
	}
	want := fmt.Sprintf("Error: %s: %s", e.Code, e.Message)
	if e.Code == core.CodeBadRequest {
		if d, ok := e.Details.(map[string]any); ok && d["path"] != nil {
			want = fmt.Sprintf("INVALID_PARAMS: %s: %s", d["path"], e.Message)
		}
	}
	if first != want && !(e.Code == core.CodeForbidden && strings.HasPrefix(first, "FORBIDDEN: missing required scope ")) {
		t.Fatalf("tools/call %s: error text %q, want %q", tool, first, want)
	}
	body, _ := json.Marshal(e.WireError)
	return Result{Code: e.Code, Message: e.Message, Body: body}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
