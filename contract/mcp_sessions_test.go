package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/tools"
)

// mcpClient connects mcp-go's client over streamable HTTP (with the GET stream) or SSE.
func mcpClient(t *testing.T, s *testenv.Server, kind, key string) (*client.Client, chan string) {
	t.Helper()
	hdr := map[string]string{"Authorization": "Bearer " + key}
	var c *client.Client
	var err error
	if kind == "sse" {
		c, err = client.NewSSEMCPClient(s.URL+"/api/mcp/sse", transport.WithHeaders(hdr))
	} else {
		c, err = client.NewStreamableHttpClient(s.URL+"/api/mcp", transport.WithHTTPHeaders(hdr), transport.WithContinuousListening())
	}
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(func() { cancel(); _ = c.Close() })
	require.NoError(t, c.Start(ctx))
	notes := make(chan string, 100)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		b, _ := json.Marshal(n.Params)
		notes <- n.Method + " " + string(b)
	})
	var init mcp.InitializeRequest
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "contract", Version: "1"}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	return c, notes
}

// TestMCPRevocationMidSession, on streamable HTTP and SSE: a subscription delivers, then the
// credential is revoked; its subscription stops delivering and its next requests are refused.
func TestMCPRevocationMidSession(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		for _, kind := range []string{"http", "sse"} {
			t.Run(kind, func(t *testing.T) {
				s := testenv.NewServer(t, e)
				ctx := context.Background()
				key, err := s.App.Keys.CreateAPIKey(ctx, s.Project.P, core.CreateKeyRequest{Name: "victim"})
				require.NoError(t, err)
				c, notes := mcpClient(t, s, kind, key.Key)
				write := func(n int) {
					_, _, err := s.App.States.Put(ctx, s.Project.P, core.PutState{Key: "w", Body: core.StateWrite{AgentID: "x", Data: json.RawMessage(`{"n":` + string(rune('0'+n)) + `}`)}})
					require.NoError(t, err)
				}
				write(1)
				uri := "agentstate://states/w"
				require.NoError(t, c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: uri}}))
				require.NoError(t, c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: uri}}), "subscribing twice is safe")
				// The GET stream may open just after the subscription: write until one arrives.
				deadline := time.Now().Add(10 * time.Second)
			wait:
				for n := 2; ; n++ {
					write(n % 10)
					select {
					case note := <-notes:
						require.Contains(t, note, "notifications/resources/updated")
						break wait
					case <-time.After(500 * time.Millisecond):
						require.True(t, time.Now().Before(deadline), "no notifications/resources/updated on %s", kind)
					}
				}
				require.NoError(t, s.App.Keys.RevokeAPIKey(ctx, s.Project.P, key.ID))
				for len(notes) > 0 {
					<-notes
				}
				write(9)
				select {
				case note := <-notes:
					t.Fatalf("%s: a revoked credential's subscription still delivers: %s", kind, note)
				case <-time.After(1500 * time.Millisecond):
				}
				_, err = c.ListTools(ctx, mcp.ListToolsRequest{})
				assert.Error(t, err, "%s: tools/list after revocation", kind)
				_, err = c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "get_state", Arguments: map[string]any{"state_key": "w"}}})
				assert.Error(t, err, "%s: tools/call after revocation", kind)
			})
		}
	})
}

// TestMCPToolListBudgetAndToolsets: tools/list over HTTP for a full-access key fits 6,000
// tokens (bytes/4) with every tool; ?toolsets= narrows it; whoami is always there.
func TestMCPToolListBudgetAndToolsets(t *testing.T) {
	e := testenv.Stores[1].Open(t)
	s := testenv.NewServer(t, e)
	n, names := listWithPath(t, s, "/api/mcp")
	assert.Len(t, names, len(tools.Inventory()), "a full-access key sees every tool")
	assert.Less(t, n, 6000*4, "tools/list is %d bytes ≈ %d tokens", n, n/4)
	t.Logf("tools/list for a full-access key: %d tools, %d bytes ≈ %d tokens", len(names), n, n/4)

	tok := mintToken(t, newMCP(s, s.Project.Key), map[string]any{"name": "st", "scopes": []string{"state:read", "state:write"}})
	fst := &mcpFace{base: s.URL, key: tok.Token}
	raw := fst.rpc(t, "tools/list", map[string]any{})
	t.Logf("tools/list result for a state-only token: %d bytes ≈ %d tokens", len(raw), len(raw)/4)

	_, names = listWithPath(t, s, "/api/mcp?toolsets=states,leases")
	assert.Contains(t, names, "whoami")
	assert.Contains(t, names, "acquire_lease")
	assert.Contains(t, names, "upsert_state")
	assert.NotContains(t, names, "create_claim")
	assert.NotContains(t, names, "mint_capability_token")
}

