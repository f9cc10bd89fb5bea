package contract

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
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

// as returns the same face as f, calling with another credential.
func as(f Face, s *testenv.Server, cred string) Face {
	if f.Name() == "mcp" {
		return newMCP(s, cred)
	}
	return newREST(s, cred)
}

func mustOK(t *testing.T, r Result) Result {
	t.Helper()
	require.Empty(t, r.Code, "%s: %s", r.Code, r.Message)
	return r
}

func expectErr(t *testing.T, r Result, code core.Code, msg string) {
	t.Helper()
	assert.Equal(t, code, r.Code, r.Message)
	if msg != "" {
		assert.Equal(t, msg, r.Message)
	}
}

func mintToken(t *testing.T, f Face, args map[string]any) core.CapabilityToken {
	t.Helper()
	var tok core.CapabilityToken
	mustOK(t, f.Call(t, "mint_capability_token", args)).Decode(t, &tok)
	return tok
}

func createKey(t *testing.T, f Face, args map[string]any) core.APIKey {
	t.Helper()
	var k core.APIKey
	mustOK(t, f.Call(t, "create_api_key", args)).Decode(t, &k)
	return k
}

// status sends one REST request with cred and returns the status.
func status(t *testing.T, s *testenv.Server, method, path, cred string, body any) int {
	t.Helper()
	resp, _ := send(t, method, s.URL+path, cred, body, nil)
	return resp.StatusCode
}

var putBody = map[string]any{"agent_id": "a", "data": map[string]any{"v": 1}}

func TestAPIKeysSubsetInheritAndRevoke(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		full := createKey(t, f, map[string]any{"name": "full"})
		assert.Nil(t, full.Scopes, "a full-access caller's child inherits full access as null")
		assert.Regexp(t, `^as_live_[A-Za-z0-9]{40}$`, full.Key)
		assert.Equal(t, full.Key[:12], full.KeyPrefix)

		ro := createKey(t, f, map[string]any{"name": "ro", "scopes": []string{"state:read"}})
		assert.Equal(t, []string{"state:read"}, ro.Scopes)
		expectErr(t, as(f, s, ro.Key).Call(t, "create_api_key", map[string]any{"name": "x"}), core.CodeForbidden, "")

		mgr := createKey(t, f, map[string]any{"name": "mgr", "scopes": []string{"keys:write", "state:*"}})
		asMgr := as(f, s, mgr.Key)
		expectErr(t, asMgr.Call(t, "create_api_key", map[string]any{"name": "x", "scopes": []string{"claim:read"}}),
			core.CodeForbidden, "Cannot grant scopes beyond the calling key's own scopes")
		expectErr(t, asMgr.Call(t, "create_api_key", map[string]any{"name": "x", "scopes": []string{"*"}}),
			core.CodeForbidden, "Cannot grant scopes beyond the calling key's own scopes")
		inherited := createKey(t, asMgr, map[string]any{"name": "inherits"})
		assert.Equal(t, []string{"keys:write", "state:*"}, inherited.Scopes)
		narrower := createKey(t, asMgr, map[string]any{"name": "w", "scopes": []string{"state:write"}})
		assert.Equal(t, []string{"state:write"}, narrower.Scopes)

		r := f.Call(t, "create_api_key", map[string]any{"name": "x", "scopes": []string{"state:admin"}})
		expectErr(t, r, core.CodeBadRequest, "")
		assert.True(t, strings.HasPrefix(r.Message, "Invalid enum value. Expected '*' | "), r.Message)
		expectErr(t, f.Call(t, "create_api_key", map[string]any{"name": "x", "scopes": []string{}}), core.CodeBadRequest, "at least one scope is required")
		expectErr(t, f.Call(t, "create_api_key", map[string]any{"name": ""}), core.CodeBadRequest, "")

		assert.Equal(t, 404, status(t, s, "GET", "/api/v1/states/k", ro.Key, nil), "ro authenticates")
		mustOK(t, f.Call(t, "revoke_api_key", map[string]any{"id": ro.ID}))
		assert.Equal(t, 401, status(t, s, "GET", "/api/v1/states/k", ro.Key, nil), "revocation is immediate")
		mustOK(t, f.Call(t, "revoke_api_key", map[string]any{"id": ro.ID}))
		expectErr(t, f.Call(t, "revoke_api_key", map[string]any{"id": "nope"}), core.CodeNotFound, "API key not found")

		var list core.KeyList
		mustOK(t, f.Call(t, "list_api_keys", nil)).Decode(t, &list)
		byID := map[string]core.APIKey{}
		for _, k := range list.Data {
			assert.Empty(t, k.Key, "raw keys are shown once")
			byID[k.ID] = k
		}
		require.Contains(t, byID, ro.ID, "revoked keys are listed (v1)")
		assert.NotNil(t, byID[ro.ID].RevokedAt)
		assert.NotNil(t, byID[ro.ID].LastUsedAt, "a used key shows last_used_at")
		assert.Nil(t, byID[narrower.ID].LastUsedAt, "an unused one does not")
		assert.Nil(t, byID[full.ID].RevokedAt)
		assert.Len(t, list.Data, 6, "the project key and the five created here")
	})
}

