package contract

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// TestLeaseWaitersREST: GET /api/v1/states/{key}/lease/waiters lists who queues for a key, front
// first, with the agent a bound token's waiter acts for; a served waiter leaves the list, and a
// token without the key among its resources may not look.
func TestLeaseWaitersREST(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		f := newREST(s, s.Project.Key)
		first := acquire(t, f, "q", "holder")
		bot := mintToken(t, f, map[string]any{"name": "bot", "scopes": []string{"lease:write", "state:read"}, "agent_id": "bot-9"})
		waiters := func() []core.LeaseWaiter {
			resp, body := send(t, "GET", s.URL+"/api/v1/states/q/lease/waiters", s.Project.Key, nil, nil)
			require.Equal(t, 200, resp.StatusCode, string(body))
			var l core.LeaseWaiterList
			require.NoError(t, json.Unmarshal(body, &l))
			return l.Data
		}
		assert.Empty(t, waiters())
		served := make(chan core.Lease, 2)
		for i, w := range []struct{ key, holder string }{{s.Project.Key, "w1"}, {bot.Token, "bot-9"}} {
			go func() {
				resp, body, err := trySend("POST", s.URL+"/api/v1/states/q/lease", w.key, map[string]any{"holder": w.holder, "wait_ms": 20000}, nil)
				var l core.Lease
				if err == nil && resp.StatusCode == 201 {
					_ = json.Unmarshal(body, &l)
				}
				served <- l
			}()
			require.Eventually(t, func() bool { return len(waiters()) == i+1 }, 10*time.Second, 5*time.Millisecond, "waiter %d queued", i)
		}
		ws := waiters()
		require.Len(t, ws, 2)
		assert.Equal(t, core.LeaseWaiter{Position: 1, Holder: "w1", WaitsUntil: ws[0].WaitsUntil}, ws[0])
		assert.Equal(t, core.LeaseWaiter{Position: 2, Holder: "bot-9", AgentID: "bot-9", WaitsUntil: ws[1].WaitsUntil}, ws[1])
		assert.Greater(t, ws[0].WaitsUntil, time.Now().UnixMilli(), "a waiter's deadline is ahead")

		ok(t, f.Call(t, "release_lease", map[string]any{"lease_id": first.ID}))
		l := <-served
		assert.Equal(t, "w1", l.Holder)
		require.Eventually(t, func() bool { ws := waiters(); return len(ws) == 1 && ws[0].Holder == "bot-9" && ws[0].Position == 1 },
			5*time.Second, 5*time.Millisecond, "the served waiter left the queue")
		ok(t, f.Call(t, "release_lease", map[string]any{"lease_id": l.ID}))
		assert.Equal(t, "bot-9", (<-served).AgentID)
		assert.Empty(t, waiters())

		other := mintToken(t, f, map[string]any{"name": "other", "scopes": []string{"state:read"}, "resources": []string{"elsewhere/*"}})
		assert.Equal(t, http.StatusForbidden, status(t, s, "GET", "/api/v1/states/q/lease/waiters", other.Token, nil))
	})
}

// TestUsageREST: GET /api/v1/usage counts the project's open watch streams and reads each live
// credential's request counts from the rate limiter (a token's requests count for its minting
// key too); capability tokens may not call it, and another project's watchers are not counted.
func TestUsageREST(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e, func(a *app.App) { a.RateLimiter = core.NewRateLimiter(e.Store, e.Clock, 1000) })
		f := newREST(s, s.Project.Key)
		tok := mintToken(t, f, map[string]any{"name": "reader", "scopes": []string{"state:read", "state:watch"}, "agent_id": "r-1"})
		for range 3 {
			send(t, "GET", s.URL+"/api/v1/states/nothing", tok.Token, nil, nil)
		}
		usage := func(key string) (int, core.UsageReport) {
			resp, body := send(t, "GET", s.URL+"/api/v1/usage", key, nil, nil)
			var u core.UsageReport
			if resp.StatusCode == 200 {
				require.NoError(t, json.Unmarshal(body, &u))
			}
			return resp.StatusCode, u
		}
		code, u := usage(s.Project.Key)
		require.Equal(t, 200, code)
		assert.EqualValues(t, 1000, u.RateLimit)
		assert.Zero(t, u.WatchersConnected)
		byID := map[string]core.CredentialUsage{}
		for _, c := range u.Credentials {
			byID[c.ID] = c
		}
		require.Contains(t, byID, tok.ID)
		assert.EqualValues(t, 3, byID[tok.ID].Requests, "the token's own requests")
		assert.Equal(t, "reader", byID[tok.ID].Name)
		require.NotNil(t, byID[tok.ID].AgentID)
		assert.Equal(t, "r-1", *byID[tok.ID].AgentID)
		assert.Equal(t, core.KindCapabilityToken, byID[tok.ID].Kind)
		require.Contains(t, byID, s.Project.P.CredentialID)
		// The key's own calls (mint, this usage read) plus the token's three.
		assert.GreaterOrEqual(t, byID[s.Project.P.CredentialID].Requests, int64(5))

		code, _ = usage(tok.Token)
		assert.Equal(t, http.StatusUnauthorized, code, "a capability token may not read usage")

		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/v1/states/watch", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.Eventually(t, func() bool { _, u := usage(s.Project.Key); return u.WatchersConnected == 1 }, 5*time.Second, 10*time.Millisecond)
		otherProject := testenv.NewProject(t, s.App)
		_, u = usage(otherProject.Key)
		assert.Zero(t, u.WatchersConnected, "another project's watch is not counted")
		cancel()
		require.Eventually(t, func() bool { _, u := usage(s.Project.Key); return u.WatchersConnected == 0 }, 5*time.Second, 10*time.Millisecond)
	})
}
