package oauth_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// A tiny OAuth client over net/http: every request goes to the real handler over real Redis
// (and the embedded store), with no redirect followed, so each step's answer is checked.
type client struct {
	t    *testing.T
	base string
	http *http.Client
	id   string
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(req *http.Request) (*http.Response, []byte) {
	c.t.Helper()
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp, b
}

func (c *client) postJSON(path, bearer string, body any) (*http.Response, []byte) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, c.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return c.do(req)
}

func (c *client) postForm(path string, f url.Values) (*http.Response, []byte) {
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func (c *client) get(path string) (*http.Response, []byte) {
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

const redirect = "http://127.0.0.1:33333/callback"

// register makes a public client (token_endpoint_auth_method none), as MCP hosts do.
func (c *client) register() {
	c.t.Helper()
	resp, body := c.postJSON("/api/oauth/register", "", map[string]any{"client_name": "Test host",
		"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none"})
	require.Equal(c.t, http.StatusCreated, resp.StatusCode, "%s", body)
	var out struct {
		ClientID string `json:"client_id"`
	}
	require.NoError(c.t, json.Unmarshal(body, &out))
	c.id = out.ClientID
}

type pkce struct{ verifier, challenge string }

func newPKCE() pkce {
	v := core.RandomBase62(64)
	sum := sha256.Sum256([]byte(v))
	return pkce{v, base64.RawURLEncoding.EncodeToString(sum[:])}
}

// authorizeURL is an authorization request; the redirect URI's port differs from the
// registered one on purpose (RFC 8252 §7.3).
func (c *client) authorizeURL(p pkce, scope, redirectURI string, extra ...string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {redirectURI},
		"code_challenge": {p.challenge}, "code_challenge_method": {"S256"}, "state": {"st-123"}, "scope": {scope}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "/api/oauth/authorize?" + q.Encode()
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// consent opens the consent page and submits it with key and the chosen fields.
func (c *client) consent(authURL, key string, choose url.Values) (*http.Response, []byte) {
	c.t.Helper()
	resp, page := c.get(authURL)
	require.Equal(c.t, http.StatusOK, resp.StatusCode, "%s", page)
	require.Contains(c.t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	require.Equal(c.t, "DENY", resp.Header.Get("X-Frame-Options"))
	form := url.Values{"api_key": {key}, "action": {"approve"}, "expires": {"30d"}}
	for _, m := range hiddenRe.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	for k, v := range choose {
		form[k] = v
	}
	return c.postForm("/api/oauth/authorize/decision", form)
}

// code runs the consent and returns the code from the redirect.
func (c *client) code(p pkce, key, scope string) string {
	c.t.Helper()
	resp, body := c.consent(c.authorizeURL(p, scope, "http://127.0.0.1:45678/callback"), key, url.Values{"grant_scope": strings.Fields(scope)})
	require.Equal(c.t, http.StatusSeeOther, resp.StatusCode, "%s", body)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(c.t, err)
	assert.Equal(c.t, "127.0.0.1:45678", loc.Host)
	assert.Equal(c.t, "st-123", loc.Query().Get("state"))
	assert.Equal(c.t, c.base, loc.Query().Get("iss"), "RFC 9207 iss")
	require.NotEmpty(c.t, loc.Query().Get("code"), "%s", loc)
	return loc.Query().Get("code")
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
	Error        string `json:"error"`
}

func (c *client) token(f url.Values) (int, tokens) {
	c.t.Helper()
	if c.id != "" && f.Get("client_id") == "" {
		f.Set("client_id", c.id)
	}
	resp, body := c.postForm("/api/oauth/token", f)
	var out tokens
	require.NoError(c.t, json.Unmarshal(body, &out), "%s", body)
	if resp.StatusCode == http.StatusOK {
		assert.Equal(c.t, "no-store", resp.Header.Get("Cache-Control"))
	}
	return resp.StatusCode, out
}

func (c *client) exchange(code string, p pkce) (int, tokens) {
	return c.token(url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"http://127.0.0.1:45678/callback"}, "code_verifier": {p.verifier}, "resource": {c.base + "/api/mcp"}})
}

func (c *client) refresh(rt string) (int, tokens) {
	return c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// mcp calls a tool on /api/mcp with bearer and returns the status, the body and the
// WWW-Authenticate header.
func (c *client) mcp(bearer, tool string, args map[string]any) (int, string, string) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args}})
	req, _ := http.NewRequest(http.MethodPost, c.base+"/api/mcp", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, body := c.do(req)
	return resp.StatusCode, string(body), resp.Header.Get("WWW-Authenticate")
}

