package tools

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/agentstate/agentstate-go/core"
)

// Authenticate resolves the credential a transport was given into a principal, afresh on every
// call, so a revoked, expired or deleted credential stops working at its next request.
type Authenticate func(ctx context.Context) (core.Principal, error)

type authKey struct{}

// WithAuthenticate stores how to (re-)authenticate the caller of this connection. Transports
// whose requests carry no credential of their own (stdio) rely on it for every request;
// long-lived work (resource subscriptions) uses it on every transport to notice revocation.
func WithAuthenticate(ctx context.Context, auth Authenticate) context.Context {
	return context.WithValue(ctx, authKey{}, auth)
}

// caller is the principal of the current request: the one an HTTP face authenticated for this
// very request (its admission settled, if the face deferred it: core.Principal.Settle), else
// the connection's credential authenticated now.
func caller(ctx context.Context) (core.Principal, error) {
	if p, ok := core.PrincipalFrom(ctx); ok {
		p, _, err := p.Settle(ctx)
		return p, err
	}
	return recheck(ctx)
}

// recheck authenticates the connection's credential now (for work that outlives its request).
func recheck(ctx context.Context) (core.Principal, error) {
	if auth, ok := ctx.Value(authKey{}).(Authenticate); ok && auth != nil {
		return auth(ctx)
	}
	if p, ok := core.PrincipalFrom(ctx); ok {
		p, _, err := p.Settle(ctx)
		return p, err
	}
	return core.Principal{}, core.E("tools.auth", core.CodeUnauthorized, "Unauthorized")
}

// ErrUnauthorized is the JSON-RPC error text a request with a dead credential gets.
var ErrUnauthorized = errors.New("UNAUTHORIZED: the credential is unknown, expired or revoked; configure a valid AGENTSTATE_API_KEY")

// gate refuses every request (other than the handshake) whose connection credential no longer
// authenticates. On HTTP the face has already authenticated the request, so it passes.
func gate(ctx context.Context, _ any, message any) error {
	if _, ok := core.PrincipalFrom(ctx); ok {
		return nil
	}
	var m struct {
		Method string `json:"method"`
	}
	if raw, ok := message.(json.RawMessage); ok {
		_ = json.Unmarshal(raw, &m)
	}
	if m.Method == "initialize" || m.Method == "ping" || m.Method == "server/discover" {
		return nil
	}
	// Only a dead credential is refused here. Any other failure (the store unavailable, say)
	// lets the request through, so that a tool call answers with an isError result saying to
	// retry — the handler authenticates again and reports it — instead of a protocol error.
	if _, err := recheck(ctx); core.IsCode(err, core.CodeUnauthorized) {
		return ErrUnauthorized
	}
	return nil
}

// Toolsets are the groups a host may choose from (?toolsets= on /api/mcp,
// AGENTSTATE_TOOLSETS for stdio); whoami is always listed.
var Toolsets = []string{"states", "leases", "claims", "conversations", "keys"}

type toolsetsKey struct{}

// WithToolsets limits tools/list to the named toolsets ("" or "all" = every tool). Unknown
// names are ignored. It narrows the list only: calls are still checked against scopes alone.
func WithToolsets(ctx context.Context, spec string) context.Context {
	if spec = strings.TrimSpace(spec); spec == "" || spec == "all" {
		return ctx
	}
	var sets []string
	for _, s := range strings.Split(spec, ",") {
		sets = append(sets, strings.TrimSpace(s))
	}
	return context.WithValue(ctx, toolsetsKey{}, sets)
}

func listed(ctx context.Context, t Tool) bool {
	sets, ok := ctx.Value(toolsetsKey{}).([]string)
	return !ok || t.Toolset == "" || slices.Contains(sets, t.Toolset)
}
