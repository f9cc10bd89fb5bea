package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/webhooks"
)

// Grant types and client authentication methods served.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"

	authNone        = "none"
	authSecretPost  = "client_secret_post"
	authSecretBasic = "client_secret_basic"
)

// Bounds of what a registration or a metadata document may hold.
const (
	maxRedirectURIs   = 10
	maxClientNameLen  = 255
	maxClientDocBytes = 64 << 10
	cimdFetchTimeout  = 5 * time.Second
)

// RegisterRequest is RFC 7591's client metadata, the part this server uses.
type RegisterRequest struct {
	RedirectURIs            []string `json:"redirect_uris,omitempty" jsonschema:"maxItems=10" jsonschema_description:"Where the authorization response may go: https, http on a loopback address (any port), or a private-use scheme."`
	ClientName              string   `json:"client_name,omitempty" jsonschema:"maxLength=255" jsonschema_description:"Shown on the consent page."`
	GrantTypes              []string `json:"grant_types,omitempty" jsonschema_description:"authorization_code and refresh_token (default), or client_credentials (needs Authorization: Bearer <API key>)."`
	ResponseTypes           []string `json:"response_types,omitempty" jsonschema_description:"code."`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty" jsonschema_description:"none (public client), client_secret_post or client_secret_basic (default, RFC 7591)."`
	Scope                   string   `json:"scope,omitempty" jsonschema_description:"Space-separated capability scopes; for client_credentials the grant's scopes, within the registering key's."`
	// Client-credentials registrations only: narrow the grant like a capability token.
	Resources []string `json:"resources,omitempty" jsonschema_description:"client_credentials: state-key patterns the client's tokens are limited to."`
	AgentID   string   `json:"agent_id,omitempty" jsonschema_description:"client_credentials: bind the client's tokens to this agent."`
}

