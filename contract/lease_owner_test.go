package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// leaseRoles are the credentials of the ownership matrix. The acquirer is a token in the middle
// of a delegation chain: full key → parent token → acquirer → child token.
type leaseRoles struct {
	acquirer, child, parent, full, unrelated, reader string
}

func newLeaseRoles(t *testing.T, s *testenv.Server) leaseRoles {
	ctx, a := context.Background(), s.App
	work := []string{core.ScopeLeaseWrite, core.ScopeStateWrite, core.ScopeStateRead}
	mint := func(by string, scopes []string, depth int) string {
		p := s.Project.P
		if by != "" {
			var err error
			p, err = a.Auth.Authenticate(ctx, by)
			require.NoError(t, err)
		}
		tok, err := a.Keys.MintToken(ctx, p, core.MintTokenRequest{Name: "role", Scopes: scopes, MaxDepth: &depth})
		require.NoError(t, err)
		return tok.Token
	}
	parent := mint("", work, 2)
	acquirer := mint(parent, work, 1)
	return leaseRoles{
		acquirer: acquirer, parent: parent, full: s.Project.Key,
		child:     mint(acquirer, work, 0),
		unrelated: mint("", work, 0),
		reader:    mint("", []string{core.ScopeStateRead}, 0),
	}
}

// TestLeaseOwnershipMatrix: renew, release and writes under a lease belong to the credential
// that acquired it, its delegation ancestors and full-access keys; every other credential gets
// 403 (with lease:write: the ownership message), and listings show it the lease without its id.
func TestLeaseOwnershipMatrix(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		roles := newLeaseRoles(t, s)
		cases := []struct {
			name, cred string
			owner      bool
			denied     string // the message a non-owner gets ("" = the scope message)
		}{
			{"acquirer", roles.acquirer, true, ""},
			{"child of acquirer", roles.child, false, core.MsgLeaseNotYours},
			{"parent of acquirer", roles.parent, true, ""},
			{"full-access key", roles.full, true, ""},
			{"unrelated lease:write token", roles.unrelated, false, core.MsgLeaseNotYours},
			{"state:read token", roles.reader, false, ""},
		}
		n := 0
		for _, mk := range []func(*testenv.Server, string) Face{newREST, newMCP} {
			owner := mk(s, roles.acquirer)
			fresh := func(t *testing.T) core.Lease {
				n++
				return acquire(t, owner, fmt.Sprintf("job/%d", n), "worker")
			}
			for _, c := range cases {
				f := mk(s, c.cred)
				t.Run(f.Name()+"/"+c.name, func(t *testing.T) {
					check := func(r Result) {
						t.Helper()
						if c.owner {
							ok(t, r)
							return
						}
						fails(t, r, core.CodeForbidden, c.denied)
					}
					l := fresh(t)
					check(f.Call(t, "renew_lease", map[string]any{"lease_id": l.ID}))
					l = fresh(t)
					check(f.Call(t, "upsert_state", map[string]any{"state_key": l.StateKey, "agent_id": "x",
						"data": map[string]any{"v": 1}, "lease_id": l.ID, "fencing_token": l.FencingToken}))
					l = fresh(t)
					check(f.Call(t, "release_lease", map[string]any{"lease_id": l.ID}))
					if !c.owner {
						ok(t, owner.Call(t, "release_lease", map[string]any{"lease_id": l.ID})) // a refused release changed nothing
					}

					// Listings: holder, token and expiry for every reader; the id only for owners.
					l = fresh(t)
					var page core.LeasePage
					ok(t, f.Call(t, "list_leases", map[string]any{"limit": 100})).Decode(t, &page)
					var seen *core.Lease
					for i := range page.Data {
						if page.Data[i].StateKey == l.StateKey {
							seen = &page.Data[i]
						}
					}
					require.NotNil(t, seen, "the lease is listed to every reader")
					assert.Equal(t, l.Holder, seen.Holder)
					assert.Equal(t, l.FencingToken, seen.FencingToken)
					assert.Equal(t, l.ExpiresAt, seen.ExpiresAt)
					var onKey core.Lease
					ok(t, f.Call(t, "get_lease", map[string]any{"state_key": l.StateKey})).Decode(t, &onKey)
					if c.owner {
						assert.Equal(t, l.ID, seen.ID)
						assert.Equal(t, l.ID, onKey.ID)
					} else {
						assert.Empty(t, seen.ID, "a non-owner does not see the lease id in a listing")
						assert.Empty(t, onKey.ID, "nor when looking the key up")
					}
				})
			}
		}
		// The lease event log hides ids the same way.
		acquire(t, newREST(s, roles.acquirer), "evlog", "worker")
		resp, body := send(t, "GET", s.URL+"/api/v1/leases/events?limit=500", roles.unrelated, nil, nil)
		require.Equal(t, 200, resp.StatusCode, "%s", body)
		var evs core.LeaseEventPage
		require.NoError(t, json.Unmarshal(body, &evs))
		require.NotEmpty(t, evs.Data)
		for _, ev := range evs.Data {
			assert.Empty(t, ev.LeaseID, "event %s shows a lease id to a non-owner", ev.ID)
		}
	})
}

