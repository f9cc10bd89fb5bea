package core

import "context"

// CredentialKind tells API keys from capability tokens; some routes accept only keys.
type CredentialKind string

const (
	KindAPIKey          CredentialKind = "api_key"
	KindCapabilityToken CredentialKind = "capability_token"
)

// Principal is who is calling. It always comes from the credential, never from a request body
// or tool argument.
type Principal struct {
	ProjectID    string
	CredentialID string
	Kind         CredentialKind
	Scopes       []string // effective scopes; a full-access key has ["*"]
	AgentID      string   // set when the credential is bound to one agent
}

// Can reports whether the principal holds scope.
func (p Principal) Can(scope string) bool { return ScopesSatisfy(p.Scopes, scope) }

// Require returns v1's 403 when the principal lacks scope.
func (p Principal) Require(op, scope string) error {
	if p.Can(scope) {
		return nil
	}
	if p.Kind == KindCapabilityToken {
		return E(op, CodeForbidden, "Capability token does not have required scope")
	}
	return E(op, CodeForbidden, "Missing required scope: "+scope)
}

type principalKey struct{}

// WithPrincipal stores the authenticated principal in ctx.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal stored by WithPrincipal.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
