package contract

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/schemas"
	"github.com/agentstate/agentstate-go/tools"
)

// toolStep is one tool called on success and on an error path. ok builds the arguments from
// what earlier steps returned; bad is a failing call and the code it must fail with.
type toolStep struct {
	tool string
	ok   func(got map[string]map[string]any) map[string]any
	bad  func(got map[string]map[string]any) map[string]any
	code core.Code
}

func none(map[string]map[string]any) map[string]any { return map[string]any{} }

func args(kv ...any) func(map[string]map[string]any) map[string]any {
	return func(map[string]map[string]any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
}

// from reads field of an earlier tool's result.
func from(tool, field string) func(map[string]map[string]any) any {
	return func(got map[string]map[string]any) any { return got[tool][field] }
}

func withArg(name string, v func(map[string]map[string]any) any, kv ...any) func(map[string]map[string]any) map[string]any {
	return func(got map[string]map[string]any) map[string]any {
		m := args(kv...)(got)
		m[name] = v(got)
		return m
	}
}

var helloHash = func() string { h := sha256.Sum256([]byte("hello")); return hex.EncodeToString(h[:]) }()

// everyToolSteps calls every tool of the inventory, in an order where each finds what it needs.
var everyToolSteps = []toolStep{
	{"whoami", none, args("extra", 1), core.CodeBadRequest},
	{"upsert_state", args("state_key", "k1", "data", map[string]any{"a": 1}, "tags", []string{"t"}),
		args("state_key", "k1", "data", map[string]any{}, "expected_verison", 1), core.CodeBadRequest},
	{"get_state", args("state_key", "k1"), args("state_key", "missing"), core.CodeNotFound},
	{"query_states", args("tags", []string{"t"}), args("cursor", "abc"), core.CodeInvalidCursor},
	{"list_state_events", args("state_key", "k1"), args("state_key", "k1", "afterr", 1), core.CodeBadRequest},
	{"wait_for_state_change", args("state_key", "k1", "after_version", 0),
		args("state_key", "k1", "after_version", 0, "timeout_ms", 60000), core.CodeBadRequest},
	{"acquire_lease", args("state_key", "L", "ttl_ms", 60000), args("state_key", "L"), core.CodeLeaseConflict},
	{"renew_lease", withArg("lease_id", from("acquire_lease", "id")), args("lease_id", "nope"), core.CodeNotFound},
	{"get_lease", args("state_key", "L"), args("state_key", "free"), core.CodeNotFound},
	{"list_leases", none, args("cursor", "!!"), core.CodeInvalidCursor},
	{"release_lease", withArg("lease_id", from("acquire_lease", "id")), withArg("lease_id", from("acquire_lease", "id")), core.CodeNotFound},
	{"delete_state", args("state_key", "k1"), args("state_key", "missing"), core.CodeNotFound},
	{"create_claim", args("subject_type", "doc", "subject_id", "d1", "statement", "says hello",
		"evidence", []map[string]any{{"kind": "text_hash", "source": "s", "data": "hello", "hash": helloHash}}),
		args("subject_type", "doc", "subject_id", "d1", "statement", "x", "evidence", []any{}), core.CodeBadRequest},
	{"verify_claim", withArg("claim_id", from("create_claim", "id")), args("claim_id", "nope"), core.CodeNotFound},
	{"get_claim", withArg("claim_id", from("create_claim", "id")), args("claim_id", "nope"), core.CodeNotFound},
	{"list_claims", none, args("subject", "x"), core.CodeBadRequest},
	{"store_conversation", args("title", "t", "messages", []map[string]any{{"role": "user", "content": "hello world"}}),
		args("titel", "t"), core.CodeBadRequest},
	{"recall_conversation", withArg("id", from("store_conversation", "id")), args("id", "nope"), core.CodeNotFound},
	{"list_conversations", none, args("sort", "asc"), core.CodeBadRequest},
	{"append_messages", withArg("id", from("store_conversation", "id"), "messages", []map[string]any{{"role": "assistant", "content": "hi"}}),
		args("id", "nope", "messages", []map[string]any{{"role": "user", "content": "x"}}), core.CodeNotFound},
	{"search_conversations", args("q", "hello"), args("q", ""), core.CodeBadRequest},
	{"conversation_tags", withArg("id", from("store_conversation", "id"), "add", []string{"x"}), args("id", "nope", "add", []string{"x"}), core.CodeNotFound},
	{"mint_capability_token", args("name", "sub", "scopes", []string{"state:read"}), args("name", "sub", "scopes", []string{"keys:write"}), core.CodeBadRequest},
	{"list_capability_tokens", none, args("all", true), core.CodeBadRequest},
	{"revoke_capability_token", withArg("id", from("mint_capability_token", "id")), args("id", "nope"), core.CodeNotFound},
	{"create_api_key", args("name", "second", "scopes", []string{"state:read"}), args("name", ""), core.CodeBadRequest},
	{"list_api_keys", none, args("all", true), core.CodeBadRequest},
	{"revoke_api_key", withArg("id", from("create_api_key", "id")), args("id", "nope"), core.CodeNotFound},
	// Bad input a probe found answered with a 500 (badinput_test.go has the full table):
	// numbers a JavaScript client can send exactly, past the bounds.
	{"list_state_events", args("state_key", "k1"), args("state_key", "k1", "after", core.MaxCursorSequence+1), core.CodeInvalidCursor},
	{"query_states", none, args("cursor", strconv.FormatInt(math.MaxInt64, 10)), core.CodeInvalidCursor},
	{"acquire_lease", args("state_key", "L3", "ttl_ms", 60000), args("state_key", "L3", "holder", "other", "wait_ms", core.LeaseWaitMaxMs+1), core.CodeBadRequest},
}

// compileSchema compiles a JSON Schema (2020-12, the compiler's default draft).
func compileSchema(t *testing.T, name string, raw []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err, name)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource(name, doc), name)
	s, err := c.Compile(name)
	require.NoError(t, err, name)
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, raw []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	return s.Validate(v)
}

