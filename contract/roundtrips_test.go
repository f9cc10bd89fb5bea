package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// A request with a credential this replica has admitted before costs one Redis round trip
// before its work (credential, revocation check and rate-limit counters in one pipeline) and
// one for the work itself, rate limit on, except a plain state GET, whose read goes in that
// same pipeline (core.StateRead), and a state PUT or DELETE, whose write script checks the
// credential itself (core.AdmissionCheck): one round trip each. Nothing of that is a cache: a revoke, of
// the key or of the key that minted a token, refuses the very next request.
func TestAuthenticatedRequestRoundTrips(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		e, _ = e.WithOwnClients(t) // its counts see this test's commands only
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, 1000) })
		key := s.Project.Key
		trips := testenv.CountRoundTrips(e.Rdb)
		create := func(path, cred string, body, out any) {
			t.Helper()
			resp, b := send(t, "POST", s.URL+path, cred, body, nil)
			require.Equal(t, 201, resp.StatusCode, string(b))
			require.NoError(t, json.Unmarshal(b, out))
		}
		roundTripsN := func(want int64, method, path, cred string, body any) {
			t.Helper()
			before := trips.Load()
			code := status(t, s, method, path, cred, body)
			require.Less(t, code, 300, "%s %s", method, path)
			assert.EqualValues(t, want, trips.Load()-before, "%s %s: round trips", method, path)
		}
		roundTrips := func(method, path, cred string, body any) { t.Helper(); roundTripsN(2, method, path, cred, body) }
		require.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", key, putBody)) // first sight: the long way
		roundTripsN(1, "PUT", "/api/v1/states/k", key, putBody)
		roundTripsN(1, "GET", "/api/v1/states/k", key, nil)
		roundTrips("GET", "/api/v1/states/k?at_sequence=1", key, nil) // time travel reads its own way
		roundTripsN(1, "DELETE", "/api/v1/states/k", key, nil)

		var minted core.CapabilityToken
		create("/api/v1/capability-tokens", key, map[string]any{"name": "t", "scopes": []string{"state:write", "state:read"}}, &minted)
		require.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", minted.Token, putBody))
		roundTripsN(1, "PUT", "/api/v1/states/k", minted.Token, putBody)
		roundTripsN(1, "GET", "/api/v1/states/k", minted.Token, nil)

		child := struct{ ID, Key string }{}
		create("/api/v1/keys", key, map[string]any{"name": "c"}, &child)
		var viaChild core.CapabilityToken
		create("/api/v1/capability-tokens", child.Key, map[string]any{"name": "t2", "scopes": []string{"state:read"}}, &viaChild)
		require.Equal(t, 200, status(t, s, "GET", "/api/v1/states/k", child.Key, nil))
		require.Equal(t, 200, status(t, s, "GET", "/api/v1/states/k", viaChild.Token, nil))
		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/keys/"+child.ID, key, nil))
		assert.Equal(t, 401, status(t, s, "GET", "/api/v1/states/k", child.Key, nil), "a revoked key is refused at once")
		assert.Equal(t, 401, status(t, s, "GET", "/api/v1/states/k", viaChild.Token, nil), "so is a token it minted")
		assert.Equal(t, 401, status(t, s, "PUT", "/api/v1/states/k", child.Key, putBody), "and a write")
	})
}