// full runs register → consent → code exchange with scope, returning the tokens.
func full(t *testing.T, s *testenv.Server, scope string) (*client, tokens) {
	c := newClient(t, s.URL)
	c.register()
	p := newPKCE()
	status, tok := c.exchange(c.code(p, s.Project.Key, scope), p)
	require.Equal(t, http.StatusOK, status, "%+v", tok)
	return c, tok
}

func TestOAuthMetadata(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c := newClient(t, s.URL)
		resp, body := c.get("/.well-known/oauth-authorization-server")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var md map[string]any
		require.NoError(t, json.Unmarshal(body, &md))
		assert.Equal(t, s.URL, md["issuer"])
		assert.Equal(t, s.URL+"/api/oauth/token", md["token_endpoint"])
		assert.Equal(t, []any{"S256"}, md["code_challenge_methods_supported"])
		assert.Equal(t, true, md["authorization_response_iss_parameter_supported"])
		assert.Equal(t, true, md["client_id_metadata_document_supported"])
		for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/api/mcp"} {
			resp, body = c.get(path)
			require.Equal(t, http.StatusOK, resp.StatusCode, path)
			assert.Contains(t, string(body), `"resource":"`+s.URL+`/api/mcp"`)
			assert.Contains(t, string(body), `"authorization_servers":["`+s.URL+`"]`)
		}
		// AGENTSTATE_PUBLIC_URL: behind a proxy the request's Host is not the public origin.
		pub := testenv.NewServer(t, e, func(a *app.App) {
			a.HTTP.PublicURL = "https://mcp.example.com"
			a.OAuth.PublicURL = "https://mcp.example.com"
		})
		c = newClient(t, pub.URL)
		_, body = c.get("/.well-known/oauth-protected-resource")
		assert.Contains(t, string(body), `"resource":"https://mcp.example.com/api/mcp"`)
		_, body = c.get("/.well-known/oauth-authorization-server")
		assert.Contains(t, string(body), `"issuer":"https://mcp.example.com"`)
		status, _, www := c.mcp("", "whoami", nil)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`, www)
	})
}

// TestOAuthCodeFlow: the whole authorization-code flow, then what the access token is: a 1 h
// capability token bound to /api/mcp, refreshed with rotation.
func TestOAuthCodeFlow(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c, tok := full(t, s, "state:read state:write")
		assert.True(t, strings.HasPrefix(tok.AccessToken, core.CapabilityTokenPrefix), tok.AccessToken)
		assert.Equal(t, "Bearer", tok.TokenType)
		assert.Equal(t, int64(3600), tok.ExpiresIn)
		assert.Equal(t, "state:read state:write", tok.Scope)
		status, body, _ := c.mcp(tok.AccessToken, "upsert_state", map[string]any{"state_key": "k", "data": map[string]any{"n": 1}})
		require.Equal(t, http.StatusOK, status, body)
		assert.NotContains(t, body, `"isError":true`)
		status, body, _ = c.mcp(tok.AccessToken, "whoami", nil)
		require.Equal(t, http.StatusOK, status)
		assert.Contains(t, body, "capability_token")

		// Rotation: each refresh token works once and yields a new pair.
		status, next := c.refresh(tok.RefreshToken)
		require.Equal(t, http.StatusOK, status, "%+v", next)
		assert.NotEqual(t, tok.RefreshToken, next.RefreshToken)
		status, _, _ = c.mcp(next.AccessToken, "whoami", nil)
		assert.Equal(t, http.StatusOK, status)
		// Narrowing on refresh is allowed, widening is not.
		status, narrow := c.refresh(next.RefreshToken + "") // spends next
		require.Equal(t, http.StatusOK, status)
		status, bad := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {narrow.RefreshToken}, "scope": {"claim:write"}})
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_scope", bad.Error)
	})
}

func TestOAuthPKCE(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c := newClient(t, s.URL)
		c.register()
		t.Run("bad verifier", func(t *testing.T) {
			p := newPKCE()
			code := c.code(p, s.Project.Key, "state:read")
			status, out := c.exchange(code, newPKCE())
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", out.Error)
			// The failed attempt spent the code: the right verifier now finds it used.
			status, out = c.exchange(code, p)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", out.Error)
		})
		t.Run("missing verifier", func(t *testing.T) {
			p := newPKCE()
			code := c.code(p, s.Project.Key, "state:read")
			status, out := c.exchange(code, pkce{})
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", out.Error)
		})
		t.Run("another client's code", func(t *testing.T) {
			// Even with the verifier (say the attacker also stole it), a code buys tokens only
			// for the client it was issued to.
			p := newPKCE()
			code := c.code(p, s.Project.Key, "state:read")
			thief := newClient(t, s.URL)
			thief.register()
			status, out := thief.exchange(code, p)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", out.Error)
		})
		t.Run("plain or absent challenge refused", func(t *testing.T) {
			for _, method := range []string{"plain", ""} {
				p := newPKCE()
				resp, _ := c.get(c.authorizeURL(p, "state:read", redirect, "code_challenge_method", method))
				require.Equal(t, http.StatusSeeOther, resp.StatusCode)
				loc, _ := url.Parse(resp.Header.Get("Location"))
				assert.Equal(t, "invalid_request", loc.Query().Get("error"), method)
				assert.Equal(t, "st-123", loc.Query().Get("state"))
			}
		})
	})
}

func TestOAuthCodeReuseRevokesGrant(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c := newClient(t, s.URL)
		c.register()
		p := newPKCE()
		code := c.code(p, s.Project.Key, "state:read")
		status, tok := c.exchange(code, p)
		require.Equal(t, http.StatusOK, status)
		status, _, _ = c.mcp(tok.AccessToken, "whoami", nil)
		require.Equal(t, http.StatusOK, status)
		status, out := c.exchange(code, p)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", out.Error)
		// OAuth 2.1 §4.1.3: the tokens issued from the code are revoked too.
		status, _, _ = c.mcp(tok.AccessToken, "whoami", nil)
		assert.Equal(t, http.StatusUnauthorized, status)
		status, out = c.refresh(tok.RefreshToken)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", out.Error)
	})
}

func TestOAuthRedirectURI(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c := newClient(t, s.URL)
		c.register()
		p := newPKCE()
		for _, bad := range []string{"http://127.0.0.1:45678/other", "https://evil.example/callback", "http://127.0.0.2:33333/callback",
			"http://127.0.0.1:33333/callback?x=1"} {
			resp, body := c.get(c.authorizeURL(p, "state:read", bad))
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
			assert.Empty(t, resp.Header.Get("Location"), "an unregistered redirect URI gets nothing sent to it")
			assert.Contains(t, string(body), "redirect_uri is not one of")
		}
		// The code is bound to the redirect URI of its request.
		code := c.code(p, s.Project.Key, "state:read")
		status, out := c.token(url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {redirect}, "code_verifier": {p.verifier}})
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", out.Error)
		// Named in the authorization request, it must be repeated at the token endpoint
		// (OAuth 2.1 §4.1.3); left to the client's only registered one, it may be omitted.
		code = c.code(p, s.Project.Key, "state:read")
		status, out = c.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.verifier}})
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", out.Error)
		resp, body := c.consent(c.authorizeURL(p, "state:read", ""), s.Project.Key, url.Values{"grant_scope": {"state:read"}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s", body)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		assert.Equal(t, "127.0.0.1:33333", loc.Host, "the only registered redirect URI")
		status, out = c.token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {p.verifier}})
		assert.Equal(t, http.StatusOK, status, "%+v", out)
		// Registration refuses redirect URIs OAuth 2.1 forbids.
		for _, bad := range []string{"http://example.com/cb", "https://x.example/cb#frag", "javascript:alert(1)"} {
			resp, body := c.postJSON("/api/oauth/register", "", map[string]any{"redirect_uris": []string{bad}, "token_endpoint_auth_method": "none"})
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
			assert.Contains(t, string(body), "invalid_redirect_uri")
		}
	})
}

func TestOAuthRefreshReuseRevokesFamily(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c, first := full(t, s, "state:read")
		status, second := c.refresh(first.RefreshToken)
		require.Equal(t, http.StatusOK, status)
		// The first refresh token again: a replay. The whole family goes.
		status, out := c.refresh(first.RefreshToken)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_grant", out.Error)
		for _, at := range []string{first.AccessToken, second.AccessToken} {
			status, _, _ := c.mcp(at, "whoami", nil)
			assert.Equal(t, http.StatusUnauthorized, status)
		}
		status, out = c.refresh(second.RefreshToken)
		assert.Equal(t, http.StatusBadRequest, status, "the successor dies with the family")
		assert.Equal(t, "invalid_grant", out.Error)
		// Another client cannot spend (or burn) this client's token.
		c2, tok := full(t, s, "state:read")
		other := newClient(t, s.URL)
		other.register()
		status, _ = other.refresh(tok.RefreshToken)
		assert.Equal(t, http.StatusBadRequest, status)
		status, _ = c2.refresh(tok.RefreshToken)
		assert.Equal(t, http.StatusOK, status)
	})
}

func TestOAuthAccessTokenExpires(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c, tok := full(t, s, "state:read")
		e.Clock.Advance(59 * time.Minute)
		status, _, _ := c.mcp(tok.AccessToken, "whoami", nil)
		assert.Equal(t, http.StatusOK, status)
		e.Clock.Advance(2 * time.Minute)
		status, _, www := c.mcp(tok.AccessToken, "whoami", nil)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Contains(t, www, `resource_metadata="`+s.URL+`/.well-known/oauth-protected-resource"`)
		status, next := c.refresh(tok.RefreshToken)
		require.Equal(t, http.StatusOK, status)
		status, _, _ = c.mcp(next.AccessToken, "whoami", nil)
		assert.Equal(t, http.StatusOK, status)
	})
}

func TestOAuthAudience(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c, tok := full(t, s, "state:read state:write")
		// Not REST: the token was issued for /api/mcp only.
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/v1/states/k", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, _ := c.do(req)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		// Not another server on the same store (another public URL is another resource).
		other := testenv.NewServer(t, e, func(a *app.App) {
			a.HTTP.PublicURL = "https://other.example"
			a.OAuth.PublicURL = "https://other.example"
		})
		status, _, _ := newClient(t, other.URL).mcp(tok.AccessToken, "whoami", nil)
		assert.Equal(t, http.StatusUnauthorized, status)
		// A token requested for another resource is refused at issue.
		p := newPKCE()
		resp, _ = c.get(c.authorizeURL(p, "state:read", redirect, "resource", "https://other.example/api/mcp"))
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		assert.Equal(t, "invalid_target", loc.Query().Get("error"))
		status, out := c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "resource": {"https://other.example/api/mcp"}})
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_target", out.Error)
	})
}

func TestOAuthScopeStepUp(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c, tok := full(t, s, "state:read")
		status, body, www := c.mcp(tok.AccessToken, "upsert_state", map[string]any{"state_key": "k", "data": 1})
		assert.Equal(t, http.StatusForbidden, status, body)
		assert.Contains(t, www, `error="insufficient_scope"`)
		assert.Contains(t, www, `scope="state:read state:write"`)
		assert.Contains(t, www, `resource_metadata="`+s.URL+`/.well-known/oauth-protected-resource"`)
		// What it holds still works, and an API key keeps the tool's own result (no step-up).
		status, _, _ = c.mcp(tok.AccessToken, "get_state", map[string]any{"state_key": "k"})
		assert.Equal(t, http.StatusOK, status)
		status, _, www = c.mcp(s.Project.Key, "upsert_state", map[string]any{"state_key": "k", "data": 1})
		assert.Equal(t, http.StatusOK, status)
		assert.Empty(t, www)
	})
}

// The consent is minted by the approving key, so it is never wider than the key on any axis.
func TestOAuthConsentNeverWiderThanKey(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		ctx := context.Background()
		narrow, err := s.App.Keys.CreateAPIKey(ctx, s.Project.P, core.CreateKeyRequest{Name: "narrow",
			Scopes: []string{"state:read", "keys:write"}, Resources: []string{"team/*"}})
		require.NoError(t, err)
		c := newClient(t, s.URL)
		c.register()
		p := newPKCE()
		for name, choose := range map[string]url.Values{
			"wider scope":     {"grant_scope": {"state:read", "state:write"}},
			"wider resources": {"grant_scope": {"state:read"}, "resources": {"other/*"}},
		} {
			resp, body := c.consent(c.authorizeURL(p, "state:read state:write", redirect), narrow.Key, choose)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode, name)
			assert.Empty(t, resp.Header.Get("Location"), name)
			assert.Contains(t, string(body), `id="consent-error"`, name)
		}
		// Within the key: granted, and the token carries the key's resources.
		resp, body := c.consent(c.authorizeURL(p, "state:read", "http://127.0.0.1:45678/callback"), narrow.Key,
			url.Values{"grant_scope": {"state:read"}, "resources": {"team/a*"}, "agent_id": {"host-agent"}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s", body)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		status, tok := c.exchange(loc.Query().Get("code"), p)
		require.Equal(t, http.StatusOK, status)
		_, who, _ := c.mcp(tok.AccessToken, "whoami", nil)
		assert.Contains(t, who, `team/a*`)
		assert.Contains(t, who, `host-agent`)
		status, res, _ := c.mcp(tok.AccessToken, "get_state", map[string]any{"state_key": "team/b"})
		assert.Equal(t, http.StatusOK, status)
		assert.Contains(t, res, `"isError":true`)
		// A capability token cannot approve (the person proves identity with a project API key),
		// and a wrong key is refused on the page.
		plain, err := s.App.Keys.MintToken(ctx, s.Project.P, core.MintTokenRequest{Name: "plain", Scopes: []string{"state:read"}, MaxDepth: ptr(2)})
		require.NoError(t, err)
		for _, k := range []string{tok.AccessToken, plain.Token, "as_live_" + core.RandomBase62(40)} {
			resp, _ = c.consent(c.authorizeURL(p, "state:read", redirect), k, url.Values{"grant_scope": {"state:read"}})
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		}
		// The person may narrow the client's request but not add to it.
		resp, _ = c.consent(c.authorizeURL(p, "state:read", redirect), s.Project.Key, url.Values{"grant_scope": {"claim:write"}})
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}

func TestOAuthConsentForm(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c := newClient(t, s.URL)
		c.register()
		p := newPKCE()
		t.Run("deny", func(t *testing.T) {
			resp, _ := c.consent(c.authorizeURL(p, "state:read", redirect), s.Project.Key, url.Values{"action": {"deny"}})
			require.Equal(t, http.StatusSeeOther, resp.StatusCode)
			loc, _ := url.Parse(resp.Header.Get("Location"))
			assert.Equal(t, "access_denied", loc.Query().Get("error"))
			assert.Equal(t, "st-123", loc.Query().Get("state"))
			assert.Empty(t, loc.Query().Get("code"))
		})
		t.Run("csrf token must match the cookie", func(t *testing.T) {
			resp, _ := c.consent(c.authorizeURL(p, "state:read", redirect), s.Project.Key, url.Values{"csrf": {"guess"}})
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Empty(t, resp.Header.Get("Location"))
		})
		t.Run("csrf", func(t *testing.T) {
			// A form posted from elsewhere has neither the cookie nor its value.
			fresh := newClient(t, s.URL)
			fresh.id = c.id
			resp, _ := c.get(c.authorizeURL(p, "state:read", redirect))
			require.Equal(t, http.StatusOK, resp.StatusCode)
			resp, body := fresh.postForm("/api/oauth/authorize/decision", url.Values{"client_id": {c.id}, "redirect_uri": {redirect},
				"response_type": {"code"}, "code_challenge": {p.challenge}, "code_challenge_method": {"S256"}, "scope": {"state:read"},
				"api_key": {s.Project.Key}, "action": {"approve"}, "expires": {"30d"}, "csrf": {"guess"}})
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Empty(t, resp.Header.Get("Location"))
			assert.Contains(t, string(body), "reload")
		})
		t.Run("page loads nothing external", func(t *testing.T) {
			resp, body := c.get(c.authorizeURL(p, "state:read", redirect))
			require.Equal(t, http.StatusOK, resp.StatusCode)
			csp := resp.Header.Get("Content-Security-Policy")
			assert.Contains(t, csp, "default-src 'none'")
			assert.NotContains(t, string(body), "<script")
			assert.NotRegexp(t, `(src|href)="(https?:)?//`, string(body))
		})
		t.Run("unknown client", func(t *testing.T) {
			resp, _ := c.get("/api/oauth/authorize?response_type=code&client_id=nope&redirect_uri=" + url.QueryEscape(redirect))
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Empty(t, resp.Header.Get("Location"))
		})
	})
}

