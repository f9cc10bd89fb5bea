package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// A state PUT or DELETE from a remembered credential is admitted by its own write script (core/admission.go):
// nothing about the credential is read first. The check in the script must refuse exactly what
// the long way refuses, write nothing when it does, count every request once, and answer a
// refusal found before the write (a bad body, a missing scope) only once the credential is
// known to be good: a refused credential gets 401 or 429, as if it had been checked first.
func TestStateWriteAdmittedByItsScript(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		const limit = 40
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, limit) })
		root := s.Project.Key
		rest := newREST(s, root)
		put := func(cred, key string, body any) (*http.Response, string) {
			t.Helper()
			resp, b := send(t, "PUT", s.URL+"/api/v1/states/"+key, cred, body, nil)
			return resp, string(b)
		}
		version := func(key string) int64 {
			t.Helper()
			st, err := s.App.States.Get(context.Background(), s.Project.P, key, core.At{})
			if core.IsCode(err, core.CodeNotFound) {
				return 0
			}
			require.NoError(t, err)
			return st.Version
		}
		// warm sends cred's first request (the long way), so that the next ones are deferred.
		warm := func(cred string) {
			t.Helper()
			resp, b := put(cred, "warm", putBody)
			require.Equal(t, 200, resp.StatusCode, b)
		}
		mintWith := func(cred string, more map[string]any, scopes ...string) core.CapabilityToken {
			t.Helper()
			body := map[string]any{"name": "t", "scopes": scopes}
			for k, v := range more {
				body[k] = v
			}
			resp, b := send(t, "POST", s.URL+"/api/v1/capability-tokens", cred, body, nil)
			require.Equal(t, 201, resp.StatusCode, string(b))
			var tok core.CapabilityToken
			require.NoError(t, json.Unmarshal(b, &tok))
			return tok
		}
		fresh := func() core.APIKey {
			return createKey(t, rest, map[string]any{"name": "k", "scopes": []string{"state:write", "state:read", "keys:write"}})
		}

		// A revoked key, and a token its revoked minting key made: refused at once, unwritten,
		// and a bad body from a revoked key is a 401 too (not the 400 it would get if live).
		key := fresh()
		warm(key.Key)
		tok := mint(t, s, key.Key, "state:write")
		warm(tok.Token)
		require.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", key.Key, putBody))
		require.EqualValues(t, 1, version("k"))
		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/keys/"+key.ID, root, nil))
		resp, b := put(key.Key, "k", putBody)
		assert.Equal(t, 401, resp.StatusCode, b)
		assert.Equal(t, core.CodeUnauthorized, envelope(t, []byte(b)).Code)
		resp, b = put(tok.Token, "k", putBody)
		assert.Equal(t, 401, resp.StatusCode, "a token of a revoked key: %s", b)
		assert.Equal(t, 401, status(t, s, "DELETE", "/api/v1/states/k", key.Key, nil), "a revoked key's DELETE")
		resp, b = put(key.Key, "k", map[string]any{"agent_id": "a", "data": "not an object"})
		assert.Equal(t, 401, resp.StatusCode, "a refused credential's bad body: %s", b)
		assert.Equal(t, core.CodeUnauthorized, envelope(t, []byte(b)).Code)
		assert.EqualValues(t, 1, version("k"), "nothing written")

		// A token whose parent is revoked; a token without write scope (403 while live, 401
		// once revoked).
		parent := mintWith(root, map[string]any{"max_depth": 1}, "state:write")
		child := mint(t, s, parent.Token, "state:write")
		reader := mint(t, s, root, "state:read")
		warm(child.Token)
		require.Equal(t, 403, status(t, s, "PUT", "/api/v1/states/warm", reader.Token, putBody)) // remembered
		resp, b = put(reader.Token, "k", putBody)
		assert.Equal(t, 403, resp.StatusCode, "remembered, without the scope: %s", b)
		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/capability-tokens/"+parent.ID, root, nil))
		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/capability-tokens/"+reader.ID, root, nil))
		resp, b = put(child.Token, "k", putBody)
		assert.Equal(t, 401, resp.StatusCode, "a revoked parent's child: %s", b)
		resp, b = put(reader.Token, "k", putBody)
		assert.Equal(t, 401, resp.StatusCode, "a revoked token without the scope: %s", b)
		assert.EqualValues(t, 1, version("k"), "nothing written")

		// An expired token is refused without being deferred.
		short := mintWith(root, map[string]any{"expires_at": core.NowMs(e.Clock) + 60_000}, "state:write")
		warm(short.Token)
		e.Clock.Advance(61 * time.Second)
		resp, b = put(short.Token, "k", putBody)
		assert.Equal(t, 401, resp.StatusCode, "expired: %s", b)
		assert.EqualValues(t, 1, version("k"), "nothing written")

		// The budget: every request counted once, the script's own refusals and a bad body
		// included, and the 429 writes nothing. The headers count down as on the long way.
		e.Clock.Advance(time.Minute) // a new window
		busy := fresh()
		warm(busy.Key) // 1
		for i := 2; i <= limit; i++ {
			body := putBody
			if i == 3 {
				body = map[string]any{"agent_id": "a", "data": 7} // a 400, counted all the same
			}
			resp, b := put(busy.Key, "busy", body)
			require.Less(t, resp.StatusCode, 500, b)
			assert.Equal(t, fmt.Sprint(limit-i), resp.Header.Get("X-RateLimit-Remaining"), "request %d: %s", i, b)
		}
		before := version("busy")
		resp, b = put(busy.Key, "busy", putBody)
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, b)
		assert.NotEmpty(t, resp.Header.Get("Retry-After"))
		assert.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))
		assert.Equal(t, before, version("busy"), "a refused write writes nothing")
		window := e.Clock.Now().Truncate(core.RateWindow).UnixMilli()
		n, err := e.Rdb.Get(context.Background(), fmt.Sprintf("as:{%s}:rl:%s:%d", s.Project.ID, busy.ID, window)).Int()
		require.NoError(t, err)
		assert.Equal(t, limit+1, n, "each request counted once")
		ttl, err := e.Rdb.PTTL(context.Background(), fmt.Sprintf("as:{%s}:rl:%s:%d", s.Project.ID, busy.ID, window)).Result()
		require.NoError(t, err)
		assert.Positive(t, ttl, "the counter expires")

		// last_used_at is still kept to the minute.
		e.Clock.Advance(2 * time.Minute)
		require.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", root, putBody))
		var keys struct{ Data []core.APIKey }
		resp, raw := send(t, "GET", s.URL+"/api/v1/keys", root, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		require.NoError(t, json.Unmarshal(raw, &keys))
		for _, k := range keys.Data {
			if k.KeyPrefix == root[:12] {
				require.NotNil(t, k.LastUsedAt)
				assert.Equal(t, core.NowMs(e.Clock), *k.LastUsedAt, "a deferred admission stamps last_used_at")
			}
		}

		// The project deleted: the remembered key is refused. Created again with the same raw
		// key, the key is a new credential with the same secret, and its write goes through.
		ctx := context.Background()
		deleted, err := e.Store.DeleteProject(ctx, s.Project.ID)
		require.NoError(t, err)
		require.True(t, deleted)
		resp, b = put(root, "k", putBody)
		assert.Equal(t, 401, resp.StatusCode, "a deleted project's key: %s", b)
		_, err = s.App.Auth.CreateProjectWithKey(ctx, core.Project{ID: s.Project.ID, Name: "again"}, root)
		require.NoError(t, err)
		resp, b = put(root, "k", putBody)
		assert.Equal(t, 200, resp.StatusCode, "the same raw key issued again: %s", b)
		assert.EqualValues(t, 1, version("k"), "a new project's first version")
	})
}

