package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

var (
	//go:embed scripts/grant_lease.lua
	grantLeaseLua string
	//go:embed scripts/end_lease.lua
	endLeaseLua string
	//go:embed scripts/renew_lease.lua
	renewLeaseLua string

	grantLeaseScript = redis.NewScript(grantLeaseLua)
	endLeaseScript   = redis.NewScript(endLeaseLua)
	renewLeaseScript = redis.NewScript(renewLeaseLua)
)

const (
	leaseEventsCap = 100_000 // approximate length the lease event stream is trimmed to
	waiterTTL      = 5 * time.Second
	sweepBatch     = 100
)

// TryLock takes the key's lock through redsync with the lease id as the lock value, so the
// lock itself names its holder and every script can check "still ours".
func (s *Store) TryLock(ctx context.Context, project, key, id string, ttl time.Duration) (bool, error) {
	m := s.rs.NewMutex(leaseLockKey(project, key), redsync.WithExpiry(ttl), redsync.WithTries(1),
		redsync.WithGenValueFunc(func() (string, error) { return id, nil }))
	err := m.TryLockContext(ctx)
	var taken *redsync.ErrTaken
	if err == nil {
		return true, nil
	}
	if errors.As(err, &taken) || errors.Is(err, redsync.ErrFailed) {
		return false, nil
	}
	return false, core.Internal("redisstore.TryLock", err)
}

// Grant runs grant_lease.lua on a lock TryLock took.
func (s *Store) Grant(ctx context.Context, project string, l core.Lease, ttlMs int64, waiter string) (core.Lease, bool, error) {
	res, err := s.run(ctx, grantLeaseScript, []string{
		leaseLockKey(project, l.StateKey), fenceKey(project, l.StateKey), leaseRecordKey(project, l.ID),
		activeLeasesKey(project), leaseEventsKey(project), leaseQueueKey(project, l.StateKey),
	}, l.ID, l.StateKey, l.Holder, ttlMs, l.CreatedAt, l.RequestID, waiter, leaseEventsCap).Slice()
	if err != nil {
		return core.Lease{}, false, core.Internal("redisstore.Grant", err)
	}
	if res[0] != "OK" {
		return core.Lease{}, false, nil
	}
	l.FencingToken, l.ExpiresAt, l.Status = res[1].(int64), res[2].(int64), core.LeaseActive
	if err := s.write(ctx, leaseProjectsKey(), func(c redis.Cmdable) error {
		return c.SAdd(ctx, leaseProjectsKey(), project).Err()
	}); err != nil {
		return core.Lease{}, false, core.Internal("redisstore.Grant", err)
	}
	return l, true, nil
}

func (s *Store) endLease(ctx context.Context, project string, l *core.Lease, now int64, how string) (bool, error) {
	n, err := s.run(ctx, endLeaseScript, []string{
		leaseRecordKey(project, l.ID), leaseLockKey(project, l.StateKey), activeLeasesKey(project), leaseEventsKey(project),
	}, l.ID, now, how, leaseEventsCap).Int()
	if err != nil {
		return false, core.Internal("redisstore.endLease", err)
	}
	return n == 1, nil
}

// ExpireDue ends the lease holding key if it is past its expiry.
func (s *Store) ExpireDue(ctx context.Context, project, key string, now int64) error {
	l, err := s.LeaseOnKey(ctx, project, key)
	if err != nil || l == nil || l.ExpiresAt > now {
		return err
	}
	_, err = s.endLease(ctx, project, l, now, core.LeaseExpired)
	return err
}

// Release ends a lease; false when it was unknown or already released.
func (s *Store) Release(ctx context.Context, project, id string, now int64) (bool, error) {
	l, err := s.Lease(ctx, project, id)
	if err != nil || l == nil {
		return false, err
	}
	return s.endLease(ctx, project, l, now, core.LeaseReleased)
}

var renewErrors = map[string]struct {
	code core.Code
	msg  string
}{
	"NOT_FOUND":     {core.CodeNotFound, core.MsgLeaseNotFound},
	"LEASE_EXPIRED": {core.CodeLeaseExpired, core.MsgLeaseExpired},
}