func TestOAuthClientMetadataDocument(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		var docURL string
		host := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"client_id": docURL, "client_name": "CIMD host",
				"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none"})
		}))
		t.Cleanup(host.Close)
		docURL = host.URL + "/oauth/client.json"
		s := testenv.NewServer(t, e, func(a *app.App) {
			// The guarded client, trusting the test server's certificate.
			tr := a.OAuth.Fetch.Transport.(*http.Transport).Clone()
			pool := x509.NewCertPool()
			pool.AddCert(host.Certificate())
			tr.TLSClientConfig.RootCAs = pool
			a.OAuth.Fetch = &http.Client{Transport: tr, CheckRedirect: a.OAuth.Fetch.CheckRedirect}
		})
		c := newClient(t, s.URL)
		c.id = docURL
		p := newPKCE()
		resp, body := c.get(c.authorizeURL(p, "state:read", redirect))
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Contains(t, string(body), "CIMD host")
		status, tok := c.exchange(c.code(p, s.Project.Key, "state:read"), p)
		require.Equal(t, http.StatusOK, status, "%+v", tok)

		// Private, loopback and metadata addresses are refused before anything is fetched.
		strict := testenv.NewServer(t, e, func(a *app.App) { a.OAuth.AllowLoopback = false })
		sc := newClient(t, strict.URL)
		for _, bad := range []string{docURL, "https://10.0.0.8/client.json", "https://169.254.169.254/latest/client.json",
			"https://[::1]/client.json", "https://localhost/client.json", "https://192.168.1.1/c.json"} {
			sc.id = bad
			resp, body := sc.get(sc.authorizeURL(p, "state:read", redirect))
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
			assert.Contains(t, string(body), "public address", bad)
		}
		// A document that does not name itself is refused.
		liar := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]any{"client_id": "https://someone.else/c.json", "redirect_uris": []string{redirect}})
		}))
		t.Cleanup(liar.Close)
		c.id = liar.URL + "/c.json"
		resp, _ = c.get(c.authorizeURL(p, "state:read", redirect))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}

