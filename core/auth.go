package core

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Credential prefixes (compat-v1.md §3.1).
const (
	APIKeyPrefix          = "as_live_"
	CapabilityTokenPrefix = "as_cap_"
	credentialSecretLen   = 40
	keyPrefixLen          = 12 // key_prefix shown in listings
)

var projectIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Credential is what the store keeps for a key or token, found by the SHA-256 of the raw string.
type Credential struct {
	ID        string         `json:"id"`
	Hash      string         `json:"hash"` // SHA-256 hex of the raw credential
	ProjectID string         `json:"project_id"`
	Kind      CredentialKind `json:"kind"`
	Scopes    []string       `json:"scopes"` // nil = full access (API keys only)
	AgentID   string         `json:"agent_id,omitempty"`
	ExpiresAt int64          `json:"expires_at,omitempty"` // 0 = never
	RevokedAt int64          `json:"revoked_at,omitempty"` // 0 = live
	Resources []string       `json:"resources,omitempty"`  // nil = every state key
	// Token lineage: ids from the root token to the parent, and how deep it may still delegate.
	Ancestors  []string `json:"ancestors,omitempty"`
	MaxDepth   int      `json:"max_depth,omitempty"`
	LastUsedAt int64    `json:"last_used_at,omitempty"`
	// MintedBy is the API key at the root of a token's chain: the token dies with it.
	MintedBy string `json:"minted_by,omitempty"`
	// Audience, when set, is the one resource (RFC 8707) that accepts the token: OAuth access
	// tokens are bound to <origin>/api/mcp and refused everywhere else.
	Audience string `json:"audience,omitempty"`
}

// Project is a tenant: every key, state, lease and claim belongs to exactly one.
type Project struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	// RetentionDays, when set, purges conversations not updated for that many days.
	RetentionDays *int `json:"retention_days"`
}

// APIKey is the key object of compat-v1.md §13.1; Key is set only in a create response.
type APIKey struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	KeyPrefix  string   `json:"key_prefix"`
	Scopes     []string `json:"scopes"`
	CreatedAt  int64    `json:"created_at"`
	LastUsedAt *int64   `json:"last_used_at"`
	RevokedAt  *int64   `json:"revoked_at"`
	Resources  []string `json:"resources,omitempty" jsonschema_description:"State-key patterns the key is limited to; absent = every key."`
	AgentID    string   `json:"agent_id,omitempty" jsonschema_description:"The agent the key is bound to, if any."`
	Key        string   `json:"key,omitempty"`
}

// AuthStore is the store behind authentication and project bootstrap.
type AuthStore interface {
	// Credential returns the credential stored under hash, or nil when there is none.
	Credential(ctx context.Context, hash string) (*Credential, error)
	// CreateProject stores p unless a project with that id exists; it reports whether it did.
	CreateProject(ctx context.Context, p Project) (bool, error)
	// CountProjects says whether the store is empty.
	CountProjects(ctx context.Context) (int64, error)
	// ListProjects returns every project, oldest first.
	ListProjects(ctx context.Context) ([]Project, error)
	// SetProjectRetention sets (nil: clears) retention_days; false when the project is unknown.
	SetProjectRetention(ctx context.Context, id string, days *int) (bool, error)
	// DeleteProject removes the project, all its credentials and all its data; false when unknown.
	DeleteProject(ctx context.Context, id string) (bool, error)
	// TouchCredential records a use of the credential (on the credential and its key or token record).
	TouchCredential(ctx context.Context, c Credential, at int64) error
	// CredentialAndCount reads what can change of the credential under hash (CredentialState;
	// nil when there is none), checks lineage (nil: none) against project's revoked set and
	// counts one request for each of count in the window starting at windowStart, all in one
	// round trip; counts are in count's order. A counter's expiry is
	// set with its count when SetExpiry asks, and otherwise only when the count finds the
	// counter new, so that no counter outlives its window by more than one more.
	// reads go out in the same round trip (Prefetched), and the store fills them unseen.
	CredentialAndCount(ctx context.Context, hash, project string, lineage []string, windowStart int64, count []RateCounter, reads Prefetched) (*CredentialState, []bool, []int64, error)
	// CreateAPIKey stores key (without its raw value) and its credential under hash.
	// An existing credential with the same hash is left as it is (bootstrap is idempotent).
	CreateAPIKey(ctx context.Context, projectID string, key APIKey, hash string) error
}