// The 2026-07-28 MCP era has no session, so a remembered credential's upsert_state is
// admitted by its write script too (one round trip, as the REST PUT), its get_state by the
// pipeline that carries the read (one round trip, as the REST GET), and every other tool or
// method settles the admission before it touches the store: a revoked credential gets the HTTP
// 401 (with WWW-Authenticate) of an unauthenticated request, whatever it called, and nothing
// is written or answered for it.
func TestModernMCPCallAdmittedByItsScript(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		e, _ = e.WithOwnClients(t) // its round-trip count sees this test's commands only
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, 1000) })
		call := func(cred, tool string, args map[string]any) (*http.Response, string) {
			t.Helper()
			return modernToolCall(t, s, cred, tool, args)
		}
		upsert := map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{"secret": "s3cr3t"}}
		key := createKey(t, newREST(s, s.Project.Key), map[string]any{"name": "m"})
		resp, b := call(key.Key, "upsert_state", upsert) // first sight: the long way
		require.Equal(t, 200, resp.StatusCode, b)
		require.NotContains(t, b, `"isError":true`)

		trips, sent := testenv.CountRoundTrips(e.Rdb), &commandNames{}
		e.Rdb.AddHook(sent)
		before := trips.Load()
		resp, b = call(key.Key, "upsert_state", upsert)
		require.Equal(t, 200, resp.StatusCode, b)
		require.NotContains(t, b, `"isError":true`)
		assert.EqualValues(t, 1, trips.Load()-before, "a modern upsert_state: one round trip, as the REST PUT: %v", sent.list())
		before = trips.Load()
		resp, b = call(key.Key, "get_state", map[string]any{"state_key": "k"})
		require.Equal(t, 200, resp.StatusCode, b)
		assert.Contains(t, b, "s3cr3t")
		assert.EqualValues(t, 1, trips.Load()-before, "a modern get_state: the read goes with the credential, as the REST GET's: %v", sent.list())
		before = trips.Load()
		resp, b = call(key.Key, "get_state", map[string]any{"state_key": "k", "at_sequence": 1})
		require.Equal(t, 200, resp.StatusCode, b)
		assert.Contains(t, b, "s3cr3t")
		assert.EqualValues(t, 2, trips.Load()-before, "time travel settles the admission, then reads its own way")

		// A remembered credential that may not read the key gets the tool's refusal, and the
		// state is not read with its credential.
		writer := mint(t, s, s.Project.Key, "state:write")
		resp, b = call(writer.Token, "get_state", map[string]any{"state_key": "k"}) // first sight
		require.Equal(t, 200, resp.StatusCode, b)
		sent.reset()
		resp, b = call(writer.Token, "get_state", map[string]any{"state_key": "k"})
		require.Equal(t, 200, resp.StatusCode, b)
		assert.Contains(t, b, `"isError":true`)
		assert.NotContains(t, b, "s3cr3t")
		assert.NotContains(t, sent.list(), "xrevrange")

		reader := mint(t, s, s.Project.Key, "state:read")
		resp, b = call(reader.Token, "get_state", map[string]any{"state_key": "k"})
		require.Equal(t, 200, resp.StatusCode, b)
		resp, b = call(reader.Token, "upsert_state", upsert)
		require.Equal(t, 200, resp.StatusCode, b)
		assert.Contains(t, b, `"isError":true`, "remembered, without the scope: the tool's refusal")

		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/keys/"+key.ID, s.Project.Key, nil))
		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/capability-tokens/"+reader.ID, s.Project.Key, nil))
		version := func() int64 {
			st, err := s.App.States.Get(context.Background(), s.Project.P, "k", core.At{})
			require.NoError(t, err)
			return st.Version
		}
		v := version()
		for _, c := range []struct {
			cred, tool string
			args       map[string]any
		}{
			{key.Key, "upsert_state", upsert},
			{key.Key, "delete_state", map[string]any{"state_key": "k"}},
			{key.Key, "get_state", map[string]any{"state_key": "k"}},
			{reader.Token, "upsert_state", upsert},
			{reader.Token, "get_state", map[string]any{"state_key": "k"}},
		} {
			resp, b := call(c.cred, c.tool, c.args)
			assert.Equal(t, 401, resp.StatusCode, "%s after revocation: %s", c.tool, b)
			assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"), c.tool)
			assert.NotContains(t, b, "s3cr3t", c.tool)
		}
		assert.Equal(t, v, version(), "nothing written or deleted")
	})
}