func TestOAuthRevocation(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		t.Run("refresh token revokes the grant", func(t *testing.T) {
			c, tok := full(t, s, "state:read")
			resp, _ := c.postForm("/api/oauth/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {c.id}})
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			status, _, _ := c.mcp(tok.AccessToken, "whoami", nil)
			assert.Equal(t, http.StatusUnauthorized, status)
			status, _ = c.refresh(tok.RefreshToken)
			assert.Equal(t, http.StatusBadRequest, status)
		})
		t.Run("access token alone", func(t *testing.T) {
			c, tok := full(t, s, "state:read")
			resp, _ := c.postForm("/api/oauth/revoke", url.Values{"token": {tok.AccessToken}, "client_id": {c.id}})
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			status, _, _ := c.mcp(tok.AccessToken, "whoami", nil)
			assert.Equal(t, http.StatusUnauthorized, status)
			status, next := c.refresh(tok.RefreshToken)
			require.Equal(t, http.StatusOK, status)
			status, _, _ = c.mcp(next.AccessToken, "whoami", nil)
			assert.Equal(t, http.StatusOK, status)
		})
		t.Run("unknown token is 200", func(t *testing.T) {
			c := newClient(t, s.URL)
			c.register()
			resp, _ := c.postForm("/api/oauth/revoke", url.Values{"token": {"nonsense"}, "client_id": {c.id}})
			assert.Equal(t, http.StatusOK, resp.StatusCode)
		})
		t.Run("grant revoked as a capability token", func(t *testing.T) {
			// Revocation is the capability-token rule unchanged: the grant is a token of the
			// project, listed and revoked like any other, and its access tokens die with it.
			c, tok := full(t, s, "state:read")
			list, err := s.App.Keys.ListTokens(context.Background(), s.Project.P)
			require.NoError(t, err)
			var grant string
			for _, tk := range list.Data {
				if tk.KeyPrefix == tok.AccessToken[:12] && tk.ParentID != nil {
					grant = *tk.ParentID // the access token is the grant's child
				}
			}
			require.NotEmpty(t, grant)
			require.NoError(t, s.App.Keys.RevokeToken(context.Background(), s.Project.P, grant))
			status, _, _ := c.mcp(tok.AccessToken, "whoami", nil)
			assert.Equal(t, http.StatusUnauthorized, status)
			status, _ = c.refresh(tok.RefreshToken)
			assert.Equal(t, http.StatusBadRequest, status)
		})
	})
}