func TestKeyRoutesRefuseTokensAndOtherProjects(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		tok := mintToken(t, newREST(s, s.Project.Key), map[string]any{"name": "t", "scopes": []string{"state:read"}})
		for _, path := range []string{"/api/v1/keys", "/api/projects/" + s.Project.ID + "/keys"} {
			assert.Equal(t, 401, status(t, s, "GET", path, tok.Token, nil), "%s: tokens are refused on key routes (v1)", path)
			assert.Equal(t, 200, status(t, s, "GET", path, s.Project.Key, nil), path)
		}
		resp, out := send(t, "GET", s.URL+"/api/projects/other/keys", s.Project.Key, nil, nil)
		assert.Equal(t, 403, resp.StatusCode)
		assert.JSONEq(t, `{"error":{"code":"FORBIDDEN","message":"Cannot manage keys for another project","retryable":false}}`, string(out))
		resp, out = send(t, "POST", s.URL+"/api/projects/"+s.Project.ID+"/keys", s.Project.Key, map[string]any{"name": "legacy"}, nil)
		require.Equal(t, 201, resp.StatusCode, string(out))
		var k core.APIKey
		require.NoError(t, json.Unmarshal(out, &k))
		assert.Equal(t, 204, status(t, s, "DELETE", "/api/projects/"+s.Project.ID+"/keys/"+k.ID, s.Project.Key, nil))
	})
}