// modernToolCall posts a 2026-07-28 tools/call of tool to s as cred (raw JSON-RPC: the tests
// that use it count round trips or look at the HTTP answer itself).
func modernToolCall(t *testing.T, s *testenv.Server, cred, tool string, args map[string]any) (*http.Response, string) {
	t.Helper()
	meta := map[string]any{mcp.MetaKeyProtocolVersion: mcp.ProtocolVersion20260728, mcp.MetaKeyClientCapabilities: map[string]any{},
		mcp.MetaKeyClientInfo: map[string]any{"name": "contract", "version": "1"}}
	body := map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{"_meta": meta, "name": tool, "arguments": args}}
	resp, b := send(t, "POST", s.URL+"/api/mcp", cred, body, map[string]string{"Accept": "application/json, text/event-stream",
		"Mcp-Protocol-Version": mcp.ProtocolVersion20260728, "Mcp-Method": "tools/call", "Mcp-Name": tool})
	return resp, string(b)
}

// mint makes a capability token with scopes, as cred.
func mint(t *testing.T, s *testenv.Server, cred string, scopes ...string) core.CapabilityToken {
	t.Helper()
	resp, b := send(t, "POST", s.URL+"/api/v1/capability-tokens", cred, map[string]any{"name": "t", "scopes": scopes}, nil)
	require.Equal(t, 201, resp.StatusCode, string(b))
	var tok core.CapabilityToken
	require.NoError(t, json.Unmarshal(b, &tok))
	return tok
}

