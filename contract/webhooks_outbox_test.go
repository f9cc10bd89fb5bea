package contract

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/webhooks"
)

// fastPolicy retries quickly: attempts start 1.25 s apart (Timeout + the claim margin). The
// timeout is generous so that a loaded test machine does not turn an attempt into a timeout
// before it reaches the receiver, which would change the counts the tests assert.
func fastPolicy(attempts int) webhooks.Policy {
	p := webhooks.Policy{Timeout: time.Second, Poll: 20 * time.Millisecond, Parallel: 8}
	for range attempts - 1 {
		p.Delays = append(p.Delays, 10*time.Millisecond)
	}
	return p
}

// runOutbox runs a's webhook worker on project only (other test binaries share the Redis) until
// the test ends.
func runOutbox(t *testing.T, a *app.App, project string, p webhooks.Policy) {
	t.Helper()
	a.Hooks.Policy = p
	a.Hooks.Projects = func(context.Context) ([]string, error) { return []string{project}, nil }
	loop := a.Hooks.Worker(func(err error) { t.Logf("webhook worker: %v", err) })
	loop.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, loop.Shutdown(ctx))
		assert.NoError(t, a.Hooks.Shutdown(ctx))
	})
}

// hookReceiver is a webhook target on this machine: it answers each request with status(n),
// n counting that delivery's requests from 1, and records every request by delivery id.
type hookReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	seen  map[string][]int // delivery id -> statuses answered
	total atomic.Int32
}

func newHookReceiver(t *testing.T, status func(delivery string, n int) int) *hookReceiver {
	h := &hookReceiver{seen: map[string][]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-AgentState-Delivery")
		h.mu.Lock()
		code := status(id, len(h.seen[id])+1)
		h.seen[id] = append(h.seen[id], code)
		h.mu.Unlock()
		h.total.Add(1)
		w.WriteHeader(code)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) statuses() map[string][]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]int{}
	for k, v := range h.seen {
		out[k] = append([]int(nil), v...)
	}
	return out
}

func createHook(t *testing.T, s *testenv.Server, url string) webhooks.Webhook {
	t.Helper()
	var wh webhooks.Webhook
	resp, out := send(t, "POST", s.URL+"/api/v1/webhooks", s.Project.Key, map[string]any{"url": url, "events": []string{"conversation.created"}}, nil)
	require.Equal(t, 201, resp.StatusCode, string(out))
	require.NoError(t, json.Unmarshal(out, &wh))
	return wh
}

// TestWebhookDeadLetteredAfterEveryAttempt: a receiver that always fails gets exactly the
// policy's attempts, no more; the delivery then shows in the dead-letter list with its payload
// and last error, and the outbox is empty.
func TestWebhookDeadLetteredAfterEveryAttempt(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		recv := newHookReceiver(t, func(string, int) int { return 500 })
		s := testenv.NewServer(t, e)
		runOutbox(t, s.App, s.Project.ID, fastPolicy(3))
		createHook(t, s, recv.URL+"/hook")
		c1 := storeConv(t, newREST(s, s.Project.Key), map[string]any{"title": "first", "messages": msgs("x")})
		c2 := storeConv(t, newREST(s, s.Project.Key), map[string]any{"title": "second", "messages": msgs("y")})

		var page webhooks.DeadLetterPage
		require.Eventually(t, func() bool {
			resp, out := send(t, "GET", s.URL+"/api/v1/webhooks/dead-letters", s.Project.Key, nil, nil)
			require.Equal(t, 200, resp.StatusCode, string(out))
			require.NoError(t, json.Unmarshal(out, &page))
			return len(page.Data) == 2
		}, 20*time.Second, 50*time.Millisecond, "both deliveries dead-lettered")
		time.Sleep(2600 * time.Millisecond) // two more retry intervals: nothing may follow a dead letter
		for id, st := range recv.statuses() {
			assert.Equal(t, []int{500, 500, 500}, st, "delivery %s: exactly the policy's 3 attempts", id)
		}
		assert.EqualValues(t, 6, recv.total.Load())
		var convs []string
		for _, d := range page.Data {
			assert.Equal(t, 3, d.Attempts)
			assert.Contains(t, d.LastError, "500")
			assert.Contains(t, recv.statuses(), d.DeliveryID, "the id the attempts carried")
			var body struct {
				Data struct {
					ConversationID string `json:"conversation_id"`
				}
			}
			require.NoError(t, json.Unmarshal(d.Payload, &body))
			convs = append(convs, body.Data.ConversationID)
		}
		assert.ElementsMatch(t, []string{c1.ID, c2.ID}, convs)
		assert.Greater(t, page.Data[0].ID, page.Data[1].ID, "newest first")
		for _, k := range e.ProjectKeys(t, s.Project.ID) {
			if strings.HasSuffix(k, ":webhook-outbox") {
				n, err := e.Rdb.XLen(context.Background(), k).Result()
				require.NoError(t, err)
				assert.Zero(t, n, "nothing left in the outbox")
			}
		}

		// Paged with the cursor; a cursor that is not one is a 400 in the v1 envelope.
		resp, out := send(t, "GET", s.URL+"/api/v1/webhooks/dead-letters?limit=1", s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		var first webhooks.DeadLetterPage
		require.NoError(t, json.Unmarshal(out, &first))
		require.Len(t, first.Data, 1)
		require.NotNil(t, first.Pagination.NextCursor)
		resp, out = send(t, "GET", s.URL+"/api/v1/webhooks/dead-letters?limit=1&cursor="+*first.Pagination.NextCursor, s.Project.Key, nil, nil)
		require.Equal(t, 200, resp.StatusCode)
		var second webhooks.DeadLetterPage
		require.NoError(t, json.Unmarshal(out, &second))
		require.Len(t, second.Data, 1)
		assert.Equal(t, page.Data[1].ID, second.Data[0].ID)
		resp, out = send(t, "GET", s.URL+"/api/v1/webhooks/dead-letters?cursor=nope", s.Project.Key, nil, nil)
		assert.Equal(t, 400, resp.StatusCode)
		assert.Contains(t, string(out), `"code":"BAD_REQUEST"`)
	})
}

// TestWebhookOutboxSharedByReplicas: two replicas' workers drain one outbox. Every delivery's
// first attempt fails, so each retry is up for claiming by both: each delivery must still get
// exactly two requests (one failed, one delivered), never a retry claimed twice.
func TestWebhookOutboxSharedByReplicas(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		recv := newHookReceiver(t, func(_ string, n int) int {
			if n == 1 {
				return 503
			}
			return 200
		})
		s := testenv.NewServer(t, e)
		other := e.App(t)
		runOutbox(t, s.App, s.Project.ID, fastPolicy(3))
		runOutbox(t, other, s.Project.ID, fastPolicy(3))
		createHook(t, s, recv.URL)
		createHook(t, s, recv.URL+"/second")
		const n = 10
		for i := range n {
			storeConv(t, newREST(s, s.Project.Key), map[string]any{"title": "c", "messages": msgs(strings.Repeat("x", i+1))})
		}
		require.Eventually(t, func() bool { return recv.total.Load() >= 2*2*n }, 30*time.Second, 20*time.Millisecond)
		time.Sleep(time.Second) // time for a wrongly doubled claim to show
		st := recv.statuses()
		assert.Len(t, st, 2*n, "one delivery per webhook and conversation")
		for id, codes := range st {
			assert.Equal(t, []int{503, 200}, codes, "delivery %s", id)
		}
	})
}
