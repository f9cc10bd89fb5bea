package redisstore_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// The state read sent with a credential (core.StateRead) answers as StateEventsAt would, and a
// read that fails is the read's error alone: the credential and its counters still come back,
// so the request is admitted or refused exactly as without the read.
func TestStateReadWithCredentialFailsAlone(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		p := testenv.NewProject(t, e.App(t))
		ctx := context.Background()
		_, _, err := e.Store.MutateState(ctx, p.ID, core.StateMutation{Op: core.EventUpsert, Key: "k", EventID: core.NewID(),
			AgentID: "a", Data: json.RawMessage(`{"v":1}`), Tags: []string{}, NowMs: 1000, Writer: core.LeaseWriter{FullAccess: true}})
		require.NoError(t, err)
		hash := core.SHA256Hex([]byte(p.Key))
		count := []core.RateCounter{{ID: p.P.CredentialID, SetExpiry: true}}

		read := &core.StateRead{Project: p.ID, Key: "k"}
		cred, _, counts, err := e.Store.CredentialAndCount(ctx, hash, p.ID, nil, 0, count, core.Prefetched{State: read})
		require.NoError(t, err)
		require.NotNil(t, cred)
		assert.Len(t, counts, 1)
		want, err := e.Store.StateEventsAt(ctx, p.ID, []string{"k"}, 0, 0)
		require.NoError(t, err)
		require.NoError(t, read.Err)
		assert.Equal(t, want[0], read.Event)

		missing := &core.StateRead{Project: p.ID, Key: "absent"}
		_, _, _, err = e.Store.CredentialAndCount(ctx, hash, p.ID, nil, 0, count, core.Prefetched{State: missing})
		require.NoError(t, err)
		assert.Nil(t, missing.Event)
		assert.NoError(t, missing.Err)

		// The key's stream replaced by a string: XREVRANGE answers WRONGTYPE.
		var stream string
		for _, k := range e.ProjectKeys(t, p.ID) {
			if strings.HasSuffix(k, ":state:k") {
				stream = k
			}
		}
		require.NotEmpty(t, stream)
		require.NoError(t, e.Rdb.Del(ctx, stream).Err())
		require.NoError(t, e.Rdb.Set(ctx, stream, "x", 0).Err())
		broken := &core.StateRead{Project: p.ID, Key: "k"}
		cred, _, counts, err = e.Store.CredentialAndCount(ctx, hash, p.ID, nil, 0, count, core.Prefetched{State: broken})
		require.NoError(t, err, "the credential is read whatever became of the state")
		require.NotNil(t, cred)
		assert.Len(t, counts, 1)
		assert.Error(t, broken.Err)
		assert.Nil(t, broken.Event)
	})
}

// The MCP session check sent with a credential (core.MCPSessionRead) answers as MCPSession
// would, an unknown session alone ("", no error), and starts the session's idle time again.
func TestMCPSessionReadWithCredential(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		p := testenv.NewProject(t, e.App(t))
		ctx := context.Background()
		require.NoError(t, e.Store.PutMCPSession(ctx, p.ID, "s1", "cred-1", time.Minute))
		hash := core.SHA256Hex([]byte(p.Key))
		known := &core.MCPSessionRead{Project: p.ID, ID: "s1", Idle: time.Hour}
		unknown := &core.MCPSessionRead{Project: p.ID, ID: "s2", Idle: time.Hour}
		for _, r := range []*core.MCPSessionRead{known, unknown} {
			cred, _, _, err := e.Store.CredentialAndCount(ctx, hash, p.ID, nil, 0, nil, core.Prefetched{MCPSession: r})
			require.NoError(t, err)
			require.NotNil(t, cred)
			require.NoError(t, r.Err)
		}
		assert.Equal(t, "cred-1", known.Credential)
		assert.Empty(t, unknown.Credential)
		var ttl time.Duration
		for _, k := range e.ProjectKeys(t, p.ID) {
			if strings.HasSuffix(k, ":mcpsess:s1") {
				ttl = e.Rdb.TTL(ctx, k).Val()
			}
		}
		assert.Greater(t, ttl, time.Minute, "the idle time started again, Idle long")
	})
}
