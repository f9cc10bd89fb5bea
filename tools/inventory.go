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
	RateLimiter   *core.RateLimiter // nil = unlimited
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
	Output      any // zero value of the result type
	// Structured publishes Output's schema as the tool's outputSchema and the result as
	// structured content too. It costs tokens in every tools/list, so only tools whose results
	// programs branch on carry it; the others answer with the same compact JSON as text only.
	Structured bool
	Toolset    string   // the toolset it belongs to (set by Inventory); see Toolsets
	Optional   []string // arguments the shared type requires that this tool defaults (from the credential)
	// Waits marks a tool that may block for long (a long poll, a queued acquire): its calls stay
	// on mcp-go's path, where notifications/cancelled and progress notifications reach them.
	Waits bool
	call  func(ctx context.Context, d Deps, p core.Principal, args json.RawMessage) (any, error)
}

// define builds a Tool whose handler decodes arguments (strictly) into In.
func define[In, Out any](t Tool, fn func(ctx context.Context, d Deps, p core.Principal, in In) (Out, error)) Tool {
	var in In
	var out Out
	t.Input, t.Output = in, out
	t.call = func(ctx context.Context, d Deps, p core.Principal, raw json.RawMessage) (any, error) {
		var args In
		if err := decodeArgs(t.Name, raw, &args); err != nil {
			return nil, err
		}
		return fn(ctx, d, p, args)
	}
	return t
}

// Inventory lists every tool, in the order tools/list shows them.
func Inventory() []Tool {
	return slices.Concat(identityTools(), toolset("states", stateTools(), watchTools()), toolset("leases", leaseTools()),
		toolset("claims", claimTools()), toolset("conversations", conversationTools()), toolset("keys", keyTools()))
}

func toolset(name string, groups ...[]Tool) []Tool {
	all := slices.Concat(groups...)
	for i := range all {
		all[i].Toolset = name
	}
	return all
}

// callableBy reports whether p may see and call t.
func (t Tool) callableBy(p core.Principal) bool {
	if t.Op.Scope == "" && t.Op.Access != core.Operator {
		return true // whoami: any live credential may ask who it is
	}
	return p.Authorize(t.Op) == nil
}

// Definition is the tool as MCP clients see it.
func (t Tool) Definition() mcp.Tool {
	in := schemas.Reflect(t.Input)
	in.Required = slices.DeleteFunc(in.Required, func(n string) bool { return slices.Contains(t.Optional, n) })
	raw, err := json.Marshal(in)
	if err != nil {
		panic("schema of " + t.Name + ": " + err.Error())
	}
	def := mcp.NewToolWithRawSchema(t.Name, t.Description, raw)
	if t.Structured {
		def.RawOutputSchema = schemas.OutputJSON(t.Output, schemas.WithoutDescriptions)
	}
	// readOnlyHint and idempotentHint default to false, so only true is sent; destructiveHint
	// and openWorldHint default to true, so they are always sent (tools/list is paid in tokens).
	def.Annotations = mcp.ToolAnnotation{
		Title:           t.Title,
		ReadOnlyHint:    trueOrNil(t.Hints.ReadOnly),
		DestructiveHint: mcp.ToBoolPtr(t.Hints.Destructive),
		IdempotentHint:  trueOrNil(t.Hints.Idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(t.Hints.OpenWorld),
	}
	return def
}

func trueOrNil(b bool) *bool {
	if b {
		return &b
	}
	return nil
}

// Handler adapts t to mcp-go: the caller is authenticated for this request (see caller), the
// scope is checked, and failures become isError results. A tool whose operation settles a
// deferred admission in its own round trip (core.Operation.SettlesAdmission: upsert_state's
// write, get_state's read) leaves it to the operation; every other tool settles it first.
func (t Tool) Handler(d Deps) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, ok := core.PrincipalFrom(ctx)
		var err error
		if !ok || !t.Op.SettlesAdmission() {
			p, err = caller(ctx)
		}
		if err != nil {
			return errorResult(err), nil
		}
		if !t.callableBy(p) {
			err := p.Authorize(t.Op)
			if t.Op.Delegation && p.Kind == core.KindCapabilityToken {
				return errorResult(err), nil // a token lacks no scope here: say why it cannot delegate
			}
			// v1's MCP text for any refused tool (compat-v1.md §16.2).
			return errorResult(forbiddenScope(t.Name, t.Op.Scope)), nil
		}
		raw := req.Params.RawArguments
		if len(raw) == 0 && req.Params.Arguments != nil {
			raw, _ = json.Marshal(req.Params.Arguments)
		}
		out, err := t.call(withProgress(ctx, req), d, p, raw)
		if err != nil {
			return errorResult(err), nil
		}
		res, err := successResult(out, t.Structured)
		if err != nil {
			return errorResult(core.Internal("tools."+t.Name, err)), nil
		}
		return res, nil
	}
}