// Auth turns a bearer credential into a Principal.
type Auth struct {
	store KeyStore
	clock Clock
	seen  *lru.Cache[string, *credentialIdentity] // by credential hash (Admit)
	// AdminToken guards project management (AGENTSTATE_ADMIN_TOKEN); empty = disabled.
	AdminToken string
}

// NewAuth builds the authenticator.
func NewAuth(store KeyStore, clock Clock) *Auth {
	seen, _ := lru.New[string, *credentialIdentity](maxSeenCredentials) // errs only for size <= 0
	return &Auth{store: store, clock: clock, seen: seen}
}

// ValidCredentialFormat reports whether raw looks like an API key or capability token:
// ^as_(live|cap)_[A-Za-z0-9]{40}$, checked without a regexp (it runs on every request).
func ValidCredentialFormat(raw string) bool {
	return ValidAPIKeyFormat(raw) || (strings.HasPrefix(raw, CapabilityTokenPrefix) && base62Secret(raw[len(CapabilityTokenPrefix):]))
}

// ValidAPIKeyFormat reports whether raw is "as_live_" + 40 base62 characters.
func ValidAPIKeyFormat(raw string) bool {
	return strings.HasPrefix(raw, APIKeyPrefix) && base62Secret(raw[len(APIKeyPrefix):])
}

// base62Secret reports whether s is a credential's secret: credentialSecretLen letters or digits.
func base62Secret(s string) bool {
	if len(s) != credentialSecretLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return true
}

// NewAPIKeySecret returns a fresh raw API key.
func NewAPIKeySecret() string { return APIKeyPrefix + RandomBase62(credentialSecretLen) }

// lastUsedResolution is how stale last_used_at may be.
const lastUsedResolution = time.Minute

var errUnauthorized = E("core.Auth.Authenticate", CodeUnauthorized, MsgUnauthorized)

// errNoSession refuses a write whose admission found its legacy MCP session unknown
// (AdmissionNoSession): the face answers as for an unknown session instead.
var errNoSession = E("core.Auth.Admit", CodeNotFound, MsgMCPSessionUnknown)

// Authenticate resolves raw to a principal for a face that is no OAuth resource (REST, stdio):
// an audience-bound credential is refused there.
func (a *Auth) Authenticate(ctx context.Context, raw string) (Principal, error) {
	return a.AuthenticateFor(ctx, raw, "")
}

// AuthenticateFor resolves raw to a principal on the resource named (its canonical URI, ""
// for none). There is no cache: a revoke takes effect on the very next request (v1's defect
// D5 is not copied). A credential with an audience is accepted only by that resource, so an
// access token issued for one server's /api/mcp cannot be replayed at another or at REST;
// credentials without one are accepted everywhere their kind is.
func (a *Auth) AuthenticateFor(ctx context.Context, raw, resource string) (Principal, error) {
	if !ValidCredentialFormat(raw) {
		return Principal{}, errUnauthorized
	}
	hash := SHA256Hex([]byte(raw))
	cred, err := a.store.Credential(ctx, hash)
	if err != nil {
		return Principal{}, Internal("core.Auth.Authenticate", err)
	}
	var revoked []bool
	if cred != nil && cred.Kind == KindCapabilityToken {
		// A token dies with any ancestor and with the key that minted its chain: one membership
		// check for the whole lineage, no cache.
		if revoked, err = a.store.RevokedAmong(ctx, cred.ProjectID, cred.Lineage()); err != nil {
			return Principal{}, Internal("core.Auth.Authenticate", err)
		}
	}
	return a.principal(ctx, hash, cred, revoked, resource)
}