func listWithPath(t *testing.T, s *testenv.Server, path string) (int, []string) {
	t.Helper()
	resp, out := send(t, "POST", s.URL+path, s.Project.Key, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": map[string]any{}}, nil)
	require.Equal(t, 200, resp.StatusCode, string(out))
	var msg struct {
		Result struct{ Tools []struct{ Name string } }
	}
	require.NoError(t, json.Unmarshal(out, &msg))
	var names []string
	for _, tl := range msg.Result.Tools {
		names = append(names, tl.Name)
	}
	return len(out), names
}

// TestWaitForStateChangeProgress: a client that sends a progressToken gets
// notifications/progress while the call waits; the limit is 50 s.
func TestWaitForStateChangeProgress(t *testing.T) {
	e := testenv.Stores[1].Open(t)
	s := testenv.NewServer(t, e)
	c, notes := mcpClient(t, s, "http", s.Project.Key)
	req := mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "wait_for_state_change",
		Arguments: map[string]any{"state_key": "quiet", "after_version": 0, "timeout_ms": 11000},
		Meta:      &mcp.Meta{ProgressToken: "p1"}}}
	res, err := c.CallTool(context.Background(), req)
	require.NoError(t, err)
	assert.False(t, res.IsError)
	got := false
	for len(notes) > 0 {
		if n := <-notes; strings.HasPrefix(n, "notifications/progress") && strings.Contains(n, `"p1"`) {
			got = true
		}
	}
	assert.True(t, got, "no notifications/progress during an 11 s wait with a progressToken")

	f := newMCP(s, s.Project.Key)
	fails(t, f.Call(t, "wait_for_state_change", map[string]any{"state_key": "quiet", "after_version": 0, "timeout_ms": 50001}), core.CodeBadRequest, "")
}

// TestIdentityFromCredential: a bound token's writes, leases and deletes are its agent's, an
// argument naming another agent is refused, and whoami says who the caller is.
func TestIdentityFromCredential(t *testing.T) {
	forEachFace(t, func(t *testing.T, f Face, s *testenv.Server, e *testenv.Env) {
		tok := mintToken(t, f, map[string]any{"name": "w7", "scopes": []string{"state:write", "state:read", "lease:write"}, "agent_id": "worker-7"})
		bot := as(f, s, tok.Token)
		var l core.Lease
		mustOK(t, bot.Call(t, "acquire_lease", map[string]any{"state_key": "job", "holder": "worker-7"})).Decode(t, &l)
		assert.Equal(t, "worker-7", l.Holder)
		expectErr(t, bot.Call(t, "acquire_lease", map[string]any{"state_key": "job2", "holder": "pretend-admin"}), core.CodeForbidden, "This credential is bound to agent worker-7")
		if f.Name() == "mcp" {
			mustOK(t, bot.Call(t, "acquire_lease", map[string]any{"state_key": "job3"})).Decode(t, &l)
			assert.Equal(t, "worker-7", l.Holder, "holder defaults to the bound agent")
		}
		mustOK(t, f.Call(t, "upsert_state", map[string]any{"state_key": "d", "agent_id": "someone", "data": map[string]any{}}))
		var del core.DeleteResult
		mustOK(t, bot.Call(t, "delete_state", map[string]any{"state_key": "d"})).Decode(t, &del)
		assert.Equal(t, "worker-7", del.Event.AgentID, "a delete is recorded under the deleting agent")

		if f.Name() == "mcp" {
			var w tools.Whoami
			mustOK(t, bot.Call(t, "whoami", map[string]any{})).Decode(t, &w)
			assert.Equal(t, s.Project.ID, w.ProjectID)
			assert.Equal(t, "capability_token", w.CredentialKind)
			assert.Equal(t, tok.ID, w.CredentialID)
			assert.Equal(t, "w7", w.CredentialName)
			assert.Equal(t, "worker-7", w.AgentID)
			require.NotNil(t, w.BoundAgentID)
			assert.ElementsMatch(t, []string{"state:write", "state:read", "lease:write"}, w.Scopes)
			assert.Equal(t, 0, w.Depth, "minted by an API key")
		}
	})
}