// Server is the MCP server holding the whole inventory, and each tool's handler wrapped in the
// tool middleware as mcp-go wraps it, for the streamable HTTP face's parse-once calls (FastCalls).
type Server struct {
	*server.MCPServer
	handlers map[string]server.ToolHandlerFunc
	// checksSession are the tools whose call checks a legacy session itself (FastCalls): their
	// operation settles a deferred admission in its own round trip (get_state's read, a write's
	// script: core.Operation.SettlesAdmission), and the session check goes in it too.
	checksSession map[string]bool
}

// serverName is the implementation name in initialize and in a 2026-07-28 result's serverInfo.
const serverName = "agentstate"

// NewServer builds the MCP server. tools/list shows only the tools the calling credential may
// use; a call to any other gets v1's FORBIDDEN result. middleware wraps every tool call, the
// first outermost (after the panic recovery), on every transport.
//
// Every mcp-go option is set here, and nowhere else: FastCalls (fastcall.go) answers common
// calls without mcp-go's input or output schema validation, call hooks, request logger, tracer
// or tool filters, so an option that adds one of those must be taught to FastCalls too.
func NewServer(d Deps, middleware []server.ToolHandlerMiddleware) *Server {
	headers := standardHeaders{paramHeaders: map[string]bool{}}
	hooks := &server.Hooks{}
	hooks.AddOnRequestInitialization(gate)
	hooks.AddOnRequestInitialization(headers.check)
	hooks.AddAfterListTools(func(ctx context.Context, _ any, _ *mcp.ListToolsRequest, res *mcp.ListToolsResult) {
		p, err := caller(ctx)
		res.Tools = slices.DeleteFunc(res.Tools, func(t mcp.Tool) bool {
			return err != nil || !byName[t.Name].callableBy(p) || !listed(ctx, byName[t.Name])
		})
	})
	middleware = append([]server.ToolHandlerMiddleware{recovered}, middleware...)
	opts := []server.ServerOption{
		server.WithToolCapabilities(false), server.WithResourceCapabilities(true, false),
		server.WithHooks(hooks), server.WithInstructions(instructions),
	}
	for _, m := range middleware {
		opts = append(opts, server.WithToolHandlerMiddleware(m))
	}
	s := &Server{MCPServer: server.NewMCPServer(serverName, core.ProductVersion, opts...), handlers: map[string]server.ToolHandlerFunc{},
		checksSession: map[string]bool{}}
	addResources(s.MCPServer, hooks, d)
	for _, t := range Inventory() {
		def := t.Definition()
		paramHeaders := len(mcp.ExtractParamHeaderBindings(&def)) > 0
		if paramHeaders {
			headers.paramHeaders[def.Name] = true
		}
		h := t.Handler(d)
		s.AddTool(def, h)
		if !t.Waits && !paramHeaders {
			for _, m := range slices.Backward(middleware) { // as mcp-go applies them
				h = m(h)
			}
			s.handlers[t.Name] = h
			s.checksSession[t.Name] = t.Op.SettlesAdmission()
		}
	}
	return s
}

// recovered answers a panicking tool with the JSON-RPC error mcp-go's WithRecovery gives, on
// mcp-go's path and on FastCalls alike.
func recovered(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic recovered in %s tool handler: %v", req.Params.Name, r)
			}
		}()
		return next(ctx, req)
	}
}

var byName = func() map[string]Tool {
	m := map[string]Tool{}
	for _, t := range Inventory() {
		m[t.Name] = t
	}
	return m
}()

const instructions = `AgentState is shared state and coordination for agent fleets.
whoami tells you your project, agent and scopes; writes and leases are recorded as that agent.
States are versioned JSON objects under string keys: read with get_state, write with upsert_state
(pass expected_version to avoid overwriting someone else's change), find with query_states, and
audit with list_state_events; wait_for_state_change blocks until another agent changes a key.
Take acquire_lease before exclusive work on a key and pass its lease_id and fencing_token on writes.
Record checkable assertions with create_claim and verify_claim. Keep conversation history with
store_conversation / append_messages and find it with search_conversations. Give a sub-agent its own
narrower credential with mint_capability_token. Errors end with a JSON line: retryable and hint
say whether and how to retry.`

// OperationOf names the core operation a tool runs (the HTTP face's scope step-up reads it
// before the tool is called).
func OperationOf(name string) (core.Operation, bool) {
	for _, t := range Inventory() {
		if t.Name == name {
			return t.Op, true
		}
	}
	return core.Operation{}, false
}
