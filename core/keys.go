package core

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Named bounds of key and token management.
const (
	MaxCredentialNameLen = 255
	MaxKeyScopes         = 64 // v1: 1..64 scopes on an API key
	MaxTokenScopes       = 6  // v1: 1..6 capability scopes on a token
	MaxResources         = 32 // state-key patterns on one credential
	MaxDelegationDepth   = 8  // max_depth of a root token; each child is lower than its parent
)

// CapabilityToken is the token object of compat-v1.md §8 plus its lineage. Token is set only
// in a create response.
type CapabilityToken struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	KeyPrefix  string   `json:"key_prefix"`
	Scopes     []string `json:"scopes"`
	ExpiresAt  *int64   `json:"expires_at"`
	CreatedAt  int64    `json:"created_at"`
	LastUsedAt *int64   `json:"last_used_at"`
	RevokedAt  *int64   `json:"revoked_at"`
	ParentID   *string  `json:"parent_id" jsonschema_description:"The token that minted this one; null when an API key did."`
	Depth      int      `json:"depth" jsonschema_description:"0 for a token minted by an API key, parent depth + 1 otherwise."`
	MaxDepth   int      `json:"max_depth" jsonschema_description:"How many further levels of delegation this token may create; 0 = it cannot mint."`
	Resources  []string `json:"resources" jsonschema_description:"State-key patterns (exact, or a prefix ending in *) this token may touch; null = every key."`
	AgentID    *string  `json:"agent_id" jsonschema_description:"When set, every write made with this token is recorded as this agent."`
	Token      string   `json:"token,omitempty" jsonschema_description:"The raw token, shown once on create."`
	// Ancestors are the token ids from the root to the parent; revoking any of them revokes this.
	Ancestors []string `json:"-"`
	// MintedBy is the API key that minted the chain's root; revoking it revokes this too.
	MintedBy string `json:"-"`
	// Audience is the one resource that accepts the token ("" = the usual faces); see Credential.
	Audience string `json:"-"`
}

// KeyList is GET /api/v1/keys and list_api_keys' result.
type KeyList struct {
	Data []APIKey `json:"data"`
}

// TokenList is GET /api/v1/capability-tokens.
type TokenList struct {
	Data []CapabilityToken `json:"data"`
}

// CreateKeyRequest is the body of POST /api/v1/keys and create_api_key's arguments.
type CreateKeyRequest struct {
	Name      string   `json:"name" jsonschema:"minLength=1,maxLength=255" jsonschema_description:"A label for the key."`
	Scopes    []string `json:"scopes,omitempty" jsonschema:"minItems=1,maxItems=64" jsonschema_description:"Scopes (or wildcards such as state:* or *), each within your own; omitted = inherit yours."`
	Resources []string `json:"resources,omitempty" jsonschema:"maxItems=32" jsonschema_description:"Limit the key to these state-key patterns (exact, or a prefix ending in *); omitted = inherit yours."`
	AgentID   string   `json:"agent_id,omitempty" jsonschema:"maxLength=255" jsonschema_description:"Bind the key to one agent: its writes are recorded as this agent."`
}

// MintTokenRequest is the body of POST /api/v1/capability-tokens and mint_capability_token's arguments.
type MintTokenRequest struct {
	Name      string   `json:"name" jsonschema:"minLength=1,maxLength=255" jsonschema_description:"A label for the token."`
	Scopes    []string `json:"scopes" jsonschema:"minItems=1,maxItems=6,enum=state:read,enum=state:write,enum=state:watch,enum=lease:write,enum=claim:read,enum=claim:write" jsonschema_description:"1..6 unique capability scopes, each within the caller's."`
	ExpiresAt *int64   `json:"expires_at,omitempty" jsonschema:"minimum=1" jsonschema_description:"Expiry in Unix ms; never later than the caller's own expiry (inherited when omitted)."`
	MaxDepth  *int     `json:"max_depth,omitempty" jsonschema:"minimum=0,maximum=8" jsonschema_description:"Delegation levels the new token may create (0 = it cannot mint). Below the caller's own when a token mints."`
	Resources []string `json:"resources,omitempty" jsonschema:"maxItems=32" jsonschema_description:"State-key patterns (exact, or a prefix ending in *) the token may touch, within the caller's; omitted = inherit."`
	AgentID   string   `json:"agent_id,omitempty" jsonschema:"maxLength=255" jsonschema_description:"Bind the token to one agent; a bound caller can only mint for its own agent."`
}

