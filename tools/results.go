package tools

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/jsonx"
)

// HostTimeoutMs bounds every tool call that blocks: common MCP hosts abandon a request after
// 60 s by default, so a wait must end (and answer) well before that.
const HostTimeoutMs = 50_000

// retryHints tell a model what to do next for the codes where there is something to do.
var retryHints = map[core.Code]string{
	core.CodeLeaseConflict: fmt.Sprintf("Another holder has the key until details.expires_at. Call acquire_lease again with wait_ms (up to %d) to queue for it, or retry after expires_at.", HostTimeoutMs),
	core.CodeVersionConflict: "Someone wrote first. Do not resend: merge your change into details.current (the state now) " +
		"and write again with expected_version = its version.",
	core.CodeStaleFencingToken:     "A newer lease was issued for this key: your lease is gone. Acquire it again before writing.",
	core.CodeLeaseExpired:          "The lease expired: acquire_lease again.",
	core.CodeLeaseRequired:         "A lease is held on this key: pass its lease_id (acquire_lease if it is not yours).",
	core.CodeIdempotencyInProgress: "The first request with this idempotency_key is still running: retry in a second with the same key.",
	core.CodeIdempotencyConflict:   "This idempotency_key was used with other arguments: use a new key.",
	core.CodeRateLimited:           "Retry after the number of seconds in the message.",
	core.CodeInternal:              "Retry with backoff; if it persists, report it.",
	core.CodeServiceUnavailable:    "The store is not answering: retry with backoff.",
	core.CodeUnauthorized:          "The credential is unknown, expired or revoked: it cannot be fixed by retrying.",
}

// toolError is the error object in an isError result's text.
type toolError struct {
	Code      core.Code `json:"code"`
	Message   string    `json:"message"`
	Retryable bool      `json:"retryable"`
	Hint      string    `json:"hint,omitempty"`
	Details   any       `json:"details,omitempty"`
}

// errorResult renders a failure as an isError result with no structured content (a client
// validates structured content against the tool's output schema, which describes success).
// The first line is v1's text ("Error: <CODE>: <message>", "INVALID_PARAMS: <path>: <msg>" or
// "FORBIDDEN: missing required scope <s>"); the second is the error as compact JSON, with
// whether and how retrying helps.
func errorResult(err error) *mcp.CallToolResult {
	w := core.WireErrorOf(err)
	first := fmt.Sprintf("Error: %s: %s", w.Code, w.Message)
	if d, ok := w.Details.(map[string]string); ok && w.Code == core.CodeBadRequest && d["path"] != "" {
		first = "INVALID_PARAMS: " + d["path"] + ": " + w.Message
	}
	var missing missingScope
	if errors.As(err, &missing) {
		first = "FORBIDDEN: missing required scope " + string(missing)
	}
	b, _ := json.Marshal(toolError{Code: w.Code, Message: w.Message, Retryable: w.Retryable, Hint: retryHints[w.Code], Details: w.Details})
	return mcp.NewToolResultError(first + "\n" + string(b))
}

// missingScope is an API key's FORBIDDEN for a tool outside its scopes (v1 words it apart).
type missingScope string

func (m missingScope) Error() string { return "missing required scope " + string(m) }

func forbiddenScope(tool, scope string) error {
	return &core.Error{Op: "tools." + tool, Code: core.CodeForbidden, Message: "Missing required scope: " + scope, Err: missingScope(scope)}
}

// successResult is the result as compact JSON text and, for tools with an output schema,
// the same object as structured content.
func successResult(out any, structured bool) (*mcp.CallToolResult, error) {
	var b []byte
	var err error
	if a, ok := out.(core.JSONAppender); ok {
		b, err = a.AppendJSON(nil)
	} else {
		b, err = json.Marshal(out)
	}
	if err != nil {
		return nil, err
	}
	if !structured {
		return mcp.NewToolResultText(string(b)), nil
	}
	return mcp.NewToolResultStructured(json.RawMessage(b), string(b)), nil
}

// decodeArgs decodes tool arguments strictly: an argument the tool does not take is refused
// (a misspelt expected_version must not become an unconditional write). Errors name the
// argument, never its value.
func decodeArgs(tool string, raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	op := "tools." + tool
	if err := core.RequireUTF8(op, raw); err != nil {
		return err
	}
	err := jsonx.DecodeStrict(raw, v)
	if err == nil {
		return nil
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field = strings.Trim(field, `"`)
		e := core.E(op, core.CodeBadRequest, fmt.Sprintf("Unknown argument %q: this tool does not take it (check the spelling against the input schema)", field))
		e.Details = map[string]string{"path": field}
		return e
	}
	return core.DecodeError(op, err)
}