// The state read that goes out with a remembered credential (core.StateRead) is read before
// the credential is checked, so it must answer only a request that is admitted, in the
// credential's project, for the key it names: a revoked or rate-limited credential gets
// today's refusal and no data, a missing scope or resource today's 403, and time travel, another
// key or a second read in the request read the store.
func TestPrefetchedStateOnlyForAdmittedRequest(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		e, _ = e.WithOwnClients(t) // its counts see this test's commands only
		const limit = 12
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, limit) })
		secret := map[string]any{"agent_id": "a", "data": map[string]any{"secret": "s3cr3t"}}
		key := s.Project.Key
		require.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", key, secret))
		get := func(cred, path string) (int, string) {
			t.Helper()
			resp, b := send(t, "GET", s.URL+path, cred, nil, nil)
			return resp.StatusCode, string(b)
		}
		// Each credential is seen once (the long way) and then asked again (the one round trip);
		// both answers must be the same.
		twice := func(cred, path string) (int, string) {
			t.Helper()
			code, body := get(cred, path)
			again, againBody := get(cred, path)
			require.Equal(t, code, again, "first sight and remembered credential disagree")
			assert.JSONEq(t, body, againBody)
			return again, againBody
		}
		newKey := func(args map[string]any) core.APIKey { return createKey(t, newREST(s, key), args) }

		readKey := newKey(map[string]any{"name": "reader", "scopes": []string{"state:read"}})
		code, body := twice(readKey.Key, "/api/v1/states/k")
		require.Equal(t, 200, code)
		assert.Contains(t, body, "s3cr3t")

		writeOnly := newKey(map[string]any{"name": "w", "scopes": []string{"state:write"}})
		code, body = twice(writeOnly.Key, "/api/v1/states/k")
		assert.Equal(t, 403, code)
		assert.NotContains(t, body, "s3cr3t")

		limited := newKey(map[string]any{"name": "r", "resources": []string{"other*"}})
		code, body = twice(limited.Key, "/api/v1/states/k")
		assert.Equal(t, 403, code)
		assert.NotContains(t, body, "s3cr3t")

		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/keys/"+readKey.ID, key, nil))
		code, body = get(readKey.Key, "/api/v1/states/k")
		assert.Equal(t, 401, code, "a revoked key is refused on its very next GET")
		assert.NotContains(t, body, "s3cr3t")

		// Another project's key and state: a credential reads only its own project's.
		other := testenv.NewProject(t, s.App)
		_, _, err := s.App.States.Put(context.Background(), other.P, core.PutState{Key: "theirs",
			Body: core.StateWrite{AgentID: "a", Data: json.RawMessage(`{"secret":"theirs"}`)}})
		require.NoError(t, err)
		code, body = twice(key, "/api/v1/states/theirs")
		assert.Equal(t, 404, code)
		assert.NotContains(t, body, "theirs\"")

		// Time travel after the prefetch path is warm still reads history.
		require.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", key, putBody))
		code, body = get(key, "/api/v1/states/k?at_sequence=1")
		require.Equal(t, 200, code)
		assert.Contains(t, body, "s3cr3t")
		code, body = get(key, "/api/v1/states/k")
		require.Equal(t, 200, code)
		assert.NotContains(t, body, "s3cr3t")

		// A credential over its budget is refused, unread, on the one-round-trip path too.
		busy := newKey(map[string]any{"name": "busy"})
		for range limit {
			code, _ = get(busy.Key, "/api/v1/states/k")
			require.Equal(t, 200, code)
		}
		code, body = get(busy.Key, "/api/v1/states/k")
		assert.Equal(t, http.StatusTooManyRequests, code)
		assert.NotContains(t, body, `"data"`)

		// In core: the read answers only the key it was sent for, once, and no time travel.
		ctx := context.Background()
		a := testenv.NewServer(t, e).App // no rate limit
		p := testenv.NewProject(t, a)
		for _, k := range []string{"x", "y"} {
			_, _, err := a.States.Put(ctx, p.P, core.PutState{Key: k, Body: core.StateWrite{AgentID: "a", Data: json.RawMessage(`{"k":"` + k + `"}`)}})
			require.NoError(t, err)
		}
		_, _, err = a.Auth.Admit(ctx, p.Key, "", a.RateLimiter, false, core.Prefetch{StateKey: "x"}) // remember the key
		require.NoError(t, err)
		cmds := testenv.CountCommands(e.Rdb)
		pr, _, err := a.Auth.Admit(ctx, p.Key, "", a.RateLimiter, false, core.Prefetch{StateKey: "x"})
		require.NoError(t, err)
		readY, err := a.States.Get(ctx, pr, "y", core.At{})
		require.NoError(t, err)
		assert.JSONEq(t, `{"k":"y"}`, string(readY.Data), "another key reads the store")
		before := cmds.Load()
		readX, err := a.States.Get(ctx, pr, "x", core.At{})
		require.NoError(t, err)
		assert.JSONEq(t, `{"k":"x"}`, string(readX.Data))
		assert.EqualValues(t, before, cmds.Load(), "the read sent with the credential answers its key")
		_, err = a.States.Get(ctx, pr, "x", core.At{})
		require.NoError(t, err)
		assert.EqualValues(t, before+1, cmds.Load(), "once")
	})
}

