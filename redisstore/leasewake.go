package redisstore

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

// Lease hand-off is pushed, not polled: a script that frees a key PUBLISHes the id of the
// waiter now at the front on leaseWakeChannel, and the replica where that waiter blocks wakes
// it to run acquire_lease.lua, which grants it the key. Pub/sub over a per-waiter BLPOP list
// because the freeing script cannot name a waiter's key in KEYS before it knows the waiter;
// over a stream read because one subscription per replica serves every waiter, where XREAD
// BLOCK would cost a connection and a re-read per waiter per hand-off. Pub/sub may drop a
// message while the subscription reconnects, so on every resubscription all local waiters
// look again, and each waiter also looks again at the deadline it was given (the lease's
// expiry, or the deadline of the waiter ahead of it): a lost wake-up delays, never strands.

type wakeHub struct {
	mu      sync.Mutex
	ps      *redis.PubSub
	waiters map[string]chan struct{}
}

// LeaseWakes registers waiter id; the first call subscribes this replica.
func (s *Store) LeaseWakes(ctx context.Context, id string) (<-chan struct{}, func(), error) {
	h := &s.wake
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ps == nil {
		ps := s.rdb.Subscribe(context.WithoutCancel(ctx), leaseWakeChannel)
		// Wait for the confirmation: only then can no wake-up published later be missed.
		if _, err := ps.Receive(ctx); err != nil {
			_ = ps.Close()
			return nil, nil, core.Internal("redisstore.LeaseWakes", err)
		}
		h.ps, h.waiters = ps, map[string]chan struct{}{}
		go h.run(ps.ChannelWithSubscriptions())
	}
	ch := make(chan struct{}, 1)
	h.waiters[id] = ch
	return ch, func() {
		h.mu.Lock()
		delete(h.waiters, id)
		h.mu.Unlock()
	}, nil
}

func (h *wakeHub) run(msgs <-chan any) {
	for m := range msgs {
		h.mu.Lock()
		switch m := m.(type) {
		case *redis.Message:
			if ch, ok := h.waiters[m.Payload]; ok {
				signal(ch)
			}
		case *redis.Subscription:
			// Resubscribed after a reconnect: wake-ups may have been lost meanwhile.
			for _, ch := range h.waiters {
				signal(ch)
			}
		}
		h.mu.Unlock()
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Close ends this replica's wake-up subscription.
func (s *Store) Close() error {
	s.wake.mu.Lock()
	defer s.wake.mu.Unlock()
	if s.wake.ps == nil {
		return nil
	}
	err := s.wake.ps.Close()
	s.wake.ps = nil
	return err
}
