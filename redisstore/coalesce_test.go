package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// coalescing is a store behind a fault proxy whose replies can be held, so that the in-flight
// slots of the coalescer (redisstore/coalesce.go) can be filled on purpose.
type coalescing struct {
	st      *redisstore.Store
	proxy   *testenv.FaultProxy
	env     *testenv.Env
	project string
}

func newCoalescing(t *testing.T, e *testenv.Env) coalescing {
	if e.Name == "cluster" {
		t.Skip("the fault proxy fronts a single server")
	}
	pe, proxy := e.ThroughProxy(t)
	p := testenv.NewProject(t, pe.App(t))
	return coalescing{st: pe.Store, proxy: proxy, env: pe, project: p.ID}
}

func (c coalescing) put(ctx context.Context, key, data string) error {
	_, _, err := c.st.MutateState(ctx, c.project, core.StateMutation{Op: core.EventUpsert, Key: key, EventID: core.NewID(),
		AgentID: "a", Data: json.RawMessage(data), Tags: []string{}, NowMs: time.Now().UnixMilli(), Writer: core.LeaseWriter{FullAccess: true}})
	return err
}

func (c coalescing) get(t *testing.T, key string) *core.StateEvent {
	t.Helper()
	evs, err := c.st.StateEventsAt(context.Background(), c.project, []string{key}, 0, 0)
	require.NoError(t, err)
	return evs[0]
}

// fillSlots holds the store's replies and starts SoloRoundTrips reads that wait for them; once
// they are sent, every later round trip is queued. release lets them all finish.
func (c coalescing) fillSlots(t *testing.T) (release func()) {
	t.Helper()
	c.proxy.HoldReplies()
	before := c.proxy.Requests.Load()
	var wg sync.WaitGroup
	for i := range redisstore.SoloRoundTrips {
		wg.Go(func() {
			_, err := c.st.StateEventsAt(context.Background(), c.project, []string{fmt.Sprintf("held-%d", i)}, 0, 0)
			assert.NoError(t, err)
		})
	}
	release = c.waitFor(t, &wg)
	require.Eventually(t, func() bool { return c.proxy.Requests.Load()-before >= redisstore.SoloRoundTrips },
		10*time.Second, time.Millisecond, "the in-flight round trips reach the server")
	return release
}

// waitFor returns what releases the held replies and waits for wg, also run when the test
// ends (a failed test must not leave requests that report after it).
func (c coalescing) waitFor(t *testing.T, wg *sync.WaitGroup) func() {
	release := func() { c.proxy.ReleaseReplies(); wg.Wait() }
	t.Cleanup(release)
	return release
}

// Under load, round trips are coalesced: while SoloRoundTrips are in flight, later requests'
// pipelines (reads and write scripts) wait and then go out as one, and each request gets its
// own answers.
func TestRoundTripsCoalescedUnderLoad(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		c := newCoalescing(t, e)
		const queued = 20
		for i := range queued {
			require.NoError(t, c.put(context.Background(), fmt.Sprintf("r-%d", i), fmt.Sprintf(`{"n":%d}`, i)))
		}
		c.fillSlots(t)() // every pooled connection dialled (their set-up commands are round trips too)
		trips := testenv.CountRoundTrips(c.env.Rdb)
		release := c.fillSlots(t)
		sent := trips.Load()
		var wg sync.WaitGroup
		c.waitFor(t, &wg)
		for i := range queued {
			wg.Go(func() { // half read, half write
				key := fmt.Sprintf("r-%d", i)
				if i%2 == 1 {
					assert.NoError(t, c.put(context.Background(), key, fmt.Sprintf(`{"n":%d,"again":true}`, i)))
					return
				}
				evs, err := c.st.StateEventsAt(context.Background(), c.project, []string{key}, 0, 0)
				if assert.NoError(t, err) && assert.NotNil(t, evs[0]) {
					assert.JSONEq(t, fmt.Sprintf(`{"n":%d}`, i), string(evs[0].Data), key)
				}
			})
		}
		require.Eventually(t, func() bool { return c.st.QueuedRoundTrips() == queued }, 10*time.Second, time.Millisecond)
		assert.EqualValues(t, sent, trips.Load(), "queued: nothing sent while the slots are taken")
		release()
		wg.Wait()
		assert.EqualValues(t, 1, trips.Load()-sent, "the %d queued requests went out as one pipeline", queued)
		for i := 1; i < queued; i += 2 {
			ev := c.get(t, fmt.Sprintf("r-%d", i))
			assert.JSONEq(t, fmt.Sprintf(`{"n":%d,"again":true}`, i), string(ev.Data))
			assert.EqualValues(t, 2, ev.Version)
		}
	})
}