// TestMCPSessionIDs: over streamable HTTP, a session id initialize issued is served (on another
// replica too); an id never issued, one another credential opened, or one idle past its time
// gets 404 on POST and on the GET stream; a request with no id is v1's stateless POST.
func TestMCPSessionIDs(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		const idle = 1500 * time.Millisecond
		short := func(a *app.App) { a.HTTP.MCPSessionIdle = idle }
		s := testenv.NewServer(t, e, short)
		replica := testenv.NewServer(t, e, short) // another replica over the same store
		list := map[string]any{"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": map[string]any{}}
		hdr := legacyHeaders
		sid := legacySession(t, s, s.Project.Key)

		post := func(base, key, id string) int {
			resp, _ := send(t, "POST", base+"/api/mcp", key, list, hdr(id))
			return resp.StatusCode
		}
		getStream := func(key, id string) int {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/mcp", nil)
			for k, v := range hdr(id) {
				req.Header.Set(k, v)
			}
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			return resp.StatusCode
		}
		assert.Equal(t, 200, post(s.URL, s.Project.Key, sid))
		assert.Equal(t, 200, post(replica.URL, s.Project.Key, sid), "any replica serves the session")
		assert.Equal(t, 200, post(s.URL, s.Project.Key, ""), "no session id: v1's stateless POST")
		assert.Equal(t, http.StatusNotFound, post(s.URL, s.Project.Key, "mcp-session-never-issued"))
		assert.Equal(t, http.StatusNotFound, getStream(s.Project.Key, "mcp-session-never-issued"), "the GET stream too")
		other, err := s.App.Keys.CreateAPIKey(context.Background(), s.Project.P, core.CreateKeyRequest{Name: "other"})
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, post(s.URL, other.Key, sid), "another credential may not use the session")
		// Remembered credentials read the session with the credential (core.MCPSessionRead):
		// the same refusals, and a refused credential learns nothing either.
		assert.Equal(t, http.StatusNotFound, post(s.URL, other.Key, sid), "nor once remembered")
		assert.Equal(t, http.StatusNotFound, post(s.URL, s.Project.Key, "mcp-session-never-issued"), "remembered, never issued")
		assert.Equal(t, http.StatusNotFound, getStream(other.Key, sid), "nor its GET stream")
		elsewhere := testenv.NewProject(t, s.App)
		assert.Equal(t, 200, post(s.URL, elsewhere.Key, ""))
		assert.Equal(t, http.StatusNotFound, post(s.URL, elsewhere.Key, sid), "nor another project's credential")
		revoked, err := s.App.Keys.CreateAPIKey(context.Background(), s.Project.P, core.CreateKeyRequest{Name: "revoked"})
		require.NoError(t, err)
		rsid := legacySession(t, s, revoked.Key)
		assert.Equal(t, 200, post(s.URL, revoked.Key, rsid))
		require.NoError(t, s.App.Keys.RevokeAPIKey(context.Background(), s.Project.P, revoked.ID))
		resp, body := send(t, "POST", s.URL+"/api/mcp", revoked.Key, list, hdr(rsid))
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a revoked credential with its own live session")
		assert.NotContains(t, string(body), rsid)
		assert.Equal(t, 200, getStream(s.Project.Key, sid), "the issued session opens its GET stream")

		time.Sleep(idle / 2)
		assert.Equal(t, 200, post(s.URL, s.Project.Key, sid), "a request keeps the session alive")
		if e.Mini != nil {
			e.Mini.FastForward(2 * idle)
		} else {
			time.Sleep(idle + 500*time.Millisecond)
		}
		assert.Equal(t, http.StatusNotFound, post(s.URL, s.Project.Key, sid), "an expired session")
	})
}