// KeyStore keeps API keys and capability tokens. Records live in the project; credentials are
// found by hash.
type KeyStore interface {
	AuthStore
	ListAPIKeys(ctx context.Context, project string) ([]APIKey, error)
	// RevokeAPIKey marks the key and its credential revoked; false when there is no such key.
	RevokeAPIKey(ctx context.Context, project, id string, now int64) (bool, error)
	CreateToken(ctx context.Context, project string, t CapabilityToken, hash string) error
	Token(ctx context.Context, project, id string) (*CapabilityToken, error)
	// Tokens returns every token of the project, revoked ones included.
	Tokens(ctx context.Context, project string) ([]CapabilityToken, error)
	// RevokeToken revokes id and, through the ancestor check, every token below it: one write.
	RevokeToken(ctx context.Context, project, id string, now int64) error
	// RevokedAmong returns which of ids are revoked.
	RevokedAmong(ctx context.Context, project string, ids []string) ([]bool, error)
}

// Keys manages a project's API keys and capability tokens.
type Keys struct {
	store KeyStore
	clock Clock
}

// NewKeys builds the service.
func NewKeys(store KeyStore, clock Clock) *Keys { return &Keys{store: store, clock: clock} }

// CreateAPIKey makes a key no wider than the caller (v1's subset and inherit rules, extended to
// resources and agent binding).
func (k *Keys) CreateAPIKey(ctx context.Context, p Principal, in CreateKeyRequest) (APIKey, error) {
	const op = "core.Keys.CreateAPIKey"
	if err := p.Authorize(OpKeyCreate); err != nil {
		return APIKey{}, err
	}
	if err := validateName(op, in.Name); err != nil {
		return APIKey{}, err
	}
	scopes := in.Scopes
	switch {
	case scopes == nil && slices.Contains(p.Scopes, "*"):
		// v1: a full-access caller's child inherits full access as null.
	case scopes == nil:
		scopes = slices.Clone(p.Scopes)
	default:
		if err := validateScopeList(op, scopes, grantableScopes, MaxKeyScopes); err != nil {
			return APIKey{}, err
		}
		if !scopesWithin(p.Scopes, scopes) {
			return APIKey{}, E(op, CodeForbidden, "Cannot grant scopes beyond the calling key's own scopes")
		}
	}
	res, agent, err := narrowBinding(op, p, in.Resources, in.AgentID)
	if err != nil {
		return APIKey{}, err
	}
	raw := NewAPIKeySecret()
	key := APIKey{
		ID: NewID(), Name: in.Name, KeyPrefix: raw[:keyPrefixLen], Scopes: scopes,
		CreatedAt: NowMs(k.clock), Resources: res, AgentID: agent,
	}
	if err := k.store.CreateAPIKey(ctx, p.ProjectID, key, SHA256Hex([]byte(raw))); err != nil {
		return APIKey{}, Internal(op, err)
	}
	key.Key = raw
	return key, nil
}

// ListAPIKeys lists every key of the caller's project, revoked ones included (v1).
func (k *Keys) ListAPIKeys(ctx context.Context, p Principal) (KeyList, error) {
	const op = "core.Keys.ListAPIKeys"
	if err := p.Authorize(OpKeyList); err != nil {
		return KeyList{}, err
	}
	keys, err := k.store.ListAPIKeys(ctx, p.ProjectID)
	if err != nil {
		return KeyList{}, Internal(op, err)
	}
	return KeyList{Data: keys}, nil
}

