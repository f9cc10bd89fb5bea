package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/webhooks"
)

var (
	//go:embed scripts/enqueue_webhooks.lua
	enqueueWebhooksLua string
	//go:embed scripts/dead_letter_webhook.lua
	deadLetterWebhookLua string
	//go:embed scripts/claim_webhook.lua
	claimWebhookLua string

	enqueueWebhooksScript   = redis.NewScript(enqueueWebhooksLua)
	deadLetterWebhookScript = redis.NewScript(deadLetterWebhookLua)
	claimWebhookScript      = redis.NewScript(claimWebhookLua)
)

// webhookGroup is the consumer group of every outbox: all replicas' workers share it, so each
// delivery is handed to one of them, and a pending one moves to another only by XCLAIM.
const webhookGroup = "delivery"

// deadLetterCap bounds the dead-letter stream per project; the oldest fall off.
const deadLetterCap = 1000

// EnqueueDeliveries adds deliveries to the project's outbox, all in one script.
func (s *Store) EnqueueDeliveries(ctx context.Context, project string, ds []webhooks.Delivery) error {
	const op = "redisstore.EnqueueDeliveries"
	if len(ds) == 0 {
		return nil
	}
	// Indexed before the entries exist: a worker forgetting the project re-checks the outbox
	// after removing it, and a crash in between leaves an index entry with nothing to do.
	// Waited for like the entries (with -redis-wait-replicas): a failover must not keep the
	// entries but lose the index that leads workers to them.
	if err := s.write(ctx, webhookProjectsKey(), func(c redis.Cmdable) error {
		return c.SAdd(ctx, webhookProjectsKey(), project).Err()
	}); err != nil {
		return core.Internal(op, err)
	}
	args := []any{webhookGroup}
	for _, d := range ds {
		args = append(args, d.WebhookID, d.Event, d.Timestamp, d.Body)
	}
	if err := s.run(ctx, enqueueWebhooksScript, []string{webhookOutboxKey(project)}, args...).Err(); err != nil {
		return core.Internal(op, err)
	}
	return nil
}

// OutboxProjects lists the projects that may have deliveries waiting.
func (s *Store) OutboxProjects(ctx context.Context) ([]string, error) {
	p, err := s.rdb.SMembers(ctx, webhookProjectsKey()).Result()
	if err != nil {
		return nil, core.Internal("redisstore.OutboxProjects", classify(err))
	}
	return p, nil
}

// ClaimDeliveries hands consumer up to max deliveries of the project: pending ones whose
// backoff has passed (retryAfter(n) is the time since the n-th attempt started after which
// attempt n+1 may run), then new ones. claim_webhook.lua re-checks the idle time as it claims,
// so of several replicas claiming the same delivery exactly one gets it. A project whose outbox
// is empty is dropped from the index.
func (s *Store) ClaimDeliveries(ctx context.Context, project, consumer string, max int, retryAfter func(attempts int) time.Duration) ([]webhooks.Delivery, error) {
	const op = "redisstore.ClaimDeliveries"
	key := webhookOutboxKey(project)
	n, err := s.rdb.XLen(ctx, key).Result()
	if err != nil {
		return nil, core.Internal(op, classify(err))
	}
	if n == 0 {
		return nil, s.forgetIdleOutbox(ctx, project)
	}
	var out []webhooks.Delivery
	pending, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: webhookGroup,
		Idle: retryAfter(1), Start: "-", End: "+", Count: int64(max)}).Result()
	if isNoGroup(err) {
		// The stream exists without the group (created by hand, or the group was destroyed):
		// recreate it from 0, redelivering what is there rather than skipping it.
		err = s.rdb.XGroupCreate(ctx, key, webhookGroup, "0").Err()
	}
	if err != nil {
		return nil, core.Internal(op, classify(err))
	}
	for _, p := range pending {
		need := retryAfter(int(p.RetryCount))
		if p.Idle < need || len(out) >= max {
			continue
		}
		reply, err := s.run(ctx, claimWebhookScript, []string{key}, webhookGroup, consumer, need.Milliseconds(), p.ID).Slice()
		if err != nil {
			return out, core.Internal(op, err)
		}
		for _, m := range xMessages(reply) { // none when another worker claimed it first
			out = append(out, deliveryFrom(m, int(p.RetryCount)+1))
		}
	}
	if len(out) >= max {
		return out, nil
	}
	streams, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: webhookGroup, Consumer: consumer,
		Streams: []string{key, ">"}, Count: int64(max - len(out)), Block: -1}).Result()
	if errors.Is(err, redis.Nil) {
		return out, nil
	}
	if err != nil {
		return out, core.Internal(op, classify(err))
	}
	for _, st := range streams {
		for _, m := range st.Messages {
			out = append(out, deliveryFrom(m, 1))
		}
	}
	return out, nil
}

