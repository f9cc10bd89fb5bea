package core

import (
	"context"
	"slices"
	"strings"
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
	Resources    []string // state-key patterns the credential is limited to; nil = every key
	// Capability-token lineage: delegation never widens any of these.
	Ancestors []string // token ids from the root to the parent
	Depth     int
	MaxDepth  int
	ExpiresAt int64 // 0 = never
	// MintedBy is the API key at the root of a token's chain ("" for keys): the token is revoked
	// with it and its requests also count against that key's rate-limit budget.
	MintedBy string
	// Audience is the resource an audience-bound credential (an OAuth access token) was issued
	// for; "" = none. Tokens it mints inherit it, so delegation cannot unbind it.
	Audience string
	// prefetched are the reads sent with this request's credential (Auth.Admit), set only once
	// the request was admitted; States.Get and the MCP session check use them instead of
	// reading again.
	prefetched Prefetched
	// admission is set when the request's admission was deferred to its write (admission.go).
	admission *admission
}

// Can reports whether the principal holds scope.
func (p Principal) Can(scope string) bool { return ScopesSatisfy(p.Scopes, scope) }

// CanTouch reports whether the principal may act on a state key (and its lease or claims).
func (p Principal) CanTouch(key string) bool {
	return p.Resources == nil || slices.ContainsFunc(p.Resources, func(pat string) bool { return KeyPatternMatch(pat, key) })
}

// KeyPatternMatch is the one state-key pattern rule (credential resources, watch filters): a
// pattern is an exact key, or a prefix followed by a final "*". A single trailing wildcard
// keeps "is this pattern within that one" decidable, which delegation needs.
func KeyPatternMatch(pattern, key string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(key, prefix)
	}
	return key == pattern
}

// ResourcesWithin reports whether every child pattern matches only keys some parent pattern
// matches; nil parent resources allow everything.
func ResourcesWithin(parent, child []string) bool {
	if parent == nil {
		return true
	}
	for _, c := range child {
		covered := slices.ContainsFunc(parent, func(p string) bool {
			if prefix, ok := strings.CutSuffix(p, "*"); ok {
				return strings.HasPrefix(strings.TrimSuffix(c, "*"), prefix)
			}
			return c == p
		})
		if !covered {
			return false
		}
	}
	return true
}

func validateKeyPattern(op, path, pat string) error {
	base := strings.TrimSuffix(pat, "*")
	if strings.Contains(base, "*") {
		return BadRequest(op, path, "A key pattern may hold one *, at its end")
	}
	if base == "" {
		if pat == "*" {
			return nil
		}
		return BadRequest(op, path, "String must contain at least 1 character(s)")
	}
	return validateStateKey(op, base)
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

// PrincipalSlot is a context with room for the principal, filled by Set once the request is
// admitted: a server that already gives each request a context of its own keeps the principal
// there, saving WithPrincipal's boxed copy, its context value and the copy of the request that
// carries them.
type PrincipalSlot struct {
	context.Context // the request's context beneath
	p               Principal
	set             bool
}

// Set stores p; from then on PrincipalFrom of the slot, or of a context derived from it, returns it.
func (s *PrincipalSlot) Set(p Principal) { s.p, s.set = p, true }

// Value answers for the principal once it is set, and otherwise asks the context beneath.
func (s *PrincipalSlot) Value(key any) any {
	if _, ok := key.(principalKey); ok && s.set {
		return &s.p
	}
	return s.Context.Value(key)
}

// PrincipalFrom returns the principal stored by WithPrincipal or PrincipalSlot.Set.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	switch p := ctx.Value(principalKey{}).(type) {
	case Principal:
		return p, true
	case *Principal:
		return *p, true
	}
	return Principal{}, false
}
