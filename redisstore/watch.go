package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

func seqID(seq int64) string { return strconv.FormatInt(seq, 10) + "-0" }

// ReadFeed reads the project log (and the lease event stream) with one XREAD, blocking when
// asked. Log entries name the key; the full events are then read from the keys' streams.
func (s *Store) ReadFeed(ctx context.Context, project string, afterSeq int64, afterLease string, leases bool, count int, block time.Duration) (core.FeedBatch, error) {
	const op = "redisstore.ReadFeed"
	streams := []string{logKey(project)}
	ids := []string{seqID(afterSeq)}
	if leases {
		streams = append(streams, leaseEventsKey(project))
		ids = append(ids, afterLease)
	}
	args := &redis.XReadArgs{Streams: append(streams, ids...), Count: int64(count), Block: -1}
	if block > 0 {
		args.Block = block
	}
	res, err := s.rdb.XRead(ctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return core.FeedBatch{}, nil
	}
	if err != nil {
		return core.FeedBatch{}, core.Internal(op, err)
	}
	var b core.FeedBatch
	for _, st := range res {
		if st.Stream == leaseEventsKey(project) {
			b.Leases = leaseEventsFrom(st.Messages)
			continue
		}
		if b.States, err = s.eventsFor(ctx, project, st.Messages); err != nil {
			return core.FeedBatch{}, err
		}
	}
	return b, nil
}

// eventsFor loads the full event behind each log entry, in one pipeline.
func (s *Store) eventsFor(ctx context.Context, project string, log []redis.XMessage) ([]core.StateEvent, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(log))
	keys := make([]string, len(log))
	for i, m := range log {
		keys[i], _ = m.Values["key"].(string)
		cmds[i] = pipe.XRange(ctx, stateKey(project, keys[i]), m.ID, m.ID)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, core.Internal("redisstore.eventsFor", err)
	}
	out := make([]core.StateEvent, 0, len(log))
	for i, c := range cmds {
		if msgs := c.Val(); len(msgs) == 1 {
			ev, err := streamEvent(keys[i], msgs[0])
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

// LogBounds returns the oldest sequence in the project log and the latest issued sequence.
func (s *Store) LogBounds(ctx context.Context, project string) (int64, int64, error) {
	const op = "redisstore.LogBounds"
	first, err := s.rdb.XRangeN(ctx, logKey(project), "-", "+", 1).Result()
	if err != nil {
		return 0, 0, core.Internal(op, err)
	}
	latest, err := s.rdb.Get(ctx, seqKey(project)).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, 0, core.Internal(op, err)
	}
	var oldest int64
	if len(first) == 1 {
		oldest = seqOfID(first[0].ID)
	}
	return oldest, latest, nil
}

// LatestLeaseEventID returns the newest lease event id, "0-0" when there is none.
func (s *Store) LatestLeaseEventID(ctx context.Context, project string) (string, error) {
	last, err := s.rdb.XRevRangeN(ctx, leaseEventsKey(project), "+", "-", 1).Result()
	if err != nil {
		return "", core.Internal("redisstore.LatestLeaseEventID", err)
	}
	if len(last) == 0 {
		return "0-0", nil
	}
	return last[0].ID, nil
}

// WaitKey blocks until the key's stream has an entry after afterSeq, or block passes.
func (s *Store) WaitKey(ctx context.Context, project, key string, afterSeq int64, block time.Duration) error {
	if block < time.Millisecond {
		block = time.Millisecond
	}
	err := s.rdb.XRead(ctx, &redis.XReadArgs{
		Streams: []string{stateKey(project, key), seqID(afterSeq)}, Count: 1, Block: block,
	}).Err()
	if err != nil && !errors.Is(err, redis.Nil) && ctx.Err() == nil {
		return core.Internal("redisstore.WaitKey", err)
	}
	return nil
}

func leaseEventsFrom(msgs []redis.XMessage) []core.LeaseEvent {
	out := make([]core.LeaseEvent, len(msgs))
	for i, m := range msgs {
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		e := core.LeaseEvent{ID: m.ID, Type: str("type"), LeaseID: str("lease_id"), StateKey: str("state_key"),
			Holder: str("holder"), AgentID: str("agent_id"), OwnerChain: chainFrom(str("chain"))}
		e.FencingToken, _ = strconv.ParseInt(str("fencing_token"), 10, 64)
		e.At, _ = strconv.ParseInt(str("at"), 10, 64)
		out[i] = e
	}
	return out
}
