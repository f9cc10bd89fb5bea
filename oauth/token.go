package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/agentstate/agentstate-go/core"
)

// TokenResponse is RFC 6749 §5.1's answer.
type TokenResponse struct {
	AccessToken  string `json:"access_token" jsonschema_description:"An as_cap_ capability token bound to <origin>/api/mcp."`
	TokenType    string `json:"token_type" jsonschema_description:"Bearer."`
	ExpiresIn    int64  `json:"expires_in" jsonschema_description:"Seconds (3600, or less when the grant ends sooner)."`
	RefreshToken string `json:"refresh_token,omitempty" jsonschema_description:"One-time: each refresh returns a new one; presenting a used one revokes the grant."`
	Scope        string `json:"scope"`
}

// TokenRequest documents the form fields of POST /api/oauth/token.
type TokenRequest struct {
	GrantType    string `json:"grant_type" jsonschema:"enum=authorization_code,enum=refresh_token,enum=client_credentials"`
	Code         string `json:"code,omitempty" jsonschema_description:"authorization_code: the code from the redirect."`
	RedirectURI  string `json:"redirect_uri,omitempty" jsonschema_description:"authorization_code: the redirect_uri of the authorization request."`
	CodeVerifier string `json:"code_verifier,omitempty" jsonschema_description:"authorization_code: the PKCE verifier (S256)."`
	RefreshToken string `json:"refresh_token,omitempty" jsonschema_description:"refresh_token: the latest refresh token."`
	Resource     string `json:"resource,omitempty" jsonschema_description:"RFC 8707: <origin>/api/mcp, the only resource served."`
	Scope        string `json:"scope,omitempty" jsonschema_description:"refresh_token and client_credentials: narrow the scopes."`
	ClientID     string `json:"client_id,omitempty" jsonschema_description:"The client (or Basic authentication)."`
	ClientSecret string `json:"client_secret,omitempty" jsonschema_description:"client_secret_post clients."`
}

// RevokeRequest documents the form fields of POST /api/oauth/revoke (RFC 7009).
type RevokeRequest struct {
	Token         string `json:"token" jsonschema_description:"An access token (revokes it) or a refresh token (revokes the whole grant)."`
	TokenTypeHint string `json:"token_type_hint,omitempty" jsonschema:"enum=access_token,enum=refresh_token"`
	ClientID      string `json:"client_id,omitempty"`
	ClientSecret  string `json:"client_secret,omitempty"`
}

// Token serves POST /api/oauth/token.
func (s *Service) Token(w http.ResponseWriter, r *http.Request) {
	resp, err := s.token(r)
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Service) token(r *http.Request) (*TokenResponse, error) {
	ctx := r.Context()
	if err := s.limitIP(ctx, r, "token", s.TokenPerMinute, time.Minute); err != nil {
		return nil, err
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("The body must be application/x-www-form-urlencoded")
	}
	c, err := s.authenticateClient(ctx, r)
	if err != nil {
		return nil, err
	}
	f := r.PostForm
	grant := f.Get("grant_type")
	if !slices.Contains(c.GrantTypes, grant) {
		if grant != grantAuthorizationCode && grant != grantRefreshToken && grant != grantClientCredentials {
			return nil, fail(http.StatusBadRequest, "unsupported_grant_type", core.MsgOAuthGrantType)
		}
		return nil, fail(http.StatusBadRequest, "unauthorized_client", core.MsgOAuthGrantNotAllowed)
	}
	if res := f.Get("resource"); res != "" && res != s.resource(r) {
		return nil, fail(http.StatusBadRequest, "invalid_target", core.MsgOAuthResourceMismatch)
	}
	switch grant {
	case grantAuthorizationCode:
		return s.exchangeCode(ctx, r, c)
	case grantRefreshToken:
		return s.refresh(ctx, r, c)
	default:
		return s.clientCredentials(ctx, r, c)
	}
}

