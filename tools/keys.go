package tools

import (
	"context"

	"github.com/agentstate/agentstate-go/core"
)

// IDArgs name one key or token.
type IDArgs struct {
	ID string `json:"id" jsonschema:"minLength=1" jsonschema_description:"The id from the list or create result."`
}

// NoArgs is the arguments of a tool that takes none.
type NoArgs struct{}

// Revoked is revoke_api_key's result (v1) and revoke_capability_token's.
type Revoked struct {
	Revoked bool   `json:"revoked"`
	ID      string `json:"id"`
}

func keyTools() []Tool {
	return []Tool{
		define(Tool{
			Name: "mint_capability_token", Title: "Mint a capability token", Op: core.OpTokenMint,
			Description: "Create a scoped, revocable credential for a sub-agent, never wider than yours (scopes, resources, expiry, depth). The raw token is shown once.",
		}, func(ctx context.Context, d Deps, p core.Principal, in core.MintTokenRequest) (core.CapabilityToken, error) {
			return d.Keys.MintToken(ctx, p, in)
		}),
		define(Tool{
			Name: "list_capability_tokens", Title: "List capability tokens", Op: core.OpTokenList,
			Description: "Live capability tokens of the project (a token sees only its descendants), without raw tokens.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, _ NoArgs) (core.TokenList, error) {
			return d.Keys.ListTokens(ctx, p)
		}),
		define(Tool{
			Name: "revoke_capability_token", Title: "Revoke a capability token", Op: core.OpTokenRevoke,
			Description: "Revoke a capability token and, at once, every token minted from it. Revoking twice is fine.",
			Hints:       Hints{Destructive: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, in IDArgs) (Revoked, error) {
			return Revoked{Revoked: true, ID: in.ID}, d.Keys.RevokeToken(ctx, p, in.ID)
		}),
		define(Tool{
			Name: "create_api_key", Title: "Create an API key", Op: core.OpKeyCreate,
			Description: "Create an API key for this project. Scopes (and resources, agent_id) must be within yours; omitted ones inherit yours. The raw key is shown once.",
		}, func(ctx context.Context, d Deps, p core.Principal, in core.CreateKeyRequest) (core.APIKey, error) {
			return d.Keys.CreateAPIKey(ctx, p, in)
		}),
		define(Tool{
			Name: "list_api_keys", Title: "List API keys", Op: core.OpKeyList,
			Description: "Every API key of the project, revoked ones included, without raw keys.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, _ NoArgs) (core.KeyList, error) {
			return d.Keys.ListAPIKeys(ctx, p)
		}),
		define(Tool{
			Name: "revoke_api_key", Title: "Revoke an API key", Op: core.OpKeyRevoke,
			Description: "Revoke an API key of this project; its next request is refused.",
			Hints:       Hints{Destructive: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, in IDArgs) (Revoked, error) {
			return Revoked{Revoked: true, ID: in.ID}, d.Keys.RevokeAPIKey(ctx, p, in.ID)
		}),
	}
}