func TestCapabilityTokensV1(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		tok := mintToken(t, f, map[string]any{"name": "worker", "scopes": []string{"state:write", "state:read"}})
		assert.Regexp(t, regexp.MustCompile(`^as_cap_[A-Za-z0-9]{40}$`), tok.Token)
		assert.Equal(t, tok.Token[:12], tok.KeyPrefix)
		assert.Equal(t, []string{"state:read", "state:write"}, tok.Scopes, "sorted")
		assert.Nil(t, tok.ParentID)
		assert.Zero(t, tok.Depth)
		assert.Nil(t, tok.ExpiresAt)
		assert.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", tok.Token, putBody))

		r := f.Call(t, "mint_capability_token", map[string]any{"name": "x", "scopes": []string{"keys:read"}})
		expectErr(t, r, core.CodeBadRequest, "")
		assert.True(t, strings.HasPrefix(r.Message, "Invalid enum value. Expected 'state:read' | "), r.Message)
		expectErr(t, f.Call(t, "mint_capability_token", map[string]any{"name": "x", "scopes": []string{"state:read", "state:read"}}),
			core.CodeBadRequest, "scopes must be unique; allowed scopes: state:read, state:write, state:watch, lease:write, claim:read, claim:write")
		expectErr(t, f.Call(t, "mint_capability_token", map[string]any{"name": "x", "scopes": []string{}}), core.CodeBadRequest, "")
		expectErr(t, f.Call(t, "mint_capability_token", map[string]any{"name": "x", "scopes": []string{"state:read"}, "expires_at": 0}), core.CodeBadRequest, "")

		narrow := createKey(t, f, map[string]any{"name": "n", "scopes": []string{"keys:write", "state:read"}})
		expectErr(t, as(f, s, narrow.Key).Call(t, "mint_capability_token", map[string]any{"name": "x", "scopes": []string{"state:write"}}),
			core.CodeForbidden, "Cannot grant scopes beyond the calling key's own scopes")

		past := mintToken(t, f, map[string]any{"name": "old", "scopes": []string{"state:read"}, "expires_at": 1000})
		assert.Equal(t, 401, status(t, s, "GET", "/api/v1/states/k", past.Token, nil), "an expired token fails auth")

		var list core.TokenList
		mustOK(t, f.Call(t, "list_capability_tokens", nil)).Decode(t, &list)
		assert.Len(t, list.Data, 2)
		mustOK(t, f.Call(t, "revoke_capability_token", map[string]any{"id": tok.ID}))
		assert.Equal(t, 401, status(t, s, "GET", "/api/v1/states/k", tok.Token, nil), "revocation is immediate")
		mustOK(t, f.Call(t, "revoke_capability_token", map[string]any{"id": tok.ID}))
		mustOK(t, f.Call(t, "list_capability_tokens", nil)).Decode(t, &list)
		assert.Len(t, list.Data, 1, "unrevoked only (expired ones still listed)")
		expectErr(t, f.Call(t, "revoke_capability_token", map[string]any{"id": "nope"}), core.CodeNotFound, "Capability token not found")
	})
}

func TestDelegationNeverWidens(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		exp := e.Clock.Now().Add(time.Hour).UnixMilli()
		root := mintToken(t, f, map[string]any{"name": "root", "scopes": []string{"state:read", "state:write", "lease:write"},
			"max_depth": 2, "resources": []string{"jobs/*"}, "expires_at": exp})
		asRoot := as(f, s, root.Token)
		child := mintToken(t, asRoot, map[string]any{"name": "child", "scopes": []string{"state:read", "state:write"}, "resources": []string{"jobs/a*"}})
		assert.Equal(t, root.ID, *child.ParentID)
		assert.Equal(t, 1, child.Depth)
		assert.Equal(t, 1, child.MaxDepth, "inherits parent's max_depth - 1")
		assert.Equal(t, exp, *child.ExpiresAt, "inherits the parent's expiry")

		for name, args := range map[string]map[string]any{
			"wider scope":     {"scopes": []string{"claim:read"}},
			"other resources": {"scopes": []string{"state:read"}, "resources": []string{"other*"}},
			"wider resources": {"scopes": []string{"state:read"}, "resources": []string{"jobs*"}},
			"later expiry":    {"scopes": []string{"state:read"}, "expires_at": exp + 1},
			"same max_depth":  {"scopes": []string{"state:read"}, "max_depth": 2},
		} {
			args["name"] = name
			assert.Equal(t, core.CodeForbidden, asRoot.Call(t, "mint_capability_token", args).Code, name)
		}

		asChild := as(f, s, child.Token)
		grand := mintToken(t, asChild, map[string]any{"name": "grand", "scopes": []string{"state:write"}})
		assert.Equal(t, 2, grand.Depth)
		assert.Equal(t, 0, grand.MaxDepth)
		assert.Equal(t, []string{"jobs/a*"}, grand.Resources)
		expectErr(t, as(f, s, grand.Token).Call(t, "mint_capability_token", map[string]any{"name": "x", "scopes": []string{"state:write"}}),
			core.CodeForbidden, "This capability token cannot delegate (its max_depth is 0)")

		assert.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/jobs%2Fa1", grand.Token, putBody))
		assert.Equal(t, 403, status(t, s, "PUT", "/api/v1/states/jobs%2Fb1", grand.Token, putBody), "outside its resources")
		assert.Equal(t, 403, status(t, s, "PUT", "/api/v1/states/other", root.Token, putBody))

		var list core.TokenList
		mustOK(t, asChild.Call(t, "list_capability_tokens", nil)).Decode(t, &list)
		require.Len(t, list.Data, 1, "a token lists its own descendants")
		assert.Equal(t, grand.ID, list.Data[0].ID)
		expectErr(t, asChild.Call(t, "revoke_capability_token", map[string]any{"id": root.ID}), core.CodeNotFound, "Capability token not found")

		mustOK(t, f.Call(t, "revoke_capability_token", map[string]any{"id": root.ID}))
		for _, tok := range []core.CapabilityToken{root, child, grand} {
			assert.Equal(t, 401, status(t, s, "GET", "/api/v1/states/jobs%2Fa1", tok.Token, nil), "%s dies with its root", tok.Name)
		}
		mustOK(t, f.Call(t, "list_capability_tokens", nil)).Decode(t, &list)
		assert.Empty(t, list.Data, "descendants of a revoked token are not live")
	})
}

