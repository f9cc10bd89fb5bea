package oauth

import (
	"context"
	"time"
)

// Client is a registered OAuth client (RFC 7591). Clients are not a project's: a host registers
// before anyone has said which project it may use. A confidential client registered with a
// project key (client credentials) is bound to that project and to a grant minted by the key.
type Client struct {
	ID                      string   `json:"client_id"`
	SecretHash              string   `json:"secret_hash,omitempty"` // SHA-256 hex; "" for public clients
	Name                    string   `json:"client_name,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope,omitempty"`
	CreatedAt               int64    `json:"client_id_issued_at"`
	// Client-credentials clients only: the project and the grant their tokens descend from.
	Project string `json:"project,omitempty"`
	Grant   string `json:"grant,omitempty"`
}

// Code is what an authorization code stands for until it is exchanged (at most once).
type Code struct {
	Grant       string // the capability token the consent minted; access tokens descend from it
	ClientID    string
	RedirectURI string
	// RedirectGiven: the authorization request named redirect_uri (rather than relying on the
	// client's only one), so the token request must repeat it (OAuth 2.1 §4.1.3).
	RedirectGiven bool
	Challenge     string // PKCE S256 code_challenge
	Resource      string // the audience the tokens are bound to
	Scope         string
	ExpiresAt     int64
}

// Refresh is a refresh token's record. Every refresh token of one consent shares its grant:
// the grant is the family that a replayed token revokes.
type Refresh struct {
	Grant     string
	ClientID  string
	Resource  string
	Scope     string
	ExpiresAt int64
}

// Outcome says how a one-time exchange (a code, a refresh token) went.
type Outcome int

const (
	// Exchanged: first use; the record is now spent.
	Exchanged Outcome = iota
	// Unknown: no such record (never issued, expired from the store, or another client's).
	Unknown
	// Expired: the record exists but its lifetime is over.
	Expired
	// Replayed: the record was already spent; the store has revoked its grant in the same step.
	Replayed
	// GrantRevoked: the family was revoked earlier.
	GrantRevoked
)

// Store keeps clients, codes and refresh tokens. Codes and refresh tokens live in the project
// that approved them (their raw values name it), so their one-time use and the family's
// revocation are one atomic step in the project's slot.
type Store interface {
	PutOAuthClient(ctx context.Context, c Client) error
	// OAuthClient returns the client or nil.
	OAuthClient(ctx context.Context, id string) (*Client, error)
	PutCode(ctx context.Context, project, hash string, c Code, ttl time.Duration) error
	// ConsumeCode spends the code; a second presentation revokes its grant (Replayed).
	ConsumeCode(ctx context.Context, project, hash string, now int64) (*Code, Outcome, error)
	PutRefresh(ctx context.Context, project, hash string, r Refresh, ttl time.Duration) error
	// RotateRefresh spends the refresh token oldHash presented by clientID and stores next
	// under newHash, atomically; a spent token presented again revokes the family (Replayed).
	RotateRefresh(ctx context.Context, project, oldHash, clientID, newHash string, nextExpiresAt int64, ttl time.Duration, now int64) (*Refresh, Outcome, error)
	// RefreshRecord reads a refresh token's record (revocation), nil when unknown.
	RefreshRecord(ctx context.Context, project, hash string) (*Refresh, error)
	// CountIP counts one request from ip in bucket's fixed window starting at windowStart.
	CountIP(ctx context.Context, bucket, ip string, windowStart int64, window time.Duration) (int64, error)
}
