// Package oauth is the OAuth 2.1 authorization server for the MCP endpoint (/api/mcp), in the
// same binary: RFC 8414 metadata (with RFC 9207 iss), client registration by RFC 7591 and by
// Client ID Metadata Documents, authorization code with PKCE S256 only, rotating refresh tokens
// with replay detection, RFC 7009 revocation, and client credentials for headless agents.
//
// It issues no token type of its own. A consent mints a grant: a capability token, minted by
// the consenting API key under the ordinary delegation rules, whose secret nobody ever sees.
// Access tokens are that grant's children (as_cap_…, 1 h), bound to the MCP resource
// (core.Credential.Audience), so scopes, resources, agent binding, expiry, delegation and
// revocation are the capability-token rules unchanged, and revoking the grant (the refresh
// token family) revokes every token issued under it.
package oauth

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentstate/agentstate-go/core"
)

// Lifetimes (compat-v1.md §17).
const (
	CodeTTL        = 10 * time.Minute
	AccessTokenTTL = time.Hour
	RefreshTTL     = 30 * 24 * time.Hour
)

// MCPPath is the protected resource's path; its canonical URI is <origin>/api/mcp.
const MCPPath = "/api/mcp"

// Service serves the authorization server's endpoints.
type Service struct {
	Store Store
	Auth  *core.Auth
	Keys  *core.Keys
	Clock core.Clock
	// PublicURL is AGENTSTATE_PUBLIC_URL: the origin clients use (behind a proxy the request's
	// Host is not it). Empty: the request's scheme and Host.
	PublicURL string
	// Fetch gets client metadata documents; it must guard the addresses it dials
	// (webhooks.NewGuardedClient). AllowLoopback lets documents be on this machine (tests, dev).
	Fetch         *http.Client
	AllowLoopback bool
	// Per-IP budgets; 0 = unlimited. The server runs with DefaultRegisterPerHour and
	// DefaultTokenPerMinute.
	RegisterPerHour int
	TokenPerMinute  int
}

// v1 limits registration like project creation, 10 per hour per IP; the token endpoint gets a
// budget that no honest client (one refresh an hour) comes near.
const (
	DefaultRegisterPerHour = 10
	DefaultTokenPerMinute  = 60
)

// New builds the service, without per-IP limits (set them for a public server).
func New(store Store, auth *core.Auth, keys *core.Keys, clock core.Clock, fetch *http.Client, allowLoopback bool) *Service {
	return &Service{Store: store, Auth: auth, Keys: keys, Clock: clock, Fetch: fetch, AllowLoopback: allowLoopback}
}