// The state read a remembered credential's GET carries (core.StateRead) goes out only when the
// remembered scopes and resources let it read that key: a refused request waits on no read.
func TestPrefetchedStateOnlyWhenReadable(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		e, _ = e.WithOwnClients(t) // its hook sees this test's commands only
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, 1000) })
		require.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", s.Project.Key, putBody))
		rest := newREST(s, s.Project.Key)
		sent := &commandNames{}
		e.Rdb.AddHook(sent)
		for _, c := range []struct {
			name string
			args map[string]any
			want int
			read bool
		}{
			{"reader", map[string]any{"name": "r", "scopes": []string{"state:read"}}, 200, true},
			{"write only", map[string]any{"name": "w", "scopes": []string{"state:write"}}, 403, false},
			{"other keys", map[string]any{"name": "o", "resources": []string{"other*"}}, 403, false},
		} {
			k := createKey(t, rest, c.args)
			require.Equal(t, c.want, status(t, s, "GET", "/api/v1/states/k", k.Key, nil), c.name) // remembered
			sent.reset()
			require.Equal(t, c.want, status(t, s, "GET", "/api/v1/states/k", k.Key, nil), c.name)
			assert.Equal(t, c.read, slices.Contains(sent.list(), "xrevrange"), "%s: %v", c.name, sent.list())
		}
	})
}