// A legacy-era MCP tools/call (initialize handshake, Mcp-Session-Id) from a remembered
// credential is one round trip, as over REST: upsert_state's script checks the credential and
// the session (admission_lib.lua), get_state's read goes with both (core.MCPSessionRead), and
// either starts the session's idle time again once. Under an unknown session, or another
// credential's, nothing is written and nothing read is answered: mcp-go's 404. A 2026-07-28
// request, whose session header nothing checks, reads none.
func TestLegacyMCPCallRoundTrips(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		e, _ = e.WithOwnClients(t) // its hooks see this test's commands only
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, 1000) })
		key := s.Project.Key
		sid := legacySession(t, s, key)
		call := map[string]any{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": map[string]any{
			"name": "upsert_state", "arguments": map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{"n": 1}}}}
		mcpCall := func() {
			t.Helper()
			resp, b := send(t, "POST", s.URL+"/api/mcp", key, call, legacyHeaders(sid))
			require.Equal(t, 200, resp.StatusCode, string(b))
			require.NotContains(t, string(b), `"isError":true`)
		}
		mcpCall() // first sight of the call's script: the long way
		require.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", key, putBody))

		trips, sent := testenv.CountRoundTrips(e.Rdb), &commandNames{}
		e.Rdb.AddHook(sent)
		before := trips.Load()
		require.Equal(t, 200, status(t, s, "PUT", "/api/v1/states/k", key, putBody))
		rest := trips.Load() - before
		sessionKey := "as:{" + s.Project.ID + "}:mcpsess:" + sid
		require.NoError(t, e.Rdb.PExpire(context.Background(), sessionKey, time.Minute).Err())
		sent.reset()
		before = trips.Load()
		mcpCall()
		require.EqualValues(t, 1, rest, "the REST write")
		assert.EqualValues(t, 1, trips.Load()-before, "a legacy upsert_state: its script checks the credential and the session, as the REST PUT's")
		assert.Equal(t, []string{"evalsha"}, sent.list())
		assert.Greater(t, e.Rdb.PTTL(context.Background(), sessionKey).Val(), time.Hour, "the session's idle time started again")
		version := func() int64 {
			st, err := s.App.States.Get(context.Background(), s.Project.P, "k", core.At{})
			require.NoError(t, err)
			return st.Version
		}
		v := version()

		// get_state settles the admission with its read, and the session check goes in that
		// round trip too: one, as the REST GET. Under an unknown session, or another
		// credential's, nothing read is answered: mcp-go's 404.
		get := map[string]any{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": map[string]any{
			"name": "get_state", "arguments": map[string]any{"state_key": "k"}}}
		sent.reset()
		before = trips.Load()
		resp, b := send(t, "POST", s.URL+"/api/mcp", key, get, legacyHeaders(sid))
		require.Equal(t, 200, resp.StatusCode, string(b))
		require.NotContains(t, string(b), `"isError":true`)
		assert.Contains(t, string(b), `\"n\":1`)
		assert.EqualValues(t, 1, trips.Load()-before, "a legacy get_state: credential, session and read together: %v", sent.list())
		assert.Equal(t, 1, strings.Count(strings.Join(sent.list(), " "), "getex"), "one session check: %v", sent.list())
		other, err := s.App.Keys.CreateAPIKey(context.Background(), s.Project.P, core.CreateKeyRequest{Name: "other"})
		require.NoError(t, err)
		require.Equal(t, 200, status(t, s, "GET", "/api/v1/states/k", other.Key, nil)) // remembered from now on
		for _, c := range []struct{ name, cred, sid string }{
			{"a session never issued", key, "mcp-session-never-issued"},
			{"another credential's session", other.Key, sid},
		} {
			resp, b := send(t, "POST", s.URL+"/api/mcp", c.cred, get, legacyHeaders(c.sid))
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, "%s: %s", c.name, b)
			assert.NotContains(t, string(b), `\"n\"`, c.name)
			// A write checks its session before it writes.
			resp, b = send(t, "POST", s.URL+"/api/mcp", c.cred, call, legacyHeaders(c.sid))
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, "%s: %s", c.name, b)
		}
		assert.Equal(t, v, version(), "nothing written under those sessions")
		// A tool whose write carries no admission checks the session before it runs.
		keys := func() int {
			l, err := s.App.Keys.ListAPIKeys(context.Background(), s.Project.P)
			require.NoError(t, err)
			return len(l.Data)
		}
		n := keys()
		mintKey := map[string]any{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": map[string]any{
			"name": "create_api_key", "arguments": map[string]any{"name": "under an unknown session"}}}
		resp, b = send(t, "POST", s.URL+"/api/mcp", key, mintKey, legacyHeaders("mcp-session-never-issued"))
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, string(b))
		assert.Equal(t, n, keys(), "no key created under an unknown session")

		// A 2026-07-28 request's session header is ignored by mcp-go, so it is not read either.
		modern := map[string]string{"Accept": "application/json, text/event-stream", "Mcp-Session-Id": sid,
			"Mcp-Protocol-Version": mcp.ProtocolVersion20260728, "Mcp-Method": "tools/list"}
		list := map[string]any{"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": map[string]any{"_meta": map[string]any{
			mcp.MetaKeyProtocolVersion: mcp.ProtocolVersion20260728, mcp.MetaKeyClientCapabilities: map[string]any{},
			mcp.MetaKeyClientInfo: map[string]any{"name": "contract", "version": "1"}}}}
		sent.reset()
		resp, b = send(t, "POST", s.URL+"/api/mcp", key, list, modern)
		require.Equal(t, 200, resp.StatusCode, string(b))
		assert.NotContains(t, sent.list(), "getex")
	})
}