func TestAgentBoundToken(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		tok := mintToken(t, f, map[string]any{"name": "bot", "scopes": []string{"state:write", "state:read"}, "agent_id": "bot-1", "max_depth": 1})
		asBot := as(f, s, tok.Token)
		var st core.State
		mustOK(t, asBot.Call(t, "upsert_state", map[string]any{"state_key": "k", "data": map[string]any{"a": 1}})).Decode(t, &st)
		assert.Equal(t, "bot-1", st.AgentID, "writes record the bound agent")
		expectErr(t, asBot.Call(t, "upsert_state", map[string]any{"state_key": "k", "agent_id": "other", "data": map[string]any{}}),
			core.CodeForbidden, "This credential is bound to agent bot-1")
		expectErr(t, asBot.Call(t, "mint_capability_token", map[string]any{"name": "x", "scopes": []string{"state:read"}, "agent_id": "other"}),
			core.CodeForbidden, "This credential is bound to agent bot-1")
		child := mintToken(t, asBot, map[string]any{"name": "c", "scopes": []string{"state:read"}})
		assert.Equal(t, "bot-1", *child.AgentID, "children stay bound")
	})
}

// toolNames lists tools/list for cred, with their read-only hints.
func toolNames(t *testing.T, s *testenv.Server, cred string) map[string]bool {
	t.Helper()
	raw := (&mcpFace{base: s.URL, key: cred}).rpc(t, "tools/list", map[string]any{})
	var res struct {
		Tools []struct {
			Name        string
			Annotations struct {
				ReadOnlyHint bool `json:"readOnlyHint"`
			}
		}
	}
	require.NoError(t, json.Unmarshal(raw, &res))
	out := map[string]bool{}
	for _, tl := range res.Tools {
		out[tl.Name] = tl.Annotations.ReadOnlyHint
	}
	return out
}

func TestToolListFollowsTheCredential(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		f := newREST(s, s.Project.Key)
		ro := mintToken(t, f, map[string]any{"name": "ro", "scopes": []string{"state:read"}})
		tools := toolNames(t, s, ro.Token)
		assert.Contains(t, tools, "get_state")
		assert.NotContains(t, tools, "upsert_state")
		assert.NotContains(t, tools, "mint_capability_token")
		for name, readOnly := range tools {
			assert.True(t, readOnly, "a read-only token sees only read-only tools, got %s", name)
		}
		deleg := mintToken(t, f, map[string]any{"name": "d", "scopes": []string{"state:read"}, "max_depth": 1})
		assert.Contains(t, toolNames(t, s, deleg.Token), "mint_capability_token")
		all := toolNames(t, s, s.Project.Key)
		assert.Contains(t, all, "create_api_key")
		assert.Contains(t, all, "upsert_state")
	})
}

