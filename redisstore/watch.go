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
// asked — then on the blocking-read pool, which only the watch hub's one reader per project
// uses. Log entries name the key; the full events are then read from the keys' streams.
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
	c := s.rdb
	if block > 0 {
		c = s.blocking
	}
	res, err := c.XRead(ctx, args).Result()
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
		if n := len(b.States); n > 0 {
			s.sawSequence(project, b.States[n-1].Sequence)
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

// WatchBounds reads the log's first entry, the sequence counter and the lease stream's last
// entry in one MULTI/EXEC (all three share the project's slot), so no write falls between
// them: read apart, a project's first write landing between the log read and the counter read
// made an empty log look trimmed and the watch skip event 1.
func (s *Store) WatchBounds(ctx context.Context, project string) (core.FeedBounds, error) {
	const op = "redisstore.WatchBounds"
	var first, last *redis.XMessageSliceCmd
	var seq *redis.StringCmd
	seen := s.seqSeen(project) // before the read: see seqSeen
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		first = p.XRangeN(ctx, logKey(project), "-", "+", 1)
		seq = p.Get(ctx, seqKey(project))
		last = p.XRevRangeN(ctx, leaseEventsKey(project), "+", "-", 1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return core.FeedBounds{}, core.Internal(op, err)
	}
	b := core.FeedBounds{LeaseHead: "0-0"}
	if b.Latest, err = seq.Int64(); err != nil && !errors.Is(err, redis.Nil) {
		return core.FeedBounds{}, core.Internal(op, err)
	}
	// A counter below what this server saw issued: the store lost the project's last writes.
	if err := s.checkSequence(ctx, project, b.Latest, seen); err != nil {
		return core.FeedBounds{}, core.Internal(op, err)
	}
	if m := first.Val(); len(m) == 1 {
		b.Oldest = seqOfID(m[0].ID)
	}
	if m := last.Val(); len(m) == 1 {
		b.LeaseHead = m[0].ID
	}
	return b, nil
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