// legacySession opens a 2025-11-25 streamable HTTP session for key and returns its id.
func legacySession(t *testing.T, s *testenv.Server, key string) string {
	t.Helper()
	initialize := map[string]any{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": map[string]any{
		"protocolVersion": mcp.LATEST_LEGACY_PROTOCOL_VERSION, "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "contract", "version": "1"}}}
	resp, body := send(t, "POST", s.URL+"/api/mcp", key, initialize, map[string]string{"Accept": "application/json, text/event-stream"})
	require.Equal(t, 200, resp.StatusCode, string(body))
	sid := resp.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, sid)
	return sid
}

// legacyHeaders are a legacy-era request's headers in session id.
func legacyHeaders(id string) map[string]string {
	return map[string]string{"Accept": "application/json, text/event-stream", "Mcp-Session-Id": id, "MCP-Protocol-Version": mcp.LATEST_LEGACY_PROTOCOL_VERSION}
}

// A lease transition over REST from a remembered credential is one round trip: its script
// checks the credential itself (core.AdmissionCheck), acquire's goes in one pipeline with the
// sweeper's SADD, and renew and release check ownership against what the replica remembers of
// the lease (its key and owner chain never change) instead of reading the record first. A
// request refused before its script (a malformed lease id) is admitted the usual way: the auth
// pipeline.
func TestLeaseRequestRoundTrips(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		e, _ = e.WithOwnClients(t) // its counts see this test's commands only
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, 1000) })
		key := s.Project.Key
		trips, cmds := testenv.CountRoundTrips(e.Rdb), testenv.CountCommands(e.Rdb)
		acquire := func() string {
			t.Helper()
			resp, b := send(t, "POST", s.URL+"/api/v1/states/k/lease", key, map[string]any{"holder": "h"}, nil)
			require.Equal(t, 201, resp.StatusCode, string(b))
			var l core.Lease
			require.NoError(t, json.Unmarshal(b, &l))
			return l.ID
		}
		// First sight of the key and of each script: the long way.
		id := acquire()
		require.Equal(t, 200, status(t, s, "POST", "/api/v1/leases/"+id+"/renew", key, nil))
		require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/leases/"+id, key, nil))

		// A malformed lease id is refused after authentication, before any store work.
		before := cmds.Load()
		require.Equal(t, 400, status(t, s, "POST", "/api/v1/leases/not.an.id/renew", key, nil))
		auth := cmds.Load() - before

		require.Positive(t, auth, "the 400 settled its admission")
		count := func(what string, wantScriptCmds int64, do func()) {
			t.Helper()
			t0, c0 := trips.Load(), cmds.Load()
			do()
			assert.EqualValues(t, 1, trips.Load()-t0, "%s: round trips", what)
			assert.EqualValues(t, wantScriptCmds, cmds.Load()-c0, "%s: commands", what)
		}
		count("acquire", 2, func() { id = acquire() })
		count("renew", 1, func() { require.Equal(t, 200, status(t, s, "POST", "/api/v1/leases/"+id+"/renew", key, nil)) })
		count("release", 1, func() { require.Equal(t, 204, status(t, s, "DELETE", "/api/v1/leases/"+id, key, nil)) })
	})
}

