package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/client"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

func ptr[T any](v T) *T { return &v }

// TestClientTour drives the real server (every response also checked against the document by
// testenv) through the generated client and its hand-written layer: writes with an
// idempotency key and compare-and-set, queries by a LangGraph-style tag, events, a fenced
// lease, claims, conversations, and the watch resuming from its last event.
func TestClientTour(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		ctx := context.Background()
		c, err := client.New(s.URL, s.Project.Key)
		require.NoError(t, err)

		thread := "agentstate:thread:7f3c2a9e-1b4d-4c8a-9e2f-3d5b6a7c8d9e"
		idem := client.NewIdempotencyKey()
		write := client.StateWrite{AgentId: "planner", Data: map[string]any{"step": 1}, Tags: &[]string{thread}}
		put, err := c.PutStateWithResponse(ctx, "task/42", &client.PutStateParams{IdempotencyKey: &idem}, write)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, put.StatusCode(), string(put.Body))
		assert.Equal(t, "task/42", put.JSON200.StateKey, "a / in the key travels percent-encoded")
		assert.Equal(t, 1, put.JSON200.Version)
		again, err := c.PutStateWithResponse(ctx, "task/42", &client.PutStateParams{IdempotencyKey: &idem}, write)
		require.NoError(t, err)
		assert.Equal(t, "true", again.HTTPResponse.Header.Get("Idempotency-Replayed"))
		assert.Equal(t, put.JSON200.LatestSequence, again.JSON200.LatestSequence, "a replay writes nothing")

		stale, err := c.PutStateWithResponse(ctx, "task/42", &client.PutStateParams{IfMatch: ptr("0")}, write)
		require.NoError(t, err)
		apiErr := client.ErrorOf(stale.HTTPResponse, stale.Body)
		require.NotNil(t, apiErr)
		assert.Equal(t, "VERSION_CONFLICT", apiErr.Code)
		require.NotNil(t, stale.JSON409)

		got, err := c.GetStateWithResponse(ctx, "task/42", &client.GetStateParams{})
		require.NoError(t, err)
		assert.Equal(t, map[string]any{"step": float64(1)}, *got.JSON200.Data)
		assert.Equal(t, `"1"`, got.HTTPResponse.Header.Get("ETag"))

		q, err := c.QueryStatesWithResponse(ctx, client.StateQuery{Tags: &[]string{thread}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, q.StatusCode(), string(q.Body))
		require.Len(t, *q.JSON200.Data, 1)
		assert.Equal(t, "task/42", (*q.JSON200.Data)[0].StateKey)

		evs, err := c.ListStateEventsWithResponse(ctx, "task/42", &client.ListStateEventsParams{})
		require.NoError(t, err)
		require.Len(t, *evs.JSON200.Data, 1)

		// A fenced lease: writes under it pass until a newer lease on the key is issued.
		held, err := c.AcquireLease(ctx, "task/42", "worker-1", time.Minute, 0)
		require.NoError(t, err)
		w2 := client.StateWrite{AgentId: "worker-1", Data: map[string]any{"step": 2}, LeaseId: held.Id}
		fenced, err := c.PutStateWithResponse(ctx, "task/42", &client.PutStateParams{}, w2, held.Fence())
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, fenced.StatusCode(), string(fenced.Body))
		require.NoError(t, held.Renew(ctx, 2*time.Minute))
		require.NoError(t, held.Release(ctx))
		next, err := c.AcquireLease(ctx, "task/42", "worker-2", time.Minute, time.Second)
		require.NoError(t, err)
		assert.Greater(t, next.FencingToken, held.FencingToken)
		require.NoError(t, next.Release(ctx))
		late, err := c.PutStateWithResponse(ctx, "task/42", &client.PutStateParams{}, client.StateWrite{AgentId: "worker-1", Data: map[string]any{}}, held.Fence())
		require.NoError(t, err)
		assert.Equal(t, "STALE_FENCING_TOKEN", client.ErrorOf(late.HTTPResponse, late.Body).Code, "the first holder's token is superseded")

		// Claims and conversations: other tags of the document, same client.
		var create client.CreateClaim // evidence items are an inline type: fill them from JSON
		require.NoError(t, json.Unmarshal([]byte(`{"subject_type":"task","subject_id":"task/42","statement":"step 1 ran",
			"evidence":[{"kind":"text_hash","source":"log","data":"ok","hash":"2689367b205c16ce32ed4200942b8b8b1e262dfc70d9bc9fbc77c49699a4f1df"}]}`), &create))
		claim, err := c.CreateClaimWithResponse(ctx, create)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, claim.StatusCode(), string(claim.Body))
		claims, err := c.ListClaimsWithResponse(ctx, &client.ListClaimsParams{SubjectType: ptr("task"), SubjectId: ptr("task/42")})
		require.NoError(t, err)
		require.Len(t, *claims.JSON200.Data, 1)
		conv, err := c.CreateConversationWithResponse(ctx, client.CreateConversation{Title: ptr("tour")})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, conv.StatusCode(), string(conv.Body))
		one, err := c.GetConversationWithResponse(ctx, conv.JSON201.Id, &client.GetConversationParams{})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, one.StatusCode(), string(one.Body))

		// The watch: the backlog after a cursor, then live; a second Watch from the last id
		// seen gets only what came after it.
		var mu sync.Mutex
		var seen []client.Event
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- c.Watch(wctx, client.WatchStatesParams{Key: ptr("w/*")}, func(ev client.Event) error {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, ev)
				return nil
			})
		}()
		for i := 1; i <= 2; i++ {
			r, err := c.PutStateWithResponse(ctx, "w/"+string(rune('0'+i)), &client.PutStateParams{}, client.StateWrite{AgentId: "a", Data: map[string]any{"i": i}})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, r.StatusCode())
		}
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 2 }, 5*time.Second, 10*time.Millisecond)
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		mu.Lock()
		first := seen[0]
		mu.Unlock()
		var ev struct {
			StateKey string `json:"state_key"`
		}
		require.NoError(t, json.Unmarshal(first.Data, &ev))
		assert.Equal(t, "state.upsert", first.Event)
		assert.Equal(t, "w/1", ev.StateKey)

		stop := errors.New("enough")
		var resumed []string
		err = c.Watch(ctx, client.WatchStatesParams{Key: ptr("w/*"), After: &first.ID}, func(ev client.Event) error {
			var se struct {
				StateKey string `json:"state_key"`
			}
			require.NoError(t, json.Unmarshal(ev.Data, &se))
			resumed = append(resumed, se.StateKey)
			return stop
		})
		assert.ErrorIs(t, err, stop)
		assert.Equal(t, []string{"w/2"}, resumed, "resumed after the first event")
	})
}