// Delegation applies unchanged: an access token allowed one level mints a narrower child, and
// the child keeps the access token's audience.
func TestOAuthDelegation(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c := newClient(t, s.URL)
		c.register()
		p := newPKCE()
		resp, body := c.consent(c.authorizeURL(p, "state:read state:write", "http://127.0.0.1:45678/callback"), s.Project.Key,
			url.Values{"grant_scope": {"state:read", "state:write"}, "max_depth": {"1"}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s", body)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		status, tok := c.exchange(loc.Query().Get("code"), p)
		require.Equal(t, http.StatusOK, status)
		status, out, _ := c.mcp(tok.AccessToken, "mint_capability_token", map[string]any{"name": "sub", "scopes": []string{"state:read"}})
		require.Equal(t, http.StatusOK, status)
		require.NotContains(t, out, `"isError":true`, out)
		child := regexp.MustCompile(`as_cap_[A-Za-z0-9]{40}`).FindString(out)
		require.NotEmpty(t, child, out)
		status, _, _ = c.mcp(child, "whoami", nil)
		assert.Equal(t, http.StatusOK, status)
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/v1/states/k", nil)
		req.Header.Set("Authorization", "Bearer "+child)
		resp, _ = c.do(req)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a child of an access token is bound to the same resource")
		// Without delegation depth, the access token cannot mint.
		_, plain := full(t, s, "state:read")
		_, out, _ = c.mcp(plain.AccessToken, "mint_capability_token", map[string]any{"name": "sub", "scopes": []string{"state:read"}})
		assert.Contains(t, out, `"isError":true`)
	})
}