// A query that its index alone decides (no data predicate, no time bounds, at most the one tag
// or agent the index is of) reads about limit records per page, not QueryPageFactor times as
// many; one that must filter still finds its matches further down.
func TestQueryReadsOnlyWhatThePageNeeds(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		e, _ = e.WithOwnClients(t) // its counts see this test's commands only
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ctx := context.Background()
		for i := range 120 {
			tags := []string{"all"}
			if i%40 == 0 {
				tags = append(tags, "rare")
			}
			_, _, err := a.States.Put(ctx, p.P, core.PutState{Key: fmt.Sprintf("k%03d", i), Body: core.StateWrite{
				AgentID: "a", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), Tags: tags}})
			require.NoError(t, err)
		}
		cmds := testenv.CountCommands(e.Rdb)
		limit := 10
		for _, q := range []core.StateQuery{{}, {Tags: []string{"all"}}, {AgentID: "a"}} {
			q.Limit = &limit
			before := cmds.Load()
			page, err := a.States.Query(ctx, p.P, q)
			require.NoError(t, err)
			assert.Len(t, page.Data, limit)
			assert.LessOrEqual(t, cmds.Load()-before, int64(limit+3), "%+v: records read for a page of %d", q, limit)
		}
		q := core.StateQuery{Tags: []string{"all", "rare"}, Limit: &limit}
		page, err := a.States.Query(ctx, p.P, q)
		require.NoError(t, err)
		assert.Len(t, page.Data, 3, "a filtered query still scans past non-matches")
	})
}

// A rate counter costs one INCR per request once this replica has set its expiry in the
// window (not INCR + PEXPIRE), and still never lives without an expiry: every replica's
// first count in a window sets it, and a count that finds its counter gone (removed with
// the project, or by hand) sets it again.
func TestRateCountersAlwaysExpire(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		e, _ = e.WithOwnClients(t) // its hook sees this test's commands only
		limited := func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, 1000) }
		a, b := testenv.NewServer(t, e, limited), testenv.NewServer(t, e, limited) // two replicas
		key, ctx := a.Project.Key, context.Background()
		sent := &commandNames{}
		e.Rdb.AddHook(sent)
		counters := func() []string {
			var out []string
			for _, k := range e.ProjectKeys(t, a.Project.ID) {
				if strings.Contains(k, ":rl:") {
					out = append(out, k)
				}
			}
			require.NotEmpty(t, out)
			return out
		}
		get := func(s *testenv.Server) {
			t.Helper()
			require.Equal(t, 200, status(t, s, "GET", "/api/v1/leases", key, nil))
			for _, k := range counters() {
				assert.Positive(t, e.Rdb.PTTL(ctx, k).Val(), "%s has no expiry", k)
			}
		}
		for _, s := range []*testenv.Server{a, b, a, b} {
			get(s)
		}
		sent.reset()
		get(a)
		get(b)
		assert.NotContains(t, sent.list(), "pexpire", "a replica sets a counter's expiry once per window")

		require.NoError(t, e.Rdb.Del(ctx, counters()...).Err())
		get(a)
		get(b)
		sent.reset()
		e.Clock.Advance(time.Minute)
		get(a)
		assert.Contains(t, sent.list(), "pexpire", "a new window, a new counter")
	})
}

// commandNames records the names of the commands a client sends.
type commandNames struct {
	mu    sync.Mutex
	names []string
}

func (h *commandNames) add(cmds ...redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cmds {
		h.names = append(h.names, c.Name())
	}
}

func (h *commandNames) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.names)
}

func (h *commandNames) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names = nil
}

func (h *commandNames) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *commandNames) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.add(cmd); return next(ctx, cmd) }
}
func (h *commandNames) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.add(cmds...); return next(ctx, cmds) }
}