// A lease acquire, renew or release from a remembered credential is admitted by its own script
// too (admission_lib.lua in the lease scripts): a revoked key, a token of a revoked key, and a
// credential over its budget get nothing — no lease granted, none renewed or released, no
// waiter queued — and every request is counted once.
func TestLeaseTransitionsAdmittedByTheirScripts(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		const limit = 30
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, limit) })
		root := s.Project.Key
		acquire := func(cred, key string, body map[string]any) (*http.Response, core.Lease) {
			t.Helper()
			resp, b := send(t, "POST", s.URL+"/api/v1/states/"+key+"/lease", cred, body, nil)
			var l core.Lease
			if resp.StatusCode == 201 {
				require.NoError(t, json.Unmarshal(b, &l))
			}
			return resp, l
		}
		lease := func(id string) core.Lease {
			t.Helper()
			l, err := s.App.Store.Lease(context.Background(), s.Project.ID, id)
			require.NoError(t, err)
			require.NotNil(t, l)
			return *l
		}
		onKey := func(key string) *core.Lease {
			t.Helper()
			l, err := s.App.Store.LeaseOnKey(context.Background(), s.Project.ID, key)
			require.NoError(t, err)
			return l
		}
		key := createKey(t, newREST(s, root), map[string]any{"name": "k", "scopes": []string{"lease:write", "state:read", "keys:write"}})
		tok := mint(t, s, key.Key, "lease:write")
		for _, cred := range []string{key.Key, tok.Token} { // first sight: the long way
			resp, l := acquire(cred, "warm-"+cred[:6], map[string]any{"holder": "h"})
			require.Equal(t, 201, resp.StatusCode)
			require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/leases/"+l.ID, cred, nil))
		}
		resp, held := acquire(key.Key, "held", map[string]any{"holder": "h", "ttl_ms": 60_000})
		require.Equal(t, 201, resp.StatusCode, "remembered: admitted by the acquire script")
		resp, byTok := acquire(tok.Token, "tok", map[string]any{"holder": "h", "ttl_ms": 60_000})
		require.Equal(t, 201, resp.StatusCode)

		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/keys/"+key.ID, root, nil))
		for _, cred := range []string{key.Key, tok.Token} {
			resp, _ = acquire(cred, "free", map[string]any{"holder": "h"})
			assert.Equal(t, 401, resp.StatusCode, "acquire after revocation")
			resp, _ = acquire(cred, "held", map[string]any{"holder": "other", "wait_ms": 2000})
			assert.Equal(t, 401, resp.StatusCode, "a queued acquire after revocation")
		}
		assert.Nil(t, onKey("free"), "no lease granted")
		waiters, err := s.App.Store.LeaseWaiters(context.Background(), s.Project.ID, "held", 10)
		require.NoError(t, err)
		assert.Empty(t, waiters, "no waiter queued")
		before := lease(held.ID)
		e.Clock.Advance(time.Second)
		assert.Equal(t, 401, status(t, s, "POST", "/api/v1/leases/"+held.ID+"/renew", key.Key, map[string]any{"ttl_ms": 90_000}))
		assert.Equal(t, 401, status(t, s, "POST", "/api/v1/leases/"+byTok.ID+"/renew", tok.Token, map[string]any{"ttl_ms": 90_000}))
		assert.Equal(t, 401, status(t, s, "DELETE", "/api/v1/leases/"+held.ID, key.Key, nil))
		assert.Equal(t, 401, status(t, s, "DELETE", "/api/v1/leases/"+byTok.ID, tok.Token, nil))
		after := lease(held.ID)
		assert.Equal(t, before.ExpiresAt, after.ExpiresAt, "not renewed")
		assert.Equal(t, core.LeaseActive, after.Status, "not released")
		assert.Equal(t, core.LeaseActive, lease(byTok.ID).Status, "the token's lease not released")

		// The budget: each transition counted once; over it, 429 and nothing done.
		live := createKey(t, newREST(s, root), map[string]any{"name": "b", "scopes": []string{"lease:write"}})
		resp, l := acquire(live.Key, "budget", map[string]any{"holder": "h", "ttl_ms": 60_000}) // the long way: 1
		require.Equal(t, 201, resp.StatusCode)
		used := 1
		for used < limit {
			require.Equal(t, 200, status(t, s, "POST", "/api/v1/leases/"+l.ID+"/renew", live.Key, map[string]any{"ttl_ms": 60_000}), "request %d", used+1)
			used++
		}
		renewed := lease(l.ID).ExpiresAt
		e.Clock.Advance(time.Second)
		resp, _ = send(t, "POST", s.URL+"/api/v1/leases/"+l.ID+"/renew", live.Key, map[string]any{"ttl_ms": 60_000}, nil)
		assert.Equal(t, 429, resp.StatusCode, "over the budget")
		assert.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))
		assert.Equal(t, 429, status(t, s, "DELETE", "/api/v1/leases/"+l.ID, live.Key, nil))
		resp, _ = acquire(live.Key, "budget-2", map[string]any{"holder": "h"})
		assert.Equal(t, 429, resp.StatusCode)
		assert.Equal(t, renewed, lease(l.ID).ExpiresAt, "the refused renew renewed nothing")
		assert.Equal(t, core.LeaseActive, lease(l.ID).Status, "the refused release released nothing")
		assert.Nil(t, onKey("budget-2"), "the refused acquire granted nothing")
	})
}