// A coalesced batch whose reply is lost is sent again by go-redis, and each write in it is
// applied once (every script is retry-safe alone, and so in a batch).
func TestCoalescedWritesAppliedOnceWhenTheirReplyIsLost(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		c := newCoalescing(t, e)
		const queued = 12
		release := c.fillSlots(t)
		var wg sync.WaitGroup
		c.waitFor(t, &wg)
		for i := range queued {
			wg.Go(func() { assert.NoError(t, c.put(context.Background(), fmt.Sprintf("w-%d", i), `{"once":true}`)) })
		}
		require.Eventually(t, func() bool { return c.st.QueuedRoundTrips() == queued }, 10*time.Second, time.Millisecond)
		c.proxy.DropNextReply("EVALSHA") // the batch's: the held reads were sent before
		release()
		wg.Wait()
		require.EqualValues(t, 1, c.proxy.Dropped.Load(), "the batch's reply was lost")
		for i := range queued {
			key := fmt.Sprintf("w-%d", i)
			evs, err := c.st.StateEvents(context.Background(), c.project, key, 0, 10)
			require.NoError(t, err)
			assert.Len(t, evs, 1, "%s: one event", key)
			assert.EqualValues(t, 1, c.get(t, key).Version, key)
		}
	})
}

// A request waiting for a coalesced batch leaves when its context ends, even while the store
// does not answer, and a write that left before its batch went out is never sent.
func TestQueuedRoundTripLeavesWithItsContext(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		c := newCoalescing(t, e)
		release := c.fillSlots(t)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- c.put(ctx, "late", `{"late":true}`) }()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(30 * time.Second):
			release()
			t.Fatal("the queued write did not leave at its deadline while the store held its replies")
		}
		release()
		assert.Nil(t, c.get(t, "late"), "the write that left unsent was never applied")
	})
}

// Every traced request of a coalesced batch has a span of its own for its round trip, a child
// of its own span: go-redis's tracing hook records the batch once, as a child of the first
// traced request's, and the others link to that one. An untraced request gets none.
func TestCoalescedRequestsEachTraced(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		c := newCoalescing(t, e)
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		require.NoError(t, redisotel.InstrumentTracing(c.env.Rdb, redisotel.WithTracerProvider(tp)))
		const queued = 10
		release := c.fillSlots(t)
		var wg sync.WaitGroup
		c.waitFor(t, &wg)
		requests := make([]trace.SpanContext, queued)
		for i := range queued {
			ctx := context.Background()
			if i%5 != 4 { // every fifth request untraced
				var span trace.Span
				ctx, span = tp.Tracer("test").Start(ctx, fmt.Sprintf("request %d", i))
				requests[i] = span.SpanContext()
				defer span.End()
			}
			wg.Go(func() {
				_, err := c.st.StateEventsAt(ctx, c.project, []string{fmt.Sprintf("t-%d", i)}, 0, 0)
				assert.NoError(t, err)
			})
		}
		require.Eventually(t, func() bool { return c.st.QueuedRoundTrips() == queued }, 10*time.Second, time.Millisecond)
		release()
		wg.Wait()

		byParent := map[trace.SpanID]sdktrace.ReadOnlySpan{} // the coalesced spans, by their request's span
		coalesced := map[trace.SpanID]bool{}
		var pipelines []sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			switch {
			case s.Name() == "redis.coalesced":
				assert.NotContains(t, byParent, s.Parent().SpanID(), "one span per request")
				byParent[s.Parent().SpanID()] = s
				coalesced[s.SpanContext().SpanID()] = true
				assert.Contains(t, s.Attributes(), attribute.Int("agentstate.redis.batch.requests", queued))
			case strings.HasPrefix(s.Name(), "redis.pipeline"):
				pipelines = append(pipelines, s)
			}
		}
		var batch []sdktrace.ReadOnlySpan // the batch's pipeline span: under a coalesced one
		for _, p := range pipelines {
			if coalesced[p.Parent().SpanID()] {
				batch = append(batch, p)
			}
		}
		require.Len(t, batch, 1, "the batch is one pipeline, traced once")
		head := batch[0].Parent().SpanID()
		for i, r := range requests {
			if !r.IsValid() {
				continue
			}
			s, ok := byParent[r.SpanID()]
			require.True(t, ok, "request %d has a span for its round trip", i)
			assert.Equal(t, r.TraceID(), s.SpanContext().TraceID(), "request %d: in its own trace", i)
			if s.SpanContext().SpanID() != head {
				require.Len(t, s.Links(), 1, "request %d links to the span the batch is under", i)
				assert.Equal(t, head, s.Links()[0].SpanContext.SpanID())
			}
		}
		assert.Len(t, byParent, queued-queued/5, "no span for an untraced request")
	})
}