// TestClientRetriesHonourRetryAfter: while the store is down the server answers 503 with
// Retry-After; the client waits that long and retries a GET, and gives a POST without an
// Idempotency-Key back at once (it may have been applied).
func TestClientRetriesHonourRetryAfter(t *testing.T) {
	testenv.ForEachStoreOf(t, testenv.Stores[1:2], func(t *testing.T, e *testenv.Env) { // embedded: its store can be stopped
		s := testenv.NewServer(t, e)
		ctx := context.Background()
		var waits []time.Duration
		c, err := client.New(s.URL, s.Project.Key, client.Options{Sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			require.NoError(t, e.Mini.Restart()) // the outage ends while the client waits
			return nil
		}})
		require.NoError(t, err)
		e.Mini.Close()
		got, err := c.GetStateWithResponse(ctx, "k", &client.GetStateParams{})
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, got.StatusCode(), "answered after the retry: %s", got.Body)
		assert.Equal(t, []time.Duration{time.Second}, waits, "waited Retry-After: 1")

		e.Mini.Close()
		waits = nil
		conv, err := c.CreateConversationWithResponse(ctx, client.CreateConversation{Title: ptr("x")})
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, conv.StatusCode())
		assert.Empty(t, waits, "a POST without Idempotency-Key is not retried")
		require.NoError(t, e.Mini.Restart())
	})
}