// xMessages reads stream entries from a script's reply: [[id, [field, value, ...]], ...].
func xMessages(reply []any) []redis.XMessage {
	var out []redis.XMessage
	for _, e := range reply {
		pair, ok := e.([]any)
		if !ok || len(pair) != 2 {
			continue
		}
		id, _ := pair[0].(string)
		fields, _ := pair[1].([]any)
		m := redis.XMessage{ID: id, Values: map[string]any{}}
		for i := 0; i+1 < len(fields); i += 2 {
			k, _ := fields[i].(string)
			m.Values[k] = fields[i+1]
		}
		out = append(out, m)
	}
	return out
}

func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

func deliveryFrom(m redis.XMessage, attempt int) webhooks.Delivery {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	ts, _ := strconv.ParseInt(str("ts"), 10, 64)
	return webhooks.Delivery{ID: m.ID, WebhookID: str("webhook"), Event: str("event"), Timestamp: ts,
		Body: []byte(str("body")), Attempt: attempt}
}

// forgetIdleOutbox drops a project with an empty outbox from the index. An enqueue racing with
// the removal is seen by the re-check, or has not indexed the project yet (it indexes first).
func (s *Store) forgetIdleOutbox(ctx context.Context, project string) error {
	const op = "redisstore.forgetIdleOutbox"
	if err := s.rdb.SRem(ctx, webhookProjectsKey(), project).Err(); err != nil {
		return core.Internal(op, classify(err))
	}
	n, err := s.rdb.XLen(ctx, webhookOutboxKey(project)).Result()
	if err == nil && n > 0 {
		err = s.rdb.SAdd(ctx, webhookProjectsKey(), project).Err()
	}
	if err != nil {
		return core.Internal(op, classify(err))
	}
	return nil
}

// AckDelivery ends a delivery (done, or dropped because its webhook is gone).
func (s *Store) AckDelivery(ctx context.Context, project, id string) error {
	key := webhookOutboxKey(project)
	err := s.tx(ctx, key, func(p redis.Pipeliner) error {
		p.XAck(ctx, key, webhookGroup, id)
		p.XDel(ctx, key, id)
		return nil
	})
	if err != nil {
		return core.Internal("redisstore.AckDelivery", err)
	}
	return nil
}

// DeadLetterDelivery moves a delivery that ran out of attempts to the dead-letter stream.
// It reports false when the delivery was no longer pending (another worker finished it).
func (s *Store) DeadLetterDelivery(ctx context.Context, project string, d webhooks.Delivery, lastErr string, at int64) (bool, error) {
	n, err := s.run(ctx, deadLetterWebhookScript, []string{webhookOutboxKey(project), webhookDeadKey(project)},
		webhookGroup, d.ID, d.WebhookID, d.Event, d.Timestamp, d.Body, d.Attempt, lastErr, at, deadLetterCap).Int()
	if err != nil {
		return false, core.Internal("redisstore.DeadLetterDelivery", err)
	}
	return n == 1, nil
}

// DeadLetters pages the project's dead letters, newest first; before is the previous page's
// last id (exclusive), "" for the newest.
func (s *Store) DeadLetters(ctx context.Context, project, before string, limit int) ([]webhooks.DeadLetter, bool, error) {
	end := "+"
	if before != "" {
		end = "(" + before
	}
	msgs, err := s.rdb.XRevRangeN(ctx, webhookDeadKey(project), end, "-", int64(limit+1)).Result()
	if err != nil {
		return nil, false, core.Internal("redisstore.DeadLetters", classify(err))
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[:limit]
	}
	out := make([]webhooks.DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		attempts, _ := strconv.Atoi(str("attempts"))
		failed, _ := strconv.ParseInt(str("failed_at"), 10, 64)
		out = append(out, webhooks.DeadLetter{ID: m.ID, DeliveryID: str("delivery"), WebhookID: str("webhook"), Event: str("event"),
			Payload: []byte(str("body")), Attempts: attempts, LastError: str("error"), FailedAt: failed})
	}
	return out, more, nil
}