// exchangeCode is the authorization_code grant: the code is spent first (so a replay is seen
// even when this request fails), then its client, redirect URI and PKCE verifier must match.
func (s *Service) exchangeCode(ctx context.Context, r *http.Request, c *Client) (*TokenResponse, error) {
	f := r.PostForm
	raw := f.Get("code")
	project, ok := tokenProject("as_code_", raw)
	if !ok {
		return nil, invalidGrant(core.MsgOAuthCodeInvalid)
	}
	code, outcome, err := s.Store.ConsumeCode(ctx, project, core.SHA256Hex([]byte(raw)), core.NowMs(s.Clock))
	if err != nil {
		return nil, err
	}
	switch outcome {
	case Replayed:
		return nil, s.revokeFamily(ctx, project, code.Grant)
	case Exchanged:
	default:
		return nil, invalidGrant(core.MsgOAuthCodeInvalid)
	}
	if code.ClientID != c.ID {
		return nil, invalidGrant(core.MsgOAuthCodeInvalid)
	}
	if got := f.Get("redirect_uri"); (got != "" || code.RedirectGiven) && got != code.RedirectURI {
		return nil, invalidGrant(core.MsgOAuthRedirectMismatch)
	}
	if !verifierMatches(f.Get("code_verifier"), code.Challenge) {
		return nil, invalidGrant(core.MsgOAuthPKCEMismatch)
	}
	access, err := s.mintAccess(ctx, project, code.Grant, strings.Fields(code.Scope))
	if err != nil {
		return nil, err
	}
	refresh := projectToken("as_rt_", project)
	if err := s.Store.PutRefresh(ctx, project, core.SHA256Hex([]byte(refresh)), Refresh{Grant: code.Grant, ClientID: c.ID,
		Resource: code.Resource, Scope: code.Scope, ExpiresAt: s.Clock.Now().Add(RefreshTTL).UnixMilli()}, RefreshTTL); err != nil {
		return nil, err
	}
	access.RefreshToken = refresh
	return access, nil
}

