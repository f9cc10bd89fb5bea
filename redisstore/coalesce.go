package redisstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Coalesced round trips. Beyond its commands, what a request costs Redis, and this process, is
// mostly its round trip: a write and a read system call on each side and a pass of Redis's
// event loop per pipeline. Under load, concurrent requests' round trips are sent together: while
// soloRoundTrips of them are in flight, a request's pipeline waits for the next one to be
// answered and then goes out with every other that waited, as one pipeline on one connection
// (docs/benchmarks.md, "Session 12": at 128 connections, Redis CPU per GET −32 to −39 %).
// Below that, as at low load, a pipeline goes out at once on its own, as before.
//
// go-redis has a coalescing pipeliner of its own (AutoPipeline, full duplex), but its wait for
// an admitted batch ignores the caller's context: under lost replies requests hung in it past
// their deadlines (session 11). Here a waiting request leaves when its context ends: a
// pipeline not sent yet is then not sent at all, and one in flight is answered to no one.
//
// Each command keeps its own answer and error, and go-redis's hooks (store reset refusal,
// availability, metrics, tracing) and retries apply to the combined pipeline as they applied to
// each; every script a batch carries is retry-safe as it was alone. Each traced request also
// gets a span of its own for the batch it went out in (batchSpans).

// soloRoundTrips is how many round trips may be in flight before later ones are coalesced: at
// 8 concurrent requests and below (a replica serving a few agents) nothing waits for another.
const soloRoundTrips = 8

// coalescer sends pipelines at once or together (see above).
type coalescer struct {
	rdb      redis.UniversalClient
	mu       sync.Mutex
	inflight int             // round trips sent and not answered yet (a batch counts once)
	queue    []*coalescedJob // pipelines waiting for the next batch, oldest first
	// batched counts the pipelines sent in a batch rather than alone: the share of round
	// trips coalesced (agentstate_redis_coalesced_round_trips_total) says whether it is on.
	batched atomic.Int64
}

// coalescedJob is one request's pipeline waiting in the queue.
type coalescedJob struct {
	ctx  context.Context
	cmds []redis.Cmder
	done chan struct{} // closed once the batch is answered, or the job dropped unsent
	err  error         // the first of its commands' errors, as Exec returns it; ctx's if unsent
}

// exec sends pipe's commands and returns the error pipe.Exec would. Their answers are in the
// commands as usual, except after an error while ctx has ended (ctx.Err() != nil): the request
// may then have left with its commands unsent or still on their way, and none may be read.
func (c *coalescer) exec(ctx context.Context, pipe redis.Pipeliner) error {
	c.mu.Lock()
	if c.inflight < soloRoundTrips {
		c.inflight++
		c.mu.Unlock()
		_, err := pipe.Exec(ctx)
		c.answered()
		return err
	}
	j := &coalescedJob{ctx: ctx, cmds: pipe.Cmds(), done: make(chan struct{})}
	c.queue = append(c.queue, j)
	c.mu.Unlock()
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answered ends one round trip in flight: the queue, if any waits, goes out in its place.
func (c *coalescer) answered() {
	c.mu.Lock()
	jobs := c.queue
	c.queue = nil
	if len(jobs) == 0 {
		c.inflight--
	}
	c.mu.Unlock()
	if len(jobs) > 0 {
		go c.send(jobs)
	}
}

// send sends the jobs still wanted as one pipeline and hands each its answers.
func (c *coalescer) send(jobs []*coalescedJob) {
	defer c.answered()
	pipe := c.rdb.Pipeline()
	var sent []*coalescedJob
	for _, j := range jobs {
		if err := j.ctx.Err(); err != nil { // its request has left: nothing of it is sent
			j.err = err
			close(j.done)
			continue
		}
		_ = pipe.BatchProcess(j.ctx, j.cmds...)
		sent = append(sent, j)
	}
	if len(sent) == 0 {
		return
	}
	c.batched.Add(int64(len(sent)))
	ctx, spans := batchSpans(sent, len(pipe.Cmds()))
	// The batch is everyone's: no one request's end may cut it short.
	_, _ = pipe.Exec(context.WithoutCancel(ctx))
	for i, j := range sent {
		for _, cmd := range j.cmds {
			if err := cmd.Err(); err != nil {
				j.err = err
				break
			}
		}
		if spans != nil && spans[i] != nil {
			if j.err != nil && !errors.Is(j.err, redis.Nil) {
				spans[i].RecordError(j.err)
				spans[i].SetStatus(codes.Error, j.err.Error())
			}
			spans[i].End()
		}
		close(j.done)
	}
}

// CoalescedRoundTrips is how many requests' pipelines this store has sent in a batch with
// others' rather than alone, since it opened.
func (s *Store) CoalescedRoundTrips() int64 { return s.co.batched.Load() }

// batchSpans gives each traced request of a batch a client span of its own, "redis.coalesced",
// from the batch's start to its answer. go-redis's tracing hook sees one pipeline and records
// it once, under the context the batch runs in; without these, every request but that one
// would show no Redis time at all. ctx is the first traced request's context, with its span,
// so the pipeline's span is a child of that one, and the other requests' spans link to it
// (the first request's context when none is traced). spans[i] is nil for an untraced
// request; spans is nil when none is, and costs nothing then.
func batchSpans(sent []*coalescedJob, commands int) (ctx context.Context, spans []trace.Span) {
	ctx = sent[0].ctx
	var first trace.SpanContext
	for i, j := range sent {
		parent := trace.SpanFromContext(j.ctx)
		if !parent.SpanContext().IsValid() {
			continue
		}
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.String("db.system", "redis"), // as go-redis's own spans say it
			attribute.Int("agentstate.redis.batch.requests", len(sent)),
			attribute.Int("agentstate.redis.batch.commands", commands),
			attribute.Int("agentstate.redis.commands", len(j.cmds)))}
		if first.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: first}))
		}
		jctx, span := parent.TracerProvider().Tracer(tracerScope).Start(j.ctx, "redis.coalesced", opts...)
		if spans == nil {
			spans = make([]trace.Span, len(sent))
		}
		spans[i] = span
		if !first.IsValid() {
			ctx, first = jctx, span.SpanContext()
		}
	}
	return ctx, spans
}

// tracerScope names the store's own spans' instrumentation scope.
const tracerScope = "github.com/agentstate/agentstate-go/redisstore"