func TestProjectsAdminAPI(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		resp, out := send(t, "GET", s.URL+"/api/v1/projects", "anything", nil, nil)
		assert.Equal(t, 401, resp.StatusCode)
		assert.Contains(t, string(out), "Authentication required", "fails closed without AGENTSTATE_ADMIN_TOKEN")

		admin := "adm-" + core.NewID()
		s = testenv.NewServer(t, e, func(a *app.App) { a.Auth.AdminToken = admin })
		assert.Equal(t, 401, status(t, s, "GET", "/api/v1/projects", s.Project.Key, nil), "project keys are not admin")
		assert.Equal(t, 401, status(t, s, "GET", "/api/v1/projects", admin+"x", nil))

		id := "adm_" + core.NewID()
		t.Cleanup(func() { _, _ = e.Store.DeleteProject(t.Context(), id) })
		resp, out = send(t, "POST", s.URL+"/api/v1/projects", admin, map[string]any{"id": id, "name": "P"}, nil)
		require.Equal(t, 201, resp.StatusCode, string(out))
		var created core.ProjectWithKey
		require.NoError(t, json.Unmarshal(out, &created))
		assert.Equal(t, id, created.Project.ID)
		key := created.APIKey.Key
		assert.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", key, putBody), "the first key works")
		tok := mintToken(t, newREST(s, key), map[string]any{"name": "t", "scopes": []string{"state:read"}})
		assert.Equal(t, 409, status(t, s, "POST", "/api/v1/projects", admin, map[string]any{"id": id, "name": "again"}))
		assert.Equal(t, 400, status(t, s, "POST", "/api/v1/projects", admin, map[string]any{"id": "a:b", "name": "bad"}))

		resp, out = send(t, "GET", s.URL+"/api/v1/projects", admin, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		assert.Contains(t, string(out), `"id":"`+id+`"`)

		assert.Equal(t, 204, status(t, s, "DELETE", "/api/v1/projects/"+id, admin, nil))
		assert.Equal(t, 401, status(t, s, "GET", "/api/v1/states/k", key, nil), "deleting a project removes its keys")
		assert.Equal(t, 401, status(t, s, "GET", "/api/v1/states/k", tok.Token, nil), "and its tokens")
		for _, k := range e.ProjectKeys(t, id) { // but its counters, which a project made again continues
			assert.True(t, k == "as:{"+id+"}:seq" || strings.HasPrefix(k, "as:{"+id+"}:fence:"), "and all its data: %s left", k)
		}
		assert.Equal(t, 404, status(t, s, "DELETE", "/api/v1/projects/"+id, admin, nil))
	})
}

func TestRateLimitPerCredential(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, 3) })
		other := createKey(t, newREST(s, s.Project.Key), map[string]any{"name": "other"}) // request 1
		windowEnd := e.Clock.Now().Truncate(time.Minute).Add(time.Minute)
		for i := 2; i <= 3; i++ {
			resp, _ := send(t, "GET", s.URL+"/api/v1/leases", s.Project.Key, nil, nil)
			require.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, "3", resp.Header.Get("X-RateLimit-Limit"))
			assert.Equal(t, str(3-i), resp.Header.Get("X-RateLimit-Remaining"))
			assert.Equal(t, str(windowEnd.Unix()), resp.Header.Get("X-RateLimit-Reset"))
		}
		e.Clock.Advance(15 * time.Second)
		resp, out := send(t, "GET", s.URL+"/api/v1/leases", s.Project.Key, nil, nil)
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		assert.Equal(t, "45", resp.Header.Get("Retry-After"))
		assert.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))
		assert.JSONEq(t, `{"error":{"code":"RATE_LIMITED","message":"Rate limit exceeded. Maximum 3 requests per minute. Retry after 45 seconds.","retryable":true}}`, string(out))
		resp, _ = send(t, "POST", s.URL+"/api/mcp", s.Project.Key, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, nil)
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "MCP counts against the same budget")
		assert.Equal(t, 200, status(t, s, "GET", "/api/v1/leases", other.Key, nil), "budgets are per credential")

		e.Clock.Advance(45 * time.Second)
		assert.Equal(t, 200, status(t, s, "GET", "/api/v1/leases", s.Project.Key, nil), "the next window resets")
	})
}