// An agent-bound credential need not name a holder: it defaults to the bound agent, and the
// lease records the agent.
func TestLeaseHolderDefaultsToBoundAgent(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		tok, err := s.App.Keys.MintToken(context.Background(), s.Project.P, core.MintTokenRequest{Name: "bound",
			Scopes: []string{core.ScopeLeaseWrite, core.ScopeStateRead}, AgentID: "planner"})
		require.NoError(t, err)
		for _, mk := range []func(*testenv.Server, string) Face{newREST, newMCP} {
			f := mk(s, tok.Token)
			var l core.Lease
			ok(t, f.Call(t, "acquire_lease", map[string]any{"state_key": "bound/" + f.Name()})).Decode(t, &l)
			assert.Equal(t, "planner", l.Holder)
			assert.Equal(t, "planner", l.AgentID)
			fails(t, newREST(s, s.Project.Key).Call(t, "acquire_lease", map[string]any{"state_key": "unbound/" + f.Name()}),
				core.CodeBadRequest, "")
		}
	})
}

// TestLeaseUseAnswersAlikeOnEveryReplica: renew and release check a lease against what the
// replica remembers of it when it acquired it, and against its record elsewhere; every caller
// gets the same answer either way: the owner succeeds, a credential barred from the key gets
// the key's 403, one outside the owner chain the ownership 403, a released lease is 404.
func TestLeaseUseAnswersAlikeOnEveryReplica(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		ctx := context.Background()
		knows := e.App(t)
		p := testenv.NewProject(t, knows)
		mint := func(resources ...string) core.Principal {
			tok, err := knows.Keys.MintToken(ctx, p.P, core.MintTokenRequest{Name: "t",
				Scopes: []string{core.ScopeLeaseWrite}, Resources: resources})
			require.NoError(t, err)
			pr, err := knows.Auth.Authenticate(ctx, tok.Token)
			require.NoError(t, err)
			return pr
		}
		barred, outsider := mint("elsewhere*"), mint()
		for i, replica := range []*app.App{knows, e.App(t)} {
			l, err := knows.Leases.Acquire(ctx, p.P, fmt.Sprint("k", i), core.AcquireLease{Holder: "h"})
			require.NoError(t, err)
			for _, c := range []struct {
				who  core.Principal
				want string
			}{{barred, "This credential may not access state key " + l.StateKey}, {outsider, core.MsgLeaseNotYours}} {
				_, err := replica.Leases.Renew(ctx, c.who, l.ID, core.RenewLease{})
				assert.True(t, core.IsCode(err, core.CodeForbidden), "replica %d: %v", i, err)
				assert.ErrorContains(t, err, c.want, "replica %d renew", i)
				err = replica.Leases.Release(ctx, c.who, l.ID)
				assert.ErrorContains(t, err, c.want, "replica %d release", i)
			}
			_, err = replica.Leases.Renew(ctx, p.P, l.ID, core.RenewLease{})
			require.NoError(t, err, "replica %d: the owner renews", i)
			require.NoError(t, replica.Leases.Release(ctx, p.P, l.ID), "replica %d: the owner releases", i)
			_, err = replica.Leases.Renew(ctx, p.P, l.ID, core.RenewLease{})
			assert.True(t, core.IsCode(err, core.CodeNotFound), "replica %d: renew after release: %v", i, err)
			err = replica.Leases.Release(ctx, p.P, l.ID)
			assert.True(t, core.IsCode(err, core.CodeNotFound), "replica %d: release twice: %v", i, err)
		}
	})
}