// RegisterResponse is RFC 7591 §3.2.1's answer.
type RegisterResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty" jsonschema_description:"Shown once; absent for public clients."`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at" jsonschema_description:"Unix seconds."`
	ClientSecretExpiresAt   int64    `json:"client_secret_expires_at" jsonschema_description:"0: the secret does not expire."`
	ClientName              string   `json:"client_name,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope,omitempty"`
}

// Register serves POST /api/oauth/register (RFC 7591). A client_credentials client must be
// registered with a project API key as the initial access token (RFC 7591 §3): the key mints
// its grant there and then, never wider than itself.
func (s *Service) Register(w http.ResponseWriter, r *http.Request) {
	resp, err := s.register(r)
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Service) register(r *http.Request) (*RegisterResponse, error) {
	ctx := r.Context()
	if err := s.limitIP(ctx, r, "register", s.RegisterPerHour, time.Hour); err != nil {
		return nil, err
	}
	var in RegisterRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxClientDocBytes+1))
	if err != nil || len(body) > maxClientDocBytes || json.Unmarshal(body, &in) != nil {
		return nil, fail(http.StatusBadRequest, "invalid_client_metadata", "The body must be a JSON object of client metadata")
	}
	if len([]rune(in.ClientName)) > maxClientNameLen {
		return nil, fail(http.StatusBadRequest, "invalid_client_metadata", "client_name is longer than 255 characters")
	}
	grants := in.GrantTypes
	if len(grants) == 0 {
		grants = []string{grantAuthorizationCode, grantRefreshToken}
	}
	for _, g := range grants {
		if g != grantAuthorizationCode && g != grantRefreshToken && g != grantClientCredentials {
			return nil, fail(http.StatusBadRequest, "invalid_client_metadata", core.MsgOAuthGrantType+": "+g)
		}
	}
	machine := slices.Contains(grants, grantClientCredentials)
	if machine && len(grants) != 1 {
		return nil, fail(http.StatusBadRequest, "invalid_client_metadata", "client_credentials cannot be combined with other grant types")
	}
	for _, rt := range in.ResponseTypes {
		if rt != "code" {
			return nil, fail(http.StatusBadRequest, "invalid_client_metadata", core.MsgOAuthResponseType)
		}
	}
	method := in.TokenEndpointAuthMethod
	if method == "" {
		method = authSecretBasic
	}
	if method != authNone && method != authSecretPost && method != authSecretBasic {
		return nil, fail(http.StatusBadRequest, "invalid_client_metadata", "token_endpoint_auth_method must be none, client_secret_post or client_secret_basic")
	}
	now := s.Clock.Now()
	c := Client{ID: "mcp_" + core.RandomBase62(24), Name: in.ClientName, GrantTypes: grants,
		TokenEndpointAuthMethod: method, CreatedAt: now.Unix()}
	if machine {
		if method == authNone {
			return nil, fail(http.StatusBadRequest, "invalid_client_metadata", "A client_credentials client must be confidential")
		}
		if err := s.bindMachineClient(ctx, r, &c, in); err != nil {
			return nil, err
		}
	} else {
		if len(in.RedirectURIs) == 0 || len(in.RedirectURIs) > maxRedirectURIs {
			return nil, fail(http.StatusBadRequest, "invalid_redirect_uri", "redirect_uris must hold 1..10 URIs")
		}
		for _, u := range in.RedirectURIs {
			if !validRedirectURI(u) {
				return nil, fail(http.StatusBadRequest, "invalid_redirect_uri", core.MsgOAuthRedirectURIs)
			}
		}
		c.RedirectURIs = in.RedirectURIs
		if in.Scope != "" {
			if _, err := parseScope(in.Scope); err != nil {
				return nil, fail(http.StatusBadRequest, "invalid_client_metadata", err.Description)
			}
			c.Scope = in.Scope
		}
	}
	var secret string
	if method != authNone {
		secret = "ascs_" + core.RandomBase62(40)
		c.SecretHash = core.SHA256Hex([]byte(secret))
	}
	if err := s.Store.PutOAuthClient(ctx, c); err != nil {
		return nil, err
	}
	return &RegisterResponse{ClientID: c.ID, ClientSecret: secret, ClientIDIssuedAt: c.CreatedAt, ClientName: c.Name,
		RedirectURIs: nonNil(c.RedirectURIs), GrantTypes: c.GrantTypes, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: method, Scope: c.Scope}, nil
}

// bindMachineClient mints a client_credentials client's grant with the registering API key.
func (s *Service) bindMachineClient(ctx context.Context, r *http.Request, c *Client, in RegisterRequest) error {
	p, err := s.Auth.Authenticate(ctx, bearer(r))
	if err != nil || p.Kind != core.KindAPIKey {
		return fail(http.StatusUnauthorized, "invalid_token", core.MsgOAuthCredentialsNeedKey)
	}
	scopes, oe := parseScope(in.Scope)
	if oe != nil {
		return fail(http.StatusBadRequest, "invalid_client_metadata", oe.Description)
	}
	depth := 1
	grant, err := s.Keys.MintBound(ctx, p, core.MintTokenRequest{Name: grantName(in.ClientName), Scopes: scopes,
		Resources: in.Resources, AgentID: in.AgentID, MaxDepth: &depth}, s.resource(r))
	if err != nil {
		ce := core.ErrorOf(err)
		if ce.Code == core.CodeForbidden || ce.Code == core.CodeBadRequest {
			return fail(http.StatusBadRequest, "invalid_client_metadata", ce.Message)
		}
		return err
	}
	c.Project, c.Grant, c.Scope = p.ProjectID, grant.ID, strings.Join(grant.Scopes, " ")
	return nil
}

func grantName(client string) string {
	if client == "" {
		client = "client"
	}
	return truncate("OAuth: "+client, core.MaxCredentialNameLen)
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// validRedirectURI admits what RFC 8252 and OAuth 2.1 allow: https, http on a loopback address
// (a native app's local listener), or a private-use scheme such as com.example.app:/cb;
// never a fragment, never userinfo.
func validRedirectURI(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return u.Host != ""
	case "http":
		return isLoopbackHost(u.Hostname())
	case "javascript", "data", "file", "vbscript", "blob":
		return false
	}
	// A private-use scheme: reverse-domain style, with a dot (RFC 8252 §7.1).
	return strings.Contains(u.Scheme, ".")
}

func isLoopbackHost(h string) bool { return h == "127.0.0.1" || h == "::1" || h == "localhost" }

// redirectMatches is exact string matching (OAuth 2.1 §2.3.1), except that for an http
// loopback redirect URI the port may differ (RFC 8252 §7.3): native apps listen on whatever
// port the OS gives them.
func redirectMatches(registered []string, presented string) bool {
	if slices.Contains(registered, presented) {
		return true
	}
	p, err := url.Parse(presented)
	if err != nil || p.Scheme != "http" || !isLoopbackHost(p.Hostname()) {
		return false
	}
	for _, reg := range registered {
		q, err := url.Parse(reg)
		if err != nil || q.Scheme != "http" || !isLoopbackHost(q.Hostname()) {
			continue
		}
		if q.Hostname() == p.Hostname() && q.EscapedPath() == p.EscapedPath() && q.RawQuery == p.RawQuery &&
			p.User == nil && p.Fragment == "" {
			return true
		}
	}
	return false
}

// isMetadataURL tells a Client ID Metadata Document's URL from a registered client id.
func isMetadataURL(clientID string) bool { return strings.HasPrefix(clientID, "https://") }

// lookupClient finds a client for the authorization endpoint: a registered one, or the
// metadata document its https client_id names, fetched through the SSRF guard.
func (s *Service) lookupClient(ctx context.Context, clientID string) (*Client, *oauthError) {
	if clientID == "" {
		return nil, invalidRequest(core.MsgOAuthUnknownClient)
	}
	if isMetadataURL(clientID) {
		return s.fetchClientMetadata(ctx, clientID)
	}
	c, err := s.Store.OAuthClient(ctx, clientID)
	if err != nil {
		return nil, fail(http.StatusServiceUnavailable, "temporarily_unavailable", core.MsgStoreUnavailable)
	}
	if c == nil || c.Project != "" { // a client_credentials client has no authorization step
		return nil, invalidRequest(core.MsgOAuthUnknownClient)
	}
	return c, nil
}

// fetchClientMetadata reads a Client ID Metadata Document. The URL must pass the same SSRF
// guard as webhook targets, and the client dials only public addresses (re-checked at connect
// time), follows no redirect and reads at most 64 KiB. The document must name itself as
// client_id, and such a client is public: it has no secret to present.
func (s *Service) fetchClientMetadata(ctx context.Context, clientID string) (*Client, *oauthError) {
	u, err := url.Parse(clientID)
	if err != nil || u.Fragment != "" || u.User != nil || u.Path == "" || u.Path == "/" || !webhooks.SafeOutboundURL(clientID, s.AllowLoopback) {
		return nil, invalidRequest(core.MsgOAuthCIMDUnsafe)
	}
	bad := invalidRequest(core.MsgOAuthCIMDFetch)
	ctx, cancel := context.WithTimeout(ctx, cimdFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil {
		return nil, bad
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.Fetch.Do(req)
	if err != nil {
		return nil, bad
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxClientDocBytes+1))
	if err != nil || resp.StatusCode != http.StatusOK || len(body) > maxClientDocBytes {
		return nil, bad
	}
	var doc struct {
		ClientID                string   `json:"client_id"`
		ClientName              string   `json:"client_name"`
		RedirectURIs            []string `json:"redirect_uris"`
		TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	}
	if json.Unmarshal(body, &doc) != nil || doc.ClientID != clientID || len(doc.RedirectURIs) == 0 || len(doc.RedirectURIs) > maxRedirectURIs {
		return nil, bad
	}
	if doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != authNone {
		return nil, bad
	}
	for _, ru := range doc.RedirectURIs {
		if !validRedirectURI(ru) {
			return nil, bad
		}
	}
	return &Client{ID: clientID, Name: truncate(doc.ClientName, maxClientNameLen), RedirectURIs: doc.RedirectURIs,
		GrantTypes: []string{grantAuthorizationCode, grantRefreshToken}, TokenEndpointAuthMethod: authNone}, nil
}

// authenticateClient checks the client authentication of a token or revocation request
// (RFC 6749 §2.3): the registered method, with the secret in the Basic header or the body.
// A metadata-document client is public; its id is all it presents.
func (s *Service) authenticateClient(ctx context.Context, r *http.Request) (*Client, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, invalidClient()
		}
		if f := r.PostForm.Get("client_id"); f != "" && f != id {
			return nil, invalidClient()
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" {
		return nil, invalidClient()
	}
	if isMetadataURL(id) {
		if secret != "" || basic {
			return nil, invalidClient()
		}
		return &Client{ID: id, TokenEndpointAuthMethod: authNone, GrantTypes: []string{grantAuthorizationCode, grantRefreshToken}}, nil
	}
	c, err := s.Store.OAuthClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, invalidClient()
	}
	switch c.TokenEndpointAuthMethod {
	case authNone:
		if secret != "" || basic {
			return nil, invalidClient()
		}
		return c, nil
	case authSecretBasic, authSecretPost:
		// Either way of sending the secret is accepted: the secret, not the header, is what
		// authenticates, and the SDKs pick the method from metadata that lists both.
		if secret == "" || subtle.ConstantTimeCompare([]byte(core.SHA256Hex([]byte(secret))), []byte(c.SecretHash)) != 1 {
			return nil, invalidClient()
		}
		return c, nil
	}
	return nil, invalidClient()
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