// RevokeAPIKey revokes a key of the caller's project; the next request with it gets 401.
func (k *Keys) RevokeAPIKey(ctx context.Context, p Principal, id string) error {
	const op = "core.Keys.RevokeAPIKey"
	if err := p.Authorize(OpKeyRevoke); err != nil {
		return err
	}
	ok, err := k.store.RevokeAPIKey(ctx, p.ProjectID, id, NowMs(k.clock))
	if err != nil {
		return Internal(op, err)
	}
	if !ok {
		return E(op, CodeNotFound, "API key not found")
	}
	return nil
}

// MintToken creates a capability token. Called with a key it is a root token (v1); called with
// a token whose max_depth allows it, a child that is never wider than its parent on any axis.
func (k *Keys) MintToken(ctx context.Context, p Principal, in MintTokenRequest) (CapabilityToken, error) {
	return k.MintBound(ctx, p, in, p.Audience)
}

// MintBound is MintToken for a token accepted only by the resource audience (the OAuth server
// mints its grants and access tokens so). A caller that is itself bound keeps its audience:
// nothing minted from an access token works anywhere the access token does not.
func (k *Keys) MintBound(ctx context.Context, p Principal, in MintTokenRequest, audience string) (CapabilityToken, error) {
	const op = "core.Keys.MintToken"
	if p.Audience != "" && audience != p.Audience {
		return CapabilityToken{}, E(op, CodeForbidden, MsgAudienceBound)
	}
	if err := p.Authorize(OpTokenMint); err != nil {
		return CapabilityToken{}, err
	}
	if err := validateName(op, in.Name); err != nil {
		return CapabilityToken{}, err
	}
	if err := validateScopeList(op, in.Scopes, CapabilityScopes, MaxTokenScopes); err != nil {
		return CapabilityToken{}, err
	}
	if in.ExpiresAt != nil && *in.ExpiresAt < 1 {
		return CapabilityToken{}, BadRequest(op, "expires_at", "Number must be greater than 0")
	}
	if in.MaxDepth != nil && (*in.MaxDepth < 0 || *in.MaxDepth > MaxDelegationDepth) {
		return CapabilityToken{}, BadRequest(op, "max_depth", fmt.Sprintf("max_depth must be 0..%d", MaxDelegationDepth))
	}
	if !scopesWithin(p.Scopes, in.Scopes) {
		msg := "Cannot grant scopes beyond the calling key's own scopes"
		if p.Kind == KindCapabilityToken {
			msg = "Cannot grant scopes beyond the parent token's own scopes"
		}
		return CapabilityToken{}, E(op, CodeForbidden, msg)
	}
	res, agent, err := narrowBinding(op, p, in.Resources, in.AgentID)
	if err != nil {
		return CapabilityToken{}, err
	}
	expires := in.ExpiresAt
	if p.ExpiresAt != 0 {
		if expires == nil {
			expires = &p.ExpiresAt
		} else if *expires > p.ExpiresAt {
			return CapabilityToken{}, E(op, CodeForbidden, "A child token cannot outlive its parent")
		}
	}
	raw := CapabilityTokenPrefix + RandomBase62(credentialSecretLen)
	scopes := slices.Clone(in.Scopes)
	slices.Sort(scopes)
	t := CapabilityToken{
		ID: NewID(), Name: in.Name, KeyPrefix: raw[:keyPrefixLen], Scopes: scopes, ExpiresAt: expires,
		CreatedAt: NowMs(k.clock), Resources: res, Audience: audience,
	}
	if agent != "" {
		t.AgentID = &agent
	}
	if in.MaxDepth != nil {
		t.MaxDepth = *in.MaxDepth
	}
	t.MintedBy = p.CredentialID
	if p.Kind == KindCapabilityToken {
		t.MintedBy = p.MintedBy
		if in.MaxDepth == nil {
			t.MaxDepth = p.MaxDepth - 1
		} else if *in.MaxDepth >= p.MaxDepth {
			return CapabilityToken{}, E(op, CodeForbidden, "max_depth must be lower than the parent token's max_depth")
		}
		parent := p.CredentialID
		t.ParentID, t.Depth = &parent, p.Depth+1
		t.Ancestors = append(slices.Clone(p.Ancestors), parent)
	}
	if err := k.store.CreateToken(ctx, p.ProjectID, t, SHA256Hex([]byte(raw))); err != nil {
		return CapabilityToken{}, Internal(op, err)
	}
	t.Token = raw
	return t, nil
}