// Origin is the scheme and host clients reach the server at: publicURL when set, else what the
// request says.
func Origin(publicURL string, r *http.Request) string {
	if publicURL != "" {
		return strings.TrimRight(publicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Resource is the canonical URI of the MCP endpoint: the audience of every access token.
func Resource(publicURL string, r *http.Request) string { return Origin(publicURL, r) + MCPPath }

func (s *Service) issuer(r *http.Request) string   { return Origin(s.PublicURL, r) }
func (s *Service) resource(r *http.Request) string { return Resource(s.PublicURL, r) }

// ProtectedResource is RFC 9728's protected resource metadata.
type ProtectedResource struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`
}

// ProtectedResourceMetadata is RFC 9728's document for /api/mcp.
func ProtectedResourceMetadata(publicURL string, r *http.Request) ProtectedResource {
	return ProtectedResource{
		Resource:               Resource(publicURL, r),
		AuthorizationServers:   []string{Origin(publicURL, r)},
		ScopesSupported:        core.CapabilityScopes,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "AgentState MCP",
	}
}

// ServerMetadata is RFC 8414's authorization server metadata (with RFC 9207's iss flag).
type ServerMetadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint"`
	TokenEndpoint                          string   `json:"token_endpoint"`
	RegistrationEndpoint                   string   `json:"registration_endpoint"`
	RevocationEndpoint                     string   `json:"revocation_endpoint"`
	ResponseTypesSupported                 []string `json:"response_types_supported"`
	ResponseModesSupported                 []string `json:"response_modes_supported"`
	GrantTypesSupported                    []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported"`
	ScopesSupported                        []string `json:"scopes_supported"`
	AuthorizationResponseISSSupported      bool     `json:"authorization_response_iss_parameter_supported"`
	ClientIDMetadataDocumentSupported      bool     `json:"client_id_metadata_document_supported"`
}

// Metadata serves RFC 8414 authorization server metadata.
func (s *Service) Metadata(w http.ResponseWriter, r *http.Request) {
	iss := s.issuer(r)
	auth := []string{authNone, authSecretPost, authSecretBasic}
	writeJSON(w, http.StatusOK, ServerMetadata{
		Issuer:                                 iss,
		AuthorizationEndpoint:                  iss + "/api/oauth/authorize",
		TokenEndpoint:                          iss + "/api/oauth/token",
		RegistrationEndpoint:                   iss + "/api/oauth/register",
		RevocationEndpoint:                     iss + "/api/oauth/revoke",
		ResponseTypesSupported:                 []string{"code"},
		ResponseModesSupported:                 []string{"query"},
		GrantTypesSupported:                    []string{grantAuthorizationCode, grantRefreshToken, grantClientCredentials},
		CodeChallengeMethodsSupported:          []string{"S256"},
		TokenEndpointAuthMethodsSupported:      auth,
		RevocationEndpointAuthMethodsSupported: auth,
		ScopesSupported:                        core.CapabilityScopes,
		AuthorizationResponseISSSupported:      true,
		ClientIDMetadataDocumentSupported:      true,
	})
}

// oauthError is RFC 6749 §5.2's error body: OAuth clients parse this shape, not v1's envelope.
type oauthError struct {
	status int
	ErrorBody
	retryAfter int64
}

// ErrorBody is what an OAuth endpoint's error answers (the OpenAPI document names it too).
type ErrorBody struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func fail(status int, code, desc string) *oauthError {
	return &oauthError{status: status, ErrorBody: ErrorBody{Code: code, Description: desc}}
}

func invalidRequest(desc string) *oauthError {
	return fail(http.StatusBadRequest, "invalid_request", desc)
}
func invalidGrant(desc string) *oauthError { return fail(http.StatusBadRequest, "invalid_grant", desc) }
func invalidClient() *oauthError {
	return fail(http.StatusUnauthorized, "invalid_client", core.MsgOAuthClientAuth)
}

// writeFailure answers an endpoint's error: an *oauthError as RFC 6749 says, a core error
// (store outage, internal) as server_error / temporarily_unavailable with the right status.
func writeFailure(w http.ResponseWriter, err error) {
	oe, ok := err.(*oauthError)
	if !ok {
		ce := core.ErrorOf(err)
		oe = fail(http.StatusInternalServerError, "server_error", core.MsgInternal)
		if ce.Code == core.CodeStoreUnavailable {
			oe = fail(http.StatusServiceUnavailable, "temporarily_unavailable", core.MsgStoreUnavailable)
			oe.retryAfter = core.RetryAfterSeconds
		}
	}
	if oe.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="agentstate-oauth"`)
	}
	if oe.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(oe.retryAfter, 10))
	}
	writeJSON(w, oe.status, oe)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// RFC 6749 §5.1: responses carrying tokens or secrets must not be cached.
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// limitIP charges one request from the caller's address to bucket; over budget it is a 429.
// The address is the connection's peer: behind a proxy every client shares the proxy's budget,
// the safe direction for a limit meant to slow down registration floods.
func (s *Service) limitIP(ctx context.Context, r *http.Request, bucket string, perWindow int, window time.Duration) error {
	if perWindow <= 0 {
		return nil
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	now := s.Clock.Now()
	start := now.Truncate(window)
	n, err := s.Store.CountIP(ctx, bucket, ip, start.UnixMilli(), window)
	if err != nil {
		return err
	}
	if n <= int64(perWindow) {
		return nil
	}
	retry := max(int64((start.Add(window).Sub(now)+time.Second-1)/time.Second), 1)
	e := fail(http.StatusTooManyRequests, "rate_limited", core.MsgOAuthRateLimited+strconv.FormatInt(retry, 10)+" seconds")
	e.retryAfter = retry
	return e
}