func TestOAuthClientCredentials(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		c := newClient(t, s.URL)
		reg := map[string]any{"client_name": "cron", "grant_types": []string{"client_credentials"}, "scope": "state:read state:write"}
		resp, _ := c.postJSON("/api/oauth/register", "", reg)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a machine client is bound to a key: it needs one to register")
		resp, body := c.postJSON("/api/oauth/register", s.Project.Key, reg)
		require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
		var out struct{ ClientID, ClientSecret string }
		require.NoError(t, json.Unmarshal(body, &struct {
			ID     *string `json:"client_id"`
			Secret *string `json:"client_secret"`
		}{&out.ClientID, &out.ClientSecret}))
		require.NotEmpty(t, out.ClientSecret)

		req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/oauth/token", strings.NewReader("grant_type=client_credentials&scope=state%3Aread"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(out.ClientID), url.QueryEscape(out.ClientSecret))
		resp, body = c.do(req)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		var tok tokens
		require.NoError(t, json.Unmarshal(body, &tok))
		assert.Empty(t, tok.RefreshToken)
		assert.Equal(t, "state:read", tok.Scope)
		status, _, _ := c.mcp(tok.AccessToken, "whoami", nil)
		assert.Equal(t, http.StatusOK, status)
		req, _ = http.NewRequest(http.MethodGet, s.URL+"/api/v1/states/k", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, _ = c.do(req)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "client-credentials tokens are bound to /api/mcp too")

		status, bad := c.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {out.ClientID}, "client_secret": {"wrong"}})
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, "invalid_client", bad.Error)
		// Wider than the key cannot even be registered.
		narrow, err := s.App.Keys.CreateAPIKey(context.Background(), s.Project.P, core.CreateKeyRequest{Name: "n", Scopes: []string{"state:read", "keys:write"}})
		require.NoError(t, err)
		resp, _ = c.postJSON("/api/oauth/register", narrow.Key, reg)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}