// verifierMatches is PKCE S256 (RFC 7636 §4.6): BASE64URL(SHA256(verifier)) == challenge.
func verifierMatches(verifier, challenge string) bool {
	if !pkceRe.MatchString(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// refresh is the refresh_token grant with rotation: the presented token is spent and its
// successor stored in one step; a spent token presented again revokes the family.
func (s *Service) refresh(ctx context.Context, r *http.Request, c *Client) (*TokenResponse, error) {
	f := r.PostForm
	raw := f.Get("refresh_token")
	project, ok := tokenProject("as_rt_", raw)
	if !ok {
		return nil, invalidGrant(core.MsgOAuthRefreshInvalid)
	}
	next := projectToken("as_rt_", project)
	now := s.Clock.Now()
	rec, outcome, err := s.Store.RotateRefresh(ctx, project, core.SHA256Hex([]byte(raw)), c.ID, core.SHA256Hex([]byte(next)),
		now.Add(RefreshTTL).UnixMilli(), RefreshTTL, now.UnixMilli())
	if err != nil {
		return nil, err
	}
	switch outcome {
	case Replayed:
		return nil, s.revokeFamily(ctx, project, rec.Grant)
	case Exchanged:
	default:
		return nil, invalidGrant(core.MsgOAuthRefreshInvalid)
	}
	scopes, err := narrowScope(f.Get("scope"), rec.Scope)
	if err != nil {
		return nil, err
	}
	access, err := s.mintAccess(ctx, project, rec.Grant, scopes)
	if err != nil {
		return nil, err
	}
	access.RefreshToken = next
	return access, nil
}

// clientCredentials issues an access token from a machine client's grant (no refresh token:
// the client can always ask again).
func (s *Service) clientCredentials(ctx context.Context, r *http.Request, c *Client) (*TokenResponse, error) {
	if c.Project == "" || c.Grant == "" {
		return nil, fail(http.StatusBadRequest, "unauthorized_client", core.MsgOAuthGrantNotAllowed)
	}
	scopes, err := narrowScope(r.PostForm.Get("scope"), c.Scope)
	if err != nil {
		return nil, err
	}
	return s.mintAccess(ctx, c.Project, c.Grant, scopes)
}

// narrowScope is the scope of a refresh or client_credentials request: at most what was granted.
func narrowScope(requested, granted string) ([]string, error) {
	have := strings.Fields(granted)
	if requested == "" {
		return have, nil
	}
	want, oe := parseScope(requested)
	if oe != nil {
		return nil, oe
	}
	for _, sc := range want {
		if !slices.Contains(have, sc) {
			return nil, fail(http.StatusBadRequest, "invalid_scope", core.MsgOAuthScopeWider)
		}
	}
	return want, nil
}

// mintAccess mints a 1 h access token as a child of the grant, through the capability-token
// rules: scopes within the grant's, its resources, agent and audience inherited, expiry never
// past the grant's. A revoked or expired grant (or approving key) is invalid_grant.
func (s *Service) mintAccess(ctx context.Context, project, grantID string, scopes []string) (*TokenResponse, error) {
	g, err := s.Keys.TokenPrincipal(ctx, project, grantID)
	if core.IsCode(err, core.CodeUnauthorized) {
		return nil, invalidGrant(core.MsgOAuthRefreshInvalid)
	}
	if err != nil {
		return nil, err
	}
	now := s.Clock.Now()
	exp := now.Add(AccessTokenTTL).UnixMilli()
	if g.ExpiresAt != 0 && g.ExpiresAt < exp {
		exp = g.ExpiresAt
	}
	t, err := s.Keys.MintToken(ctx, g, core.MintTokenRequest{Name: "OAuth access token", Scopes: scopes, ExpiresAt: &exp})
	if core.IsCode(err, core.CodeForbidden) {
		return nil, fail(http.StatusBadRequest, "invalid_scope", core.ErrorOf(err).Message)
	}
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: t.Token, TokenType: "Bearer", ExpiresIn: (exp - now.UnixMilli()) / 1000,
		Scope: strings.Join(t.Scopes, " ")}, nil
}

// revokeFamily finishes what the store's replay detection began (the grant is already in the
// revoked set): stamp the grant record, then refuse.
func (s *Service) revokeFamily(ctx context.Context, project, grant string) error {
	if err := s.Keys.RevokeOnServerAuthority(ctx, project, grant); err != nil {
		return err
	}
	return invalidGrant(core.MsgOAuthReplay)
}

// Revoke serves POST /api/oauth/revoke (RFC 7009). A refresh token takes its whole grant with
// it (§2.1: the access tokens of the same grant too); an access token is revoked alone. An
// unknown or another client's token is answered 200 all the same, so nothing is revealed.
func (s *Service) Revoke(w http.ResponseWriter, r *http.Request) {
	if err := s.revoke(r); err != nil {
		writeFailure(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Service) revoke(r *http.Request) error {
	ctx := r.Context()
	if err := s.limitIP(ctx, r, "token", s.TokenPerMinute, time.Minute); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return invalidRequest("The body must be application/x-www-form-urlencoded")
	}
	c, err := s.authenticateClient(ctx, r)
	if err != nil {
		return err
	}
	raw := r.PostForm.Get("token")
	if project, ok := tokenProject("as_rt_", raw); ok {
		rec, err := s.Store.RefreshRecord(ctx, project, core.SHA256Hex([]byte(raw)))
		if err != nil || rec == nil || rec.ClientID != c.ID {
			return err
		}
		return s.Keys.RevokeOnServerAuthority(ctx, project, rec.Grant)
	}
	if strings.HasPrefix(raw, core.CapabilityTokenPrefix) {
		p, err := s.Auth.AuthenticateFor(ctx, raw, s.resource(r))
		if err != nil {
			if core.IsCode(err, core.CodeUnauthorized) {
				return nil
			}
			return err
		}
		return s.Keys.RevokeOnServerAuthority(ctx, p.ProjectID, p.CredentialID)
	}
	return nil
}