// Renew runs renew_lease.lua.
func (s *Store) Renew(ctx context.Context, project, id string, ttlMs, now int64) (core.Lease, error) {
	const op = "redisstore.Renew"
	l, err := s.Lease(ctx, project, id)
	if err != nil {
		return core.Lease{}, err
	}
	if l == nil {
		return core.Lease{}, core.E(op, core.CodeNotFound, core.MsgLeaseNotFound)
	}
	res, err := s.run(ctx, renewLeaseScript, []string{
		leaseRecordKey(project, id), leaseLockKey(project, l.StateKey), activeLeasesKey(project), leaseEventsKey(project),
	}, id, ttlMs, now, leaseEventsCap).Slice()
	if err != nil {
		return core.Lease{}, core.Internal(op, err)
	}
	if res[0] != "OK" {
		e := renewErrors[res[1].(string)]
		return core.Lease{}, core.E(op, e.code, e.msg)
	}
	l.ExpiresAt, l.RenewedAt = res[1].(int64), now
	return *l, nil
}

func leaseFromFields(f map[string]string) core.Lease {
	l := core.Lease{ID: f["id"], StateKey: f["state_key"], Holder: f["holder"], Status: f["status"], RequestID: f["request_id"]}
	for name, dst := range map[string]*int64{
		"fencing_token": &l.FencingToken, "expires_at": &l.ExpiresAt, "created_at": &l.CreatedAt, "renewed_at": &l.RenewedAt,
	} {
		*dst, _ = strconv.ParseInt(f[name], 10, 64)
	}
	return l
}

// Lease reads a lease record by id.
func (s *Store) Lease(ctx context.Context, project, id string) (*core.Lease, error) {
	f, err := s.rdb.HGetAll(ctx, leaseRecordKey(project, id)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.Lease", err)
	}
	if len(f) == 0 {
		return nil, nil
	}
	l := leaseFromFields(f)
	return &l, nil
}

// LeaseOnKey returns the lease whose lock holds key (possibly past its expiry), or nil.
func (s *Store) LeaseOnKey(ctx context.Context, project, key string) (*core.Lease, error) {
	id, err := s.rdb.Get(ctx, leaseLockKey(project, key)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, core.Internal("redisstore.LeaseOnKey", err)
	}
	l, err := s.Lease(ctx, project, id)
	if l == nil || l.Status != core.LeaseActive {
		return nil, err
	}
	return l, nil
}

// ActiveLeases pages the active-lease index by (expires_at, id), after the lease id given.
func (s *Store) ActiveLeases(ctx context.Context, project string, after string, limit int) ([]core.Lease, error) {
	const op = "redisstore.ActiveLeases"
	from := "-inf"
	if after != "" {
		score, err := s.rdb.ZScore(ctx, activeLeasesKey(project), after).Result()
		if errors.Is(err, redis.Nil) {
			return nil, core.E(op, core.CodeInvalidCursor, core.MsgLeaseCursorExpiry)
		}
		if err != nil {
			return nil, core.Internal(op, err)
		}
		from = strconv.FormatFloat(score, 'f', 0, 64)
	}
	// Ties on expires_at: read enough to skip past the cursor's own position.
	zs, err := s.rdb.ZRangeByScore(ctx, activeLeasesKey(project), &redis.ZRangeBy{Min: from, Max: "+inf", Count: int64(limit) + 64}).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	if after != "" {
		for i, id := range zs {
			if id == after {
				zs = zs[i+1:]
				break
			}
		}
	}
	zs = zs[:min(len(zs), limit)]
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(zs))
	for i, id := range zs {
		cmds[i] = pipe.HGetAll(ctx, leaseRecordKey(project, id))
	}
	if _, err := pipe.Exec(ctx); err != nil && len(zs) > 0 {
		return nil, core.Internal(op, err)
	}
	out := make([]core.Lease, 0, len(zs))
	for _, c := range cmds {
		if f := c.Val(); len(f) > 0 {
			out = append(out, leaseFromFields(f))
		}
	}
	return out, nil
}

// LeaseEvents reads the project's lease event stream after a stream id.
func (s *Store) LeaseEvents(ctx context.Context, project, after string, limit int) ([]core.LeaseEvent, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := s.rdb.XRangeN(ctx, leaseEventsKey(project), start, "+", int64(limit)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.LeaseEvents", err)
	}
	out := leaseEventsFrom(msgs)
	return out, nil
}