// TestTokensDieWithTheKeyThatMintedThem: revoking an API key revokes every capability token it
// minted and their descendants, on both faces, and they leave the token list.
func TestTokensDieWithTheKeyThatMintedThem(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		minter := createKey(t, newREST(s, s.Project.Key), map[string]any{"name": "minter"})
		root := mintToken(t, newREST(s, minter.Key), map[string]any{"name": "root", "scopes": []string{"state:read"}, "max_depth": 1})
		child := mintToken(t, newREST(s, root.Token), map[string]any{"name": "child", "scopes": []string{"state:read"}})
		for _, tok := range []string{root.Token, child.Token} {
			require.Equal(t, 200, status(t, s, "GET", "/api/v1/leases", tok, nil))
		}
		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/keys/"+minter.ID, s.Project.Key, nil))
		for name, tok := range map[string]string{"root": root.Token, "child": child.Token} {
			assert.Equal(t, 401, status(t, s, "GET", "/api/v1/leases", tok, nil), "%s over REST", name)
			resp, _ := send(t, "POST", s.URL+"/api/mcp", tok, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, nil)
			assert.Equal(t, 401, resp.StatusCode, "%s over MCP", name)
		}
		resp, out := send(t, "GET", s.URL+"/api/v1/capability-tokens", s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		assert.NotContains(t, string(out), root.ID, "a revoked key's tokens are not live")
		assert.NotContains(t, string(out), child.ID)
	})
}

// TestTokensShareTheMintingKeysBudget: a key's tokens count against the key's own budget too,
// so minting children multiplies nothing (v1 limits per credential; ours per chain as well).
func TestTokensShareTheMintingKeysBudget(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, 5) })
		minter := createKey(t, newREST(s, s.Project.Key), map[string]any{"name": "minter"}) // the project key's request 1
		var toks []string
		for i := range 4 { // the minter's requests 1..4
			toks = append(toks, mintToken(t, newREST(s, minter.Key), map[string]any{"name": fmt.Sprint("t", i), "scopes": []string{"state:read"}}).Token)
		}
		ok := 0
		for i := range 20 {
			if status(t, s, "GET", "/api/v1/leases", toks[i%4], nil) == 200 {
				ok++
			}
		}
		assert.Equal(t, 1, ok, "the minter's budget of 5 had 1 request left for all its tokens together")
		assert.Equal(t, http.StatusTooManyRequests, status(t, s, "GET", "/api/v1/leases", minter.Key, nil))
		assert.Equal(t, 200, status(t, s, "GET", "/api/v1/leases", s.Project.Key, nil), "other keys keep their own budget")
	})
}

