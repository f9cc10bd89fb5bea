package core

import (
	"context"
	"path"
)

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
	Resources    []string // state-key glob patterns the credential is limited to; nil = every key
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

// CanTouch reports whether the principal may act on a state key (and its lease or claims).
func (p Principal) CanTouch(key string) bool {
	if p.Resources == nil {
		return true
	}
	for _, pat := range p.Resources {
		if ok, _ := path.Match(pat, key); ok {
			return true
		}
	}
	return false
}

// RequireResource returns 403 when key is outside the principal's resources.
func (p Principal) RequireResource(op, key string) error {
	if p.CanTouch(key) {
		return nil
	}
	return E(op, CodeForbidden, "This credential may not access state key "+key)
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