func TestOAuthRateLimits(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e, func(a *app.App) { a.OAuth.RegisterPerHour, a.OAuth.TokenPerMinute = 2, 3 })
		c := newClient(t, s.URL)
		// Counters are per IP and global (every test client is 127.0.0.1): a window of its own.
		e.Clock.Advance(time.Duration(rand.Int64N(1_000_000)) * time.Hour)
		reg := map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none"}
		var codes []int
		for range 3 {
			resp, _ := c.postJSON("/api/oauth/register", "", reg)
			codes = append(codes, resp.StatusCode)
		}
		assert.Equal(t, []int{201, 201, 429}, codes)
		codes = nil
		for range 4 {
			resp, _ := c.postForm("/api/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"y"}})
			codes = append(codes, resp.StatusCode)
			if resp.StatusCode == http.StatusTooManyRequests {
				assert.NotEmpty(t, resp.Header.Get("Retry-After"))
			}
		}
		assert.Equal(t, []int{401, 401, 401, 429}, codes)
		// The consent form too (its CSRF pair is valid, so only the limit stops it).
		e.Clock.Advance(2 * time.Hour) // a new registration window
		c.register()
		codes = nil
		for range 4 {
			resp, _ := c.consent(c.authorizeURL(newPKCE(), "state:read", redirect), "as_live_"+core.RandomBase62(40), nil)
			codes = append(codes, resp.StatusCode)
		}
		assert.Equal(t, []int{401, 401, 401, 429}, codes)
	})
}

func ptr[T any](v T) *T { return &v }