// TestDelegationPropertyRandom: whatever a token asks for, a child it manages to mint is within
// it on every axis (scopes, resources, expiry, depth, agent).
func TestDelegationPropertyRandom(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		ctx, k := t.Context(), s.App.Keys
		rng := rand.New(rand.NewPCG(1, 2))
		pick := func(from []string) []string {
			var out []string
			for _, v := range from {
				if rng.IntN(3) == 0 {
					out = append(out, v)
				}
			}
			return out
		}
		patterns := []string{"*", "a*", "a/*", "a/b*", "a/b", "b*", "ab", "a"}
		parent := s.Project.P
		minted := 0
		for i := range 300 {
			if parent.Kind == core.KindCapabilityToken && (parent.MaxDepth == 0 || rng.IntN(5) == 0) {
				parent = s.Project.P // back to the top of a new chain
			}
			scopes := pick(core.CapabilityScopes)
			if len(scopes) == 0 {
				scopes = []string{core.CapabilityScopes[rng.IntN(len(core.CapabilityScopes))]}
			}
			req := core.MintTokenRequest{Name: fmt.Sprint("t", i), Scopes: scopes, Resources: pick(patterns)}
			if rng.IntN(2) == 0 {
				req.ExpiresAt = ptr(e.Clock.Now().Add(time.Duration(1+rng.IntN(100)) * time.Hour).UnixMilli())
			}
			if rng.IntN(2) == 0 {
				req.MaxDepth = ptr(rng.IntN(4))
			}
			if rng.IntN(4) == 0 {
				req.AgentID = []string{"x", "y"}[rng.IntN(2)]
			}
			tok, err := k.MintToken(ctx, parent, req)
			if err != nil {
				continue
			}
			minted++
			assert.True(t, scopesWithinP(parent.Scopes, tok.Scopes), "scopes %v within %v", tok.Scopes, parent.Scopes)
			assert.True(t, core.ResourcesWithin(parent.Resources, tok.Resources), "resources %v within %v", tok.Resources, parent.Resources)
			if parent.ExpiresAt != 0 {
				require.NotNil(t, tok.ExpiresAt)
				assert.LessOrEqual(t, *tok.ExpiresAt, parent.ExpiresAt)
			}
			if parent.Kind == core.KindCapabilityToken {
				assert.Less(t, tok.MaxDepth, parent.MaxDepth)
				assert.Equal(t, parent.Depth+1, tok.Depth)
			}
			if parent.AgentID != "" {
				assert.Equal(t, parent.AgentID, *tok.AgentID)
			}
			// Every key the child may touch, the parent may touch too.
			child, err := s.App.Auth.Authenticate(ctx, tok.Token)
			require.NoError(t, err)
			for _, key := range []string{"a", "ab", "a/b", "a/bc", "a/c", "b", "bz", "c"} {
				if child.CanTouch(key) {
					assert.True(t, parent.CanTouch(key), "child touches %s, parent cannot", key)
				}
			}
			if tok.MaxDepth > 0 && rng.IntN(2) == 0 {
				parent = child // walk down the chain
			}
		}
		assert.Greater(t, minted, 60, "the generator must produce successful mints")
	})
}

func scopesWithinP(granted, requested []string) bool {
	for _, s := range requested {
		if !core.ScopesSatisfy(granted, s) {
			return false
		}
	}
	return true
}

// TestAuthFailuresArePadded: v1 pads every authentication failure, and the scope-denied 403s of
// the states, leases and claims routes, to at least the failure delay. (A lower bound only:
// the padding is the behaviour; nothing here depends on how fast the machine is.)
func TestAuthFailuresArePadded(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ts := httptest.NewServer(testenv.CheckOpenAPI(t, a.NewHandler(150*time.Millisecond)))
		defer ts.Close()
		ro, err := a.Keys.CreateAPIKey(t.Context(), p.P, core.CreateKeyRequest{Name: "ro", Scopes: []string{"state:read"}})
		require.NoError(t, err)
		for name, c := range map[string]struct {
			cred, method, path string
			status             int
		}{
			"unknown key":   {core.NewAPIKeySecret(), "GET", "/api/v1/states/k", 401},
			"no credential": {"", "GET", "/api/v1/leases", 401},
			"missing scope": {ro.Key, "PUT", "/api/v1/states/k", 403},
		} {
			start := time.Now()
			resp, _ := send(t, c.method, ts.URL+c.path, c.cred, putBody, nil)
			assert.Equal(t, c.status, resp.StatusCode, name)
			assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, name)
		}
	})
}