// The MCP face of the same: a 2026-07-28 acquire_lease, renew_lease or release_lease from a
// remembered credential is one round trip (its script admits it), and after the key's
// revocation each gets the HTTP 401 with WWW-Authenticate, with nothing acquired, renewed or
// released.
func TestModernMCPLeaseToolsAdmittedByTheirScripts(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		e, _ = e.WithOwnClients(t) // its round-trip count sees this test's commands only
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, 1000) })
		key := createKey(t, newREST(s, s.Project.Key), map[string]any{"name": "m", "scopes": []string{"lease:write", "state:read"}})
		leaseOf := func(b string) core.Lease {
			t.Helper()
			var res struct {
				Result struct {
					StructuredContent core.Lease `json:"structuredContent"`
				} `json:"result"`
			}
			require.NoError(t, json.Unmarshal([]byte(b), &res), b)
			require.NotEmpty(t, res.Result.StructuredContent.ID, b)
			return res.Result.StructuredContent
		}
		// First sight of the credential and of each script: the long way.
		resp, b := modernToolCall(t, s, key.Key, "acquire_lease", map[string]any{"state_key": "warm", "holder": "h"})
		require.Equal(t, 200, resp.StatusCode, b)
		warm := leaseOf(b)
		for _, c := range []struct { // in this order: a released lease cannot be renewed
			tool string
			args map[string]any
		}{{"renew_lease", map[string]any{"lease_id": warm.ID, "ttl_ms": 60_000}}, {"release_lease", map[string]any{"lease_id": warm.ID}}} {
			tool := c.tool
			resp, b = modernToolCall(t, s, key.Key, tool, c.args)
			require.Equal(t, 200, resp.StatusCode, b)
			require.NotContains(t, b, `"isError":true`, tool)
		}

		trips := testenv.CountRoundTrips(e.Rdb)
		before := trips.Load()
		resp, b = modernToolCall(t, s, key.Key, "acquire_lease", map[string]any{"state_key": "k", "holder": "h", "ttl_ms": 60_000})
		require.Equal(t, 200, resp.StatusCode, b)
		held := leaseOf(b)
		assert.EqualValues(t, 1, trips.Load()-before, "acquire_lease: one round trip")
		before = trips.Load()
		resp, b = modernToolCall(t, s, key.Key, "renew_lease", map[string]any{"lease_id": held.ID, "ttl_ms": 60_000})
		require.Equal(t, 200, resp.StatusCode, b)
		require.NotContains(t, b, `"isError":true`)
		assert.EqualValues(t, 1, trips.Load()-before, "renew_lease: one round trip")

		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/keys/"+key.ID, s.Project.Key, nil))
		rec, err := s.App.Store.Lease(context.Background(), s.Project.ID, held.ID)
		require.NoError(t, err)
		e.Clock.Advance(time.Second)
		for tool, args := range map[string]map[string]any{
			"acquire_lease": {"state_key": "free", "holder": "h"},
			"renew_lease":   {"lease_id": held.ID, "ttl_ms": 90_000},
			"release_lease": {"lease_id": held.ID},
		} {
			resp, b := modernToolCall(t, s, key.Key, tool, args)
			assert.Equal(t, 401, resp.StatusCode, "%s after revocation: %s", tool, b)
			assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"), tool)
		}
		after, err := s.App.Store.Lease(context.Background(), s.Project.ID, held.ID)
		require.NoError(t, err)
		assert.Equal(t, rec.ExpiresAt, after.ExpiresAt, "not renewed")
		assert.Equal(t, core.LeaseActive, after.Status, "not released")
		free, err := s.App.Store.LeaseOnKey(context.Background(), s.Project.ID, "free")
		require.NoError(t, err)
		assert.Nil(t, free, "nothing acquired")
	})
}