// ListTokens lists the live (unrevoked, including by an ancestor) tokens: all of the project's
// for a key, the caller's own descendants for a token.
func (k *Keys) ListTokens(ctx context.Context, p Principal) (TokenList, error) {
	const op = "core.Keys.ListTokens"
	if err := p.Authorize(OpTokenList); err != nil {
		return TokenList{}, err
	}
	all, err := k.store.Tokens(ctx, p.ProjectID)
	if err != nil {
		return TokenList{}, Internal(op, err)
	}
	revoked := map[string]bool{}
	var minters []string
	for _, t := range all {
		if t.RevokedAt != nil {
			revoked[t.ID] = true
		}
		if t.MintedBy != "" && !slices.Contains(minters, t.MintedBy) {
			minters = append(minters, t.MintedBy)
		}
	}
	// A revoked minting key takes its tokens with it: one membership check for all of them.
	gone, err := k.store.RevokedAmong(ctx, p.ProjectID, minters)
	if err != nil {
		return TokenList{}, Internal(op, err)
	}
	for i, id := range minters {
		revoked[id] = gone[i]
	}
	out := []CapabilityToken{}
	for _, t := range all {
		if revoked[t.ID] || revoked[t.MintedBy] || slices.ContainsFunc(t.Ancestors, func(a string) bool { return revoked[a] }) {
			continue
		}
		if p.Kind == KindCapabilityToken && !slices.Contains(t.Ancestors, p.CredentialID) {
			continue
		}
		out = append(out, t)
	}
	return TokenList{Data: out}, nil
}

// RevokeToken revokes a token and every token it minted, directly or not. Revoking a revoked
// token succeeds (v1). A token may revoke itself and its descendants only.
func (k *Keys) RevokeToken(ctx context.Context, p Principal, id string) error {
	const op = "core.Keys.RevokeToken"
	if err := p.Authorize(OpTokenRevoke); err != nil {
		return err
	}
	t, err := k.store.Token(ctx, p.ProjectID, id)
	if err != nil {
		return Internal(op, err)
	}
	if t == nil || (p.Kind == KindCapabilityToken && id != p.CredentialID && !slices.Contains(t.Ancestors, p.CredentialID)) {
		return E(op, CodeNotFound, "Capability token not found")
	}
	if t.RevokedAt != nil {
		return nil
	}
	if err := k.store.RevokeToken(ctx, p.ProjectID, id, NowMs(k.clock)); err != nil {
		return Internal(op, err)
	}
	return nil
}

// grantableScopes are the scopes and wildcards an API key may carry.
var grantableScopes = func() []string {
	out := append([]string{"*"}, AllScopes...)
	for _, s := range AllScopes {
		w := s[:strings.IndexByte(s, ':')] + ":*"
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}()

func validateName(op, name string) error {
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return BadRequest(op, "name", "String must contain at least 1 character(s)")
	case n > MaxCredentialNameLen:
		return BadRequest(op, "name", fmt.Sprintf("String must contain at most %d character(s)", MaxCredentialNameLen))
	}
	return nil
}

// validateScopeList applies v1's zod rules: 1..max unique values from allowed.
func validateScopeList(op string, scopes, allowed []string, maxN int) error {
	if len(scopes) == 0 {
		return BadRequest(op, "scopes", "at least one scope is required")
	}
	if len(scopes) > maxN {
		return BadRequest(op, "scopes", fmt.Sprintf("Array must contain at most %d element(s)", maxN))
	}
	for i, s := range scopes {
		if !slices.Contains(allowed, s) {
			return BadRequest(op, fmt.Sprintf("scopes.%d", i), fmt.Sprintf("Invalid enum value. Expected '%s', received '%s'",
				strings.Join(allowed, "' | '"), s))
		}
		if slices.Contains(scopes[:i], s) {
			return BadRequest(op, "scopes", "scopes must be unique; allowed scopes: "+strings.Join(allowed, ", "))
		}
	}
	return nil
}