// TestEveryToolResultValidates calls every tool on success and on an error path, on both
// stores, and validates what a client validates: structured content against the tool's own
// outputSchema (from tools/list), and the text JSON against the schema of its Go result type
// (the one Output generates for tools and /openapi.json). Errors must be isError, carry no
// structured content, and say in JSON whether retrying helps.
func TestEveryToolResultValidates(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		f := newMCP(s, s.Project.Key).(*mcpFace)
		var list struct {
			Tools []struct {
				Name         string          `json:"name"`
				OutputSchema json.RawMessage `json:"outputSchema"`
			} `json:"tools"`
		}
		require.NoError(t, json.Unmarshal(f.rpc(t, "tools/list", map[string]any{}), &list))
		published := map[string]*jsonschema.Schema{}
		for _, tl := range list.Tools {
			if len(tl.OutputSchema) > 0 {
				published[tl.Name] = compileSchema(t, tl.Name+".out.json", tl.OutputSchema)
			}
		}
		byType := map[string]*jsonschema.Schema{}
		for _, tl := range tools.Inventory() {
			byType[tl.Name] = compileSchema(t, tl.Name+".type.json", schemas.OutputJSON(tl.Output))
		}

		got := map[string]map[string]any{}
		covered := map[string]bool{}
		for _, st := range everyToolSteps {
			covered[st.tool] = true
			raw := f.rpc(t, "tools/call", map[string]any{"name": st.tool, "arguments": st.ok(got)})
			var res struct {
				IsError           bool `json:"isError"`
				Content           []struct{ Text string }
				StructuredContent json.RawMessage `json:"structuredContent"`
			}
			require.NoError(t, json.Unmarshal(raw, &res))
			require.False(t, res.IsError, "%s failed: %s", st.tool, raw)
			require.Len(t, res.Content, 1, st.tool)
			text := []byte(res.Content[0].Text)
			assert.NoError(t, validate(t, byType[st.tool], text), "%s: result does not match its type's schema: %s", st.tool, text)
			if sch, ok := published[st.tool]; ok {
				require.NotEmpty(t, res.StructuredContent, "%s has an outputSchema, so it must send structured content", st.tool)
				assert.NoError(t, validate(t, sch, res.StructuredContent), "%s: structured content does not match its outputSchema", st.tool)
			} else {
				assert.Empty(t, res.StructuredContent, "%s: structured content without an outputSchema costs tokens for nothing", st.tool)
			}
			var m map[string]any
			require.NoError(t, json.Unmarshal(text, &m))
			got[st.tool] = m

			raw = f.rpc(t, "tools/call", map[string]any{"name": st.tool, "arguments": st.bad(got)})
			res.StructuredContent, res.IsError = nil, false
			require.NoError(t, json.Unmarshal(raw, &res))
			assert.True(t, res.IsError, "%s error path succeeded: %s", st.tool, raw)
			assert.Empty(t, res.StructuredContent, "%s: an error result must not carry structured content (it would fail the outputSchema)", st.tool)
			_, obj, _ := strings.Cut(res.Content[0].Text, "\n")
			var we struct {
				Code      core.Code `json:"code"`
				Retryable *bool     `json:"retryable"`
			}
			require.NoError(t, json.Unmarshal([]byte(obj), &we), "%s: second line of an error is its JSON: %s", st.tool, res.Content[0].Text)
			assert.Equal(t, st.code, we.Code, "%s: %s", st.tool, res.Content[0].Text)
			assert.NotNil(t, we.Retryable, st.tool)
		}
		for _, tl := range tools.Inventory() {
			assert.True(t, covered[tl.Name], "tool %s is not called by everyToolSteps", tl.Name)
		}
	})
}

