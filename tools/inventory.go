// Package tools is the MCP tool inventory: each tool is a value (definition, scope, handler)
// and a thin adapter over core, one file per primitive, mirroring core and rest.
package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/agentstate/agentstate-go/conversations"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/schemas"
)

// Deps are the core services tools call.
type Deps struct {
	States        *core.States
	Leases        *core.Leases
	Watcher       *core.Watcher
	Keys          *core.Keys
	Claims        *core.Claims
	Conversations *conversations.Service
}

// Hints are the four MCP tool annotations; every tool states all four.
type Hints struct {
	ReadOnly, Destructive, Idempotent, OpenWorld bool
}

// Tool is one inventory entry.
type Tool struct {
	Name        string
	Title       string
	Description string
	Op          core.Operation // who may see and call the tool (scope, credential kinds)
	Hints       Hints
	Input       any // zero value of the arguments type; its schema is the input schema
	Output      any // zero value of the result type; its schema is the output schema
	call        func(ctx context.Context, d Deps, p core.Principal, args json.RawMessage) (any, error)
}

// define builds a Tool whose handler decodes arguments into In.
func define[In, Out any](t Tool, fn func(ctx context.Context, d Deps, p core.Principal, in In) (Out, error)) Tool {
	var in In
	var out Out
	t.Input, t.Output = in, out
	t.call = func(ctx context.Context, d Deps, p core.Principal, raw json.RawMessage) (any, error) {
		var args In
		if len(raw) > 0 && string(raw) != "null" {
			if err := json.Unmarshal(raw, &args); err != nil {
				return nil, core.DecodeError("tools."+t.Name, err)
			}
		}
		return fn(ctx, d, p, args)
	}
	return t
}

// Inventory lists every tool, in the order tools/list shows them.
func Inventory() []Tool {
	return slices.Concat(stateTools(), leaseTools(), watchTools(), claimTools(), conversationTools(), keyTools())
}

// callableBy reports whether p may see and call t.
func (t Tool) callableBy(p core.Principal) bool {
	return p.Authorize(t.Op) == nil
}

// Definition is the tool as MCP clients see it.
func (t Tool) Definition() mcp.Tool {
	def := mcp.NewToolWithRawSchema(t.Name, t.Description, schemas.JSON(t.Input))
	def.RawOutputSchema = schemas.JSON(t.Output)
	def.Annotations = mcp.ToolAnnotation{
		Title:           t.Title,
		ReadOnlyHint:    mcp.ToBoolPtr(t.Hints.ReadOnly),
		DestructiveHint: mcp.ToBoolPtr(t.Hints.Destructive),
		IdempotentHint:  mcp.ToBoolPtr(t.Hints.Idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(t.Hints.OpenWorld),
	}
	return def
}

// Handler adapts t to mcp-go: the principal comes from the context (set by the transport from
// the credential), the scope is checked, and failures become isError results.
func (t Tool) Handler(d Deps) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, ok := core.PrincipalFrom(ctx)
		if !ok {
			return errorResult(core.E("tools."+t.Name, core.CodeUnauthorized, core.MsgUnauthorized)), nil
		}
		if err := p.Authorize(t.Op); err != nil {
			if t.Op.Delegation && p.Kind == core.KindCapabilityToken {
				return errorResult(err), nil // a token lacks no scope here: say why it cannot delegate
			}
			// v1's MCP text for any refused tool (compat-v1.md §16.2).
			r := mcp.NewToolResultError("FORBIDDEN: missing required scope " + t.Op.Scope)
			r.StructuredContent = map[string]any{"error": core.WireErrorOf(core.E("tools."+t.Name, core.CodeForbidden, core.MsgMissingScope+t.Op.Scope))}
			return r, nil
		}
		raw := req.Params.RawArguments
		if len(raw) == 0 && req.Params.Arguments != nil {
			raw, _ = json.Marshal(req.Params.Arguments)
		}
		out, err := t.call(ctx, d, p, raw)
		if err != nil {
			return errorResult(err), nil
		}
		text, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return errorResult(core.Internal("tools."+t.Name, err)), nil
		}
		return mcp.NewToolResultStructured(out, string(text)), nil
	}
}

// errorResult renders a failure as v1 does: "INVALID_PARAMS: <path>: <msg>" for a bad
// argument, "Error: <CODE>: <message>" otherwise, plus the wire error object as structured content.
func errorResult(err error) *mcp.CallToolResult {
	wire := core.WireErrorOf(err)
	text := fmt.Sprintf("Error: %s: %s", wire.Code, wire.Message)
	if d, ok := wire.Details.(map[string]string); ok && wire.Code == core.CodeBadRequest && d["path"] != "" {
		text = "INVALID_PARAMS: " + d["path"] + ": " + wire.Message
	}
	r := mcp.NewToolResultError(text)
	r.StructuredContent = map[string]any{"error": wire}
	return r
}

// NewServer builds an MCP server holding the whole inventory. tools/list shows only the tools
// the calling credential may use; a call to any other gets v1's FORBIDDEN result.
func NewServer(d Deps, opts ...server.ServerOption) *server.MCPServer {
	hooks := &server.Hooks{}
	hooks.AddAfterListTools(func(ctx context.Context, _ any, _ *mcp.ListToolsRequest, res *mcp.ListToolsResult) {
		p, _ := core.PrincipalFrom(ctx)
		res.Tools = slices.DeleteFunc(res.Tools, func(t mcp.Tool) bool {
			return !byName[t.Name].callableBy(p)
		})
	})
	opts = append([]server.ServerOption{
		server.WithToolCapabilities(false), server.WithResourceCapabilities(true, false),
		server.WithHooks(hooks), server.WithRecovery(), server.WithInstructions(instructions),
	}, opts...)
	s := server.NewMCPServer("agentstate", core.ProductVersion, opts...)
	addResources(s, hooks, d)
	for _, t := range Inventory() {
		s.AddTool(t.Definition(), t.Handler(d))
	}
	return s
}

var byName = func() map[string]Tool {
	m := map[string]Tool{}
	for _, t := range Inventory() {
		m[t.Name] = t
	}
	return m
}()

const instructions = `AgentState is shared state and coordination for agent fleets.
States are versioned JSON objects under string keys: read with get_state, write with upsert_state
(pass expected_version to avoid overwriting someone else's change), find with query_states, and
audit with list_state_events; wait_for_state_change blocks until another agent changes a key.
Take acquire_lease before exclusive work on a key and pass its lease_id and fencing_token on writes.
Record checkable assertions with create_claim and verify_claim. Keep conversation history with
store_conversation / append_messages and find it with search_conversations. Give a sub-agent its own
narrower credential with mint_capability_token.`