// scopesWithin reports whether every requested scope is granted by the caller's. A requested
// wildcard is within only if the caller holds the same or a wider wildcard.
func scopesWithin(granted, requested []string) bool {
	for _, s := range requested {
		if !ScopesSatisfy(granted, s) {
			return false
		}
	}
	return true
}

// narrowBinding checks a new credential's resources and agent against the caller's, inheriting
// them when omitted.
func narrowBinding(op string, p Principal, resources []string, agent string) ([]string, string, error) {
	if len(resources) > MaxResources {
		return nil, "", BadRequest(op, "resources", fmt.Sprintf("Array must contain at most %d element(s)", MaxResources))
	}
	for i, r := range resources {
		if err := validateKeyPattern(op, fmt.Sprintf("resources.%d", i), r); err != nil {
			return nil, "", err
		}
	}
	switch {
	case resources == nil:
		resources = slices.Clone(p.Resources)
	case !ResourcesWithin(p.Resources, resources):
		return nil, "", E(op, CodeForbidden, "Cannot grant resources beyond the caller's own resources")
	}
	if utf8.RuneCountInString(agent) > MaxAgentIDLen {
		return nil, "", BadRequest(op, "agent_id", fmt.Sprintf("String must contain at most %d character(s)", MaxAgentIDLen))
	}
	if p.AgentID != "" {
		if agent != "" && agent != p.AgentID {
			return nil, "", E(op, CodeForbidden, MsgBoundAgent+p.AgentID)
		}
		agent = p.AgentID
	}
	return resources, agent, nil
}

// TokenPrincipal is the principal of a live token of the project, found by id rather than by
// its secret: the OAuth server acts as a grant (a token whose secret nobody holds) when it mints
// the grant's access tokens. A revoked or expired token, or one whose lineage is revoked, is
// UNAUTHORIZED, exactly as Authenticate would answer for it.
func (k *Keys) TokenPrincipal(ctx context.Context, project, id string) (Principal, error) {
	const op = "core.Keys.TokenPrincipal"
	t, err := k.store.Token(ctx, project, id)
	if err != nil {
		return Principal{}, Internal(op, err)
	}
	if t == nil || t.RevokedAt != nil || (t.ExpiresAt != nil && *t.ExpiresAt <= NowMs(k.clock)) {
		return Principal{}, E(op, CodeUnauthorized, MsgUnauthorized)
	}
	lineage := Credential{ID: t.ID, Ancestors: t.Ancestors, MintedBy: t.MintedBy}.Lineage()
	revoked, err := k.store.RevokedAmong(ctx, project, lineage)
	if err != nil {
		return Principal{}, Internal(op, err)
	}
	if slices.Contains(revoked, true) {
		return Principal{}, E(op, CodeUnauthorized, MsgUnauthorized)
	}
	p := Principal{ProjectID: project, CredentialID: t.ID, Kind: KindCapabilityToken, Scopes: t.Scopes,
		Resources: t.Resources, Ancestors: t.Ancestors, Depth: len(t.Ancestors), MaxDepth: t.MaxDepth,
		MintedBy: t.MintedBy, Audience: t.Audience}
	if t.AgentID != nil {
		p.AgentID = *t.AgentID
	}
	if t.ExpiresAt != nil {
		p.ExpiresAt = *t.ExpiresAt
	}
	return p, nil
}

// RevokeOnServerAuthority revokes a token (and so everything minted from it) without a calling
// principal: the OAuth server does so when a code or refresh token is replayed, and when a
// client revokes its own token (RFC 7009).
func (k *Keys) RevokeOnServerAuthority(ctx context.Context, project, id string) error {
	if err := k.store.RevokeToken(ctx, project, id, NowMs(k.clock)); err != nil {
		return Internal("core.Keys.RevokeOnServerAuthority", err)
	}
	return nil
}