// TestMCPModernSubscriptionsListen: a 2026-07-28 client (mcp-go's, which negotiates it through
// server/discover; the official TypeScript SDK 1.32 speaks only up to 2025-11-25) calls tools
// without initialize, opens subscriptions/listen for a state, is acknowledged, and gets
// resources/updated on that stream; the stream ends delivering once the credential is revoked;
// a missing resource is still -32002. SSE stays on the revisions it supports.
func TestMCPModernSubscriptionsListen(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		key, err := s.App.Keys.CreateAPIKey(ctx, s.Project.P, core.CreateKeyRequest{Name: "modern"})
		require.NoError(t, err)
		c, err := client.NewStreamableHttpClient(s.URL+"/api/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + key.Key}))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Start(ctx))
		notes := make(chan mcp.JSONRPCNotification, 100)
		c.OnNotification(func(n mcp.JSONRPCNotification) { notes <- n })
		var init mcp.InitializeRequest
		init.Params.ClientInfo = mcp.Implementation{Name: "contract-modern", Version: "1"}
		_, err = c.Initialize(ctx, init)
		require.NoError(t, err)
		require.Equal(t, mcp.ProtocolVersion20260728, c.ProtocolVersion(), "streamable HTTP speaks 2026-07-28")

		res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "upsert_state",
			Arguments: map[string]any{"state_key": "m", "agent_id": "a", "data": map[string]any{"n": 1}}}})
		require.NoError(t, err)
		require.False(t, res.IsError, "%v", res.Content)

		uri := "agentstate://states/m"
		stop, err := c.ListenAsync(ctx, mcp.SubscriptionFilter{ResourceSubscriptions: []string{uri}}, nil)
		require.NoError(t, err)
		defer stop()
		next := func(method string) mcp.JSONRPCNotification {
			t.Helper()
			for {
				select {
				case n := <-notes:
					if n.Method == method {
						return n
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("no %s", method)
				}
			}
		}
		ack := next(mcp.MethodNotificationSubscriptionsAcknowledged)
		assert.Contains(t, fmt.Sprint(ack.Params.AdditionalFields["notifications"]), uri, "the acknowledgement names the subscription")
		_, _, err = s.App.States.Put(ctx, s.Project.P, core.PutState{Key: "m", Body: core.StateWrite{AgentID: "x", Data: json.RawMessage(`{"n":2}`)}})
		require.NoError(t, err)
		up := next(mcp.MethodNotificationResourceUpdated)
		assert.Equal(t, uri, up.Params.AdditionalFields["uri"])

		_, err = c.ReadResource(ctx, mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: "agentstate://states/missing"}})
		assert.ErrorIs(t, err, mcp.ErrResourceNotFound, "-32002") // mcp-go's client maps the code to this error

		require.NoError(t, s.App.Keys.RevokeAPIKey(ctx, s.Project.P, key.ID))
		_, _, err = s.App.States.Put(ctx, s.Project.P, core.PutState{Key: "m", Body: core.StateWrite{AgentID: "x", Data: json.RawMessage(`{"n":3}`)}})
		require.NoError(t, err)
		deadline := time.After(1500 * time.Millisecond)
		for done := false; !done; {
			select {
			case n := <-notes:
				assert.NotEqual(t, mcp.MethodNotificationResourceUpdated, n.Method, "a revoked credential's subscription still delivers")
			case <-deadline:
				done = true
			}
		}
	})
}

// TestMCPModernHeadersMustMatchBody: a 2026-07-28 request whose Mcp-Method or Mcp-Name header
// is missing or disagrees with its body is refused with HEADER_MISMATCH and does nothing, on
// tools/call and resources/read alike; the same request with matching headers is served. (The
// server checks the headers once itself and leaves a mismatch to mcp-go: tools/headers.go.)
func TestMCPModernHeadersMustMatchBody(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		meta := map[string]any{mcp.MetaKeyProtocolVersion: mcp.ProtocolVersion20260728, mcp.MetaKeyClientCapabilities: map[string]any{},
			mcp.MetaKeyClientInfo: map[string]any{"name": "contract", "version": "1"}}
		call := func(key string) map[string]any {
			return map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{"_meta": meta,
				"name": "upsert_state", "arguments": map[string]any{"state_key": key, "agent_id": "a", "data": map[string]any{"n": 1}}}}
		}
		read := map[string]any{"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": map[string]any{"_meta": meta, "uri": "agentstate://states/ok"}}
		hdr := func(method, name string) map[string]string {
			h := map[string]string{"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": mcp.ProtocolVersion20260728, "Mcp-Method": method}
			if name != "" {
				h["Mcp-Name"] = name
			}
			return h
		}
		for _, c := range []struct {
			name string
			hdr  map[string]string
		}{
			{"other tool in Mcp-Name", hdr("tools/call", "delete_state")},
			{"no Mcp-Name", hdr("tools/call", "")},
			{"other method in Mcp-Method", hdr("tools/list", "upsert_state")},
			{"no Mcp-Method", map[string]string{"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": mcp.ProtocolVersion20260728, "Mcp-Name": "upsert_state"}},
		} {
			resp, body := send(t, "POST", s.URL+"/api/mcp", s.Project.Key, call("refused"), c.hdr)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", c.name, body)
			assert.Contains(t, string(body), fmt.Sprint(mcp.HEADER_MISMATCH), c.name)
		}
		_, err := s.App.States.Get(context.Background(), s.Project.P, "refused", core.At{})
		assert.True(t, core.IsCode(err, core.CodeNotFound), "a refused call wrote nothing: %v", err)

		resp, body := send(t, "POST", s.URL+"/api/mcp", s.Project.Key, call("ok"), hdr("tools/call", "upsert_state"))
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.NotContains(t, string(body), `"isError":true`)
		resp, body = send(t, "POST", s.URL+"/api/mcp", s.Project.Key, read, hdr("resources/read", "agentstate://states/other"))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
		assert.Contains(t, string(body), fmt.Sprint(mcp.HEADER_MISMATCH))
		resp, body = send(t, "POST", s.URL+"/api/mcp", s.Project.Key, read, hdr("resources/read", "agentstate://states/ok"))
		assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Contains(t, string(body), `\"n\":1`, "the state the matching call wrote")
	})
}