// Enqueue puts a waiter at the back of the key's queue; arrival order comes from a counter, so
// it is the order Redis saw the requests in.
func (s *Store) Enqueue(ctx context.Context, project, key, waiter string) error {
	n, err := s.rdb.Incr(ctx, leaseWaiterSeqKey(project)).Result()
	if err == nil {
		err = s.KeepWaiting(ctx, project, waiter)
	}
	if err == nil {
		err = s.rdb.ZAdd(ctx, leaseQueueKey(project, key), redis.Z{Score: float64(n), Member: waiter}).Err()
	}
	if err != nil {
		return core.Internal("redisstore.Enqueue", err)
	}
	return nil
}

// KeepWaiting refreshes a waiter's liveness; a waiter whose server died stops refreshing and is
// dropped from the head of the queue after waiterTTL.
func (s *Store) KeepWaiting(ctx context.Context, project, waiter string) error {
	if err := s.rdb.Set(ctx, leaseWaiterKey(project, waiter), 1, waiterTTL).Err(); err != nil {
		return core.Internal("redisstore.KeepWaiting", err)
	}
	return nil
}

// Dequeue removes a waiter that gave up.
func (s *Store) Dequeue(ctx context.Context, project, key, waiter string) error {
	err := s.tx(ctx, leaseQueueKey(project, key), func(p redis.Pipeliner) error {
		p.ZRem(ctx, leaseQueueKey(project, key), waiter)
		p.Del(ctx, leaseWaiterKey(project, waiter))
		return nil
	})
	if err != nil {
		return core.Internal("redisstore.Dequeue", err)
	}
	return nil
}

// Head returns the first live waiter on key ("" if none), dropping dead ones on the way.
func (s *Store) Head(ctx context.Context, project, key string) (string, error) {
	for range 16 {
		ids, err := s.rdb.ZRange(ctx, leaseQueueKey(project, key), 0, 0).Result()
		if err != nil {
			return "", core.Internal("redisstore.Head", err)
		}
		if len(ids) == 0 {
			return "", nil
		}
		alive, err := s.rdb.Exists(ctx, leaseWaiterKey(project, ids[0])).Result()
		if err != nil {
			return "", core.Internal("redisstore.Head", err)
		}
		if alive == 1 {
			return ids[0], nil
		}
		if err := s.rdb.ZRem(ctx, leaseQueueKey(project, key), ids[0]).Err(); err != nil {
			return "", core.Internal("redisstore.Head", err)
		}
	}
	return "", core.Internal("redisstore.Head", fmt.Errorf("queue of %s: too many dead waiters", key))
}

// SweepExpired ends due leases in every project that has active ones.
func (s *Store) SweepExpired(ctx context.Context, now int64) (int, error) {
	const op = "redisstore.SweepExpired"
	projects, err := s.rdb.SMembers(ctx, leaseProjectsKey()).Result()
	if err != nil {
		return 0, core.Internal(op, err)
	}
	ended := 0
	for _, p := range projects {
		ids, err := s.rdb.ZRangeByScore(ctx, activeLeasesKey(p), &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(now, 10), Count: sweepBatch,
		}).Result()
		if err != nil {
			return ended, core.Internal(op, err)
		}
		for _, id := range ids {
			l, err := s.Lease(ctx, p, id)
			if err != nil {
				return ended, err
			}
			if l == nil {
				continue
			}
			ok, err := s.endLease(ctx, p, l, now, core.LeaseExpired)
			if err != nil {
				return ended, err
			}
			if ok {
				ended++
			}
		}
		if err := s.forgetIdleProject(ctx, p); err != nil {
			return ended, err
		}
	}
	return ended, nil
}

// forgetIdleProject drops a project without active leases from the sweep set. A grant racing
// with the removal re-adds itself, or is seen by the re-check.
func (s *Store) forgetIdleProject(ctx context.Context, project string) error {
	n, err := s.rdb.ZCard(ctx, activeLeasesKey(project)).Result()
	if err != nil || n > 0 {
		return err
	}
	if err := s.rdb.SRem(ctx, leaseProjectsKey(), project).Err(); err != nil {
		return core.Internal("redisstore.forgetIdleProject", err)
	}
	if n, err = s.rdb.ZCard(ctx, activeLeasesKey(project)).Result(); err == nil && n > 0 {
		err = s.rdb.SAdd(ctx, leaseProjectsKey(), project).Err()
	}
	return err
}
