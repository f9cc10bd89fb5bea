package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

// The store generation detects that Redis lost its data under a running server: a FLUSHALL, a
// restart from an older snapshot, a replica promoted empty. The first server on a store writes
// a random id under generationKey; every server remembers the id it found at start and checks
// it on a timer (CheckGeneration). Gone or different, the store is not the one this server was
// serving: sequences, fencing tokens and keys would be issued again or answer 401, so from
// then on every command this process sends answers STORE_RESET (503) instead, until an
// operator has looked and restarted the server (which then adopts the store as it is).

type generation struct {
	mu     sync.Mutex
	id     string                 // the id found at the first check; "" = never checked
	reason atomic.Pointer[string] // why the store counts as reset; nil while it does not
}

// resetError answers every command once the store counts as reset.
type resetError struct{ reason string }

func (e resetError) Error() string       { return "store reset: " + e.reason }
func (e resetError) StoreWasReset() bool { return true }

// generationCheck marks the context of the generation check itself, which must reach Redis
// even after a reset was seen.
type generationCheck struct{}

// CheckGeneration adopts the store's generation on the first call (creating it on a new
// store) and, on later calls, returns a STORE_RESET error if the generation key vanished or
// changed since; from then on the store refuses every command.
func (s *Store) CheckGeneration(ctx context.Context) error {
	const op = "redisstore.CheckGeneration"
	g := &s.gen
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := g.reason.Load(); r != nil {
		return core.Internal(op, resetError{*r})
	}
	ctx = context.WithValue(ctx, generationCheck{}, true)
	if g.id == "" {
		id := core.NewID()
		if err := s.write(ctx, generationKey(), func(c redis.Cmdable) error {
			return c.SetNX(ctx, generationKey(), id, 0).Err()
		}); err != nil {
			return core.Internal(op, err)
		}
		v, err := s.rdb.Get(ctx, generationKey()).Result()
		if err != nil {
			return core.Internal(op, err)
		}
		g.id = v
		return nil
	}
	v, err := s.rdb.Get(ctx, generationKey()).Result()
	switch {
	case errors.Is(err, redis.Nil):
		v = ""
	case err != nil:
		return core.Internal(op, err) // unreachable is an outage, not a reset
	}
	if v == g.id {
		return nil
	}
	reason := fmt.Sprintf("generation key %s was %q at start and is now %q: the data was flushed or restored from an older copy", generationKey(), g.id, v)
	if v == "" {
		reason = fmt.Sprintf("generation key %s (%q at start) is gone: the data was flushed or restored from a copy older than this store", generationKey(), g.id)
	}
	g.reason.Store(&reason)
	return core.Internal(op, resetError{reason})
}

// resetHook refuses every command once the store counts as reset.
type resetHook struct{ g *generation }

func (resetHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h resetHook) refused(ctx context.Context) error {
	if r := h.g.reason.Load(); r != nil && ctx.Value(generationCheck{}) == nil {
		return resetError{*r}
	}
	return nil
}

func (h resetHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := h.refused(ctx); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h resetHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := h.refused(ctx); err != nil {
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}