// Admit authenticates raw on resource (as AuthenticateFor) and charges the request to its rate
// budget (l may be nil or off); keysOnly refuses capability tokens. A credential this replica has admitted before costs one
// round trip: its identity (project, id, lineage, scopes: everything but its revocation) never
// changes once issued, so the credential read, the revocation check and the counters go out
// together (AuthStore.CredentialAndCount). Nothing mutable is remembered: a revoke still takes
// effect on the very next request.
// That round trip also carries want's reads in the remembered project (Prefetch), for the
// request once it is admitted; an operation that GuardsAdmission makes none: its principal
// comes back with the admission deferred to its write (admission.go), no round trip here.
func (a *Auth) Admit(ctx context.Context, raw, resource string, l *RateLimiter, keysOnly bool, want Prefetch) (Principal, RateStatus, error) {
	const op = "core.Auth.Admit"
	if !ValidCredentialFormat(raw) {
		return Principal{}, RateStatus{}, errUnauthorized
	}
	hash := SHA256Hex([]byte(raw))
	id, seen := a.seen.Get(hash)
	if !seen {
		p, err := a.AuthenticateFor(ctx, raw, resource)
		if err == nil && keysOnly && p.Kind != KindAPIKey {
			err = errUnauthorized
		}
		if err != nil {
			return Principal{}, RateStatus{}, err
		}
		st, err := l.Allow(ctx, p)
		return p, st, err
	}
	if want.GuardsAdmission {
		if p, ok := a.deferred(id, raw, resource, l, keysOnly, want); ok {
			return p, RateStatus{}, nil
		}
	}
	known := id.principal
	if keysOnly && known.Kind != KindAPIKey {
		return Principal{}, RateStatus{}, errUnauthorized
	}
	var lineage []string
	if known.Kind == KindCapabilityToken {
		lineage = id.lineage
	}
	reads := want.reads(known)
	now, window, count := l.charge(known.CredentialID, known.MintedBy)
	cs, revoked, counts, err := a.store.CredentialAndCount(ctx, hash, known.ProjectID, lineage, window, count, reads)
	if err != nil {
		l.failed(window, count)
		return Principal{}, RateStatus{}, Internal(op, err)
	}
	if cs != nil && (cs.ID != known.CredentialID || cs.ProjectID != known.ProjectID) {
		// The raw credential was issued again (its project deleted and re-bootstrapped with the
		// same key): what was sent with it named the old one. Start over without the hint. (An
		// id is a nanoid made once: the same id in the same project is the same credential, with
		// the same lineage.)
		a.seen.Remove(hash)
		return a.Admit(ctx, raw, resource, l, keysOnly, want)
	}
	p, err := a.remembered(ctx, id, cs, revoked, resource)
	if err != nil {
		return Principal{}, RateStatus{}, err
	}
	st, err := l.verdict(now, counts)
	if err == nil {
		// Admitted: valid, live, this project; the scope and resource checks are the reader's own.
		p.prefetched = reads
	}
	return p, st, err
}

// CredentialState is what can change of a credential once it is issued, read on every request of
// one this replica remembers (the rest is in its credentialIdentity).
type CredentialState struct {
	ID, ProjectID         string // to tell a raw key issued again from the one remembered
	RevokedAt, LastUsedAt int64
}

// credentialIdentity is what never changes about a credential once it is issued: the
// principal it authenticates as and its lineage. lastUsed is this replica's last record of a
// use (last_used_at), so that a deferred admission, which reads no credential, still keeps
// last_used_at to the minute.
type credentialIdentity struct {
	principal Principal
	hash      string
	lineage   []string
	lastUsed  atomic.Int64
}

// maxSeenCredentials bounds the identities Auth remembers (a few hundred bytes each).
const maxSeenCredentials = 100_000

// principal checks a credential read for hash (nil: none), its lineage's revocation flags and
// its audience against resource, and returns its principal, remembering its identity for Admit.
func (a *Auth) principal(ctx context.Context, hash string, cred *Credential, revoked []bool, resource string) (Principal, error) {
	// The store finds the credential by hash; comparing the full stored hash in constant time
	// keeps the decision independent of how the store matched.
	if cred == nil || subtle.ConstantTimeCompare([]byte(cred.Hash), []byte(hash)) != 1 {
		return Principal{}, errUnauthorized
	}
	now := NowMs(a.clock)
	if cred.RevokedAt != 0 || (cred.ExpiresAt != 0 && cred.ExpiresAt <= now) || slices.Contains(revoked, true) ||
		(cred.Audience != "" && cred.Audience != resource) {
		return Principal{}, errUnauthorized
	}
	// last_used_at is kept to the minute: one extra write per credential per minute, not per request.
	lastUsed := cred.LastUsedAt
	if now-lastUsed >= lastUsedResolution.Milliseconds() {
		if err := a.store.TouchCredential(ctx, *cred, now); err != nil {
			return Principal{}, Internal("core.Auth.Authenticate", err)
		}
		lastUsed = now
	}
	scopes := cred.Scopes
	if scopes == nil {
		scopes = []string{"*"}
	}
	p := Principal{
		ProjectID: cred.ProjectID, CredentialID: cred.ID, Kind: cred.Kind,
		Scopes: scopes, AgentID: cred.AgentID, Resources: cred.Resources,
		Ancestors: cred.Ancestors, Depth: len(cred.Ancestors), MaxDepth: cred.MaxDepth, ExpiresAt: cred.ExpiresAt,
		MintedBy: cred.MintedBy, Audience: cred.Audience,
	}
	id := &credentialIdentity{principal: p, hash: hash, lineage: cred.Lineage()}
	id.lastUsed.Store(lastUsed)
	a.seen.Add(hash, id)
	return p, nil
}