// TestToolErrorsSayWhatToDo: LEASE_CONFLICT names the holder and expiry, is retryable and
// hints at wait_ms; an unknown argument is refused by name and changes nothing.
func TestToolErrorsSayWhatToDo(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		f := newMCP(s, s.Project.Key).(*mcpFace)
		text := func(tool string, a map[string]any) string {
			raw := f.rpc(t, "tools/call", map[string]any{"name": tool, "arguments": a})
			var res struct{ Content []struct{ Text string } }
			require.NoError(t, json.Unmarshal(raw, &res))
			return res.Content[0].Text
		}
		ok(t, f.Call(t, "acquire_lease", map[string]any{"state_key": "L", "holder": "w1"}))
		conflict := text("acquire_lease", map[string]any{"state_key": "L", "holder": "w2"})
		first, obj, _ := strings.Cut(conflict, "\n")
		assert.Equal(t, "Error: LEASE_CONFLICT: State already has an active lease", first, "v1's text stays the first line")
		var we struct {
			Retryable bool
			Hint      string
			Details   struct {
				Holder    string `json:"holder"`
				ExpiresAt int64  `json:"expires_at"`
			}
		}
		require.NoError(t, json.Unmarshal([]byte(obj), &we))
		assert.True(t, we.Retryable)
		assert.Contains(t, we.Hint, "wait_ms")
		assert.Equal(t, "w1", we.Details.Holder)
		assert.Positive(t, we.Details.ExpiresAt)

		put(t, f, "k", "a", `{"n":1}`)
		typo := text("upsert_state", map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{"n": 2}, "expected_verison": 1})
		assert.True(t, strings.HasPrefix(typo, `INVALID_PARAMS: expected_verison: Unknown argument "expected_verison"`), typo)
		var st core.State
		ok(t, f.Call(t, "get_state", map[string]any{"state_key": "k"})).Decode(t, &st)
		assert.EqualValues(t, 1, st.Version, "the misspelt call wrote nothing")

		// REST keeps v1's ignore-unknown behaviour.
		resp, out := send(t, "PUT", s.URL+"/api/v1/states/k", s.Project.Key, map[string]any{"agent_id": "a", "data": map[string]any{"n": 3}, "expected_verison": 1}, nil)
		assert.Equal(t, 200, resp.StatusCode, string(out))

		// A type error names the argument, not the value.
		bad := text("get_state", map[string]any{"state_key": 12345})
		assert.True(t, strings.HasPrefix(bad, "INVALID_PARAMS: state_key: "), bad)
		assert.NotContains(t, bad, "12345")
	})
}