// remembered is principal for a credential this replica remembers (id), from what can have
// changed of it (cs; nil: gone) and its lineage's revocation flags: the same refusals, and the
// remembered principal.
func (a *Auth) remembered(ctx context.Context, id *credentialIdentity, cs *CredentialState, revoked []bool, resource string) (Principal, error) {
	p := id.principal
	now := NowMs(a.clock)
	if cs == nil || cs.RevokedAt != 0 || (p.ExpiresAt != 0 && p.ExpiresAt <= now) || slices.Contains(revoked, true) ||
		(p.Audience != "" && p.Audience != resource) {
		return Principal{}, errUnauthorized
	}
	if now-cs.LastUsedAt >= lastUsedResolution.Milliseconds() {
		if err := a.store.TouchCredential(ctx, id.credential(), now); err != nil {
			return Principal{}, Internal("core.Auth.Authenticate", err)
		}
		id.lastUsed.Store(now)
	}
	return p, nil
}

// credential is what TouchCredential needs of id's credential.
func (id *credentialIdentity) credential() Credential {
	p := id.principal
	return Credential{ID: p.CredentialID, Hash: id.hash, ProjectID: p.ProjectID, Kind: p.Kind}
}

// touch stamps last_used_at for a deferred admission's use of id's credential when this
// replica has not recorded one in the last minute. The request's write is done by then, so a
// failed stamp fails nothing: the next request tries again.
func (a *Auth) touch(ctx context.Context, id *credentialIdentity) {
	now := NowMs(a.clock)
	last := id.lastUsed.Load()
	if now-last < lastUsedResolution.Milliseconds() || !id.lastUsed.CompareAndSwap(last, now) {
		return
	}
	if err := a.store.TouchCredential(ctx, id.credential(), now); err != nil {
		id.lastUsed.CompareAndSwap(now, last)
	}
}

// Lineage is every credential whose revocation revokes this one: the minting key (tokens
// minted before keys were recorded have none), the ancestor tokens, and itself.
func (c Credential) Lineage() []string {
	out := make([]string, 0, len(c.Ancestors)+2)
	if c.MintedBy != "" {
		out = append(out, c.MintedBy)
	}
	return append(append(out, c.Ancestors...), c.ID)
}

// CreateProjectWithKey creates a project and its first full-access key. With rawKey empty a
// new key is generated. It is idempotent for a given (project id, raw key).
func (a *Auth) CreateProjectWithKey(ctx context.Context, p Project, rawKey string) (APIKey, error) {
	const op = "core.Auth.CreateProjectWithKey"
	// The id goes inside Redis hash tags ({id}); braces or colons would break the isolation.
	if !projectIDRe.MatchString(p.ID) {
		return APIKey{}, E(op, CodeBadRequest, "Project id must be 1..64 letters, digits, _ or -")
	}
	if rawKey == "" {
		rawKey = NewAPIKeySecret()
	}
	if !ValidAPIKeyFormat(rawKey) {
		return APIKey{}, E(op, CodeBadRequest, "API key must be as_live_ followed by 40 letters or digits")
	}
	now := NowMs(a.clock)
	if p.CreatedAt == 0 {
		p.CreatedAt = now
	}
	if _, err := a.store.CreateProject(ctx, p); err != nil {
		return APIKey{}, Internal(op, err)
	}
	key := APIKey{
		ID: NewID(), Name: "Default", KeyPrefix: rawKey[:keyPrefixLen], CreatedAt: now,
	}
	if err := a.store.CreateAPIKey(ctx, p.ID, key, SHA256Hex([]byte(rawKey))); err != nil {
		return APIKey{}, Internal(op, err)
	}
	key.Key = rawKey
	return key, nil
}

// StoreIsEmpty reports whether no project exists yet.
func (a *Auth) StoreIsEmpty(ctx context.Context) (bool, error) {
	n, err := a.store.CountProjects(ctx)
	if err != nil {
		return false, Internal("core.Auth.StoreIsEmpty", err)
	}
	return n == 0, nil
}

// MarshalScopes encodes scopes for storage: nil (full access) as "".
func MarshalScopes(scopes []string) string {
	if scopes == nil {
		return ""
	}
	b, _ := json.Marshal(scopes)
	return string(b)
}

// UnmarshalScopes is MarshalScopes' inverse.
func UnmarshalScopes(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	err := json.Unmarshal([]byte(s), &out)
	return out, err
}
