package redisstore

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// This file decides which Redis failures mean "the store is unavailable right now": Redis
// unreachable, restarting, failing over, or a cluster slot in motion. Such errors are wrapped
// in unavailableError, which core.Internal turns into STORE_UNAVAILABLE (503, retryable)
// instead of INTERNAL_ERROR. The wrapping happens once, in a client hook, so every command,
// pipeline and script of the store is covered without each call site knowing.

// unavailableError marks a cause as a store outage; it unwraps to the Redis error, so
// errors.Is(err, redis.Nil) and go-redis's own Is*Error checks keep working.
type unavailableError struct{ err error }

func (e unavailableError) Error() string          { return "store unavailable: " + e.err.Error() }
func (e unavailableError) Unwrap() error          { return e.err }
func (e unavailableError) StoreUnavailable() bool { return true }

// classify wraps err when it means the store is unavailable, else returns it unchanged.
func classify(err error) error {
	if err == nil || !isUnavailable(err) {
		return err
	}
	var already unavailableError
	if errors.As(err, &already) {
		return err
	}
	return unavailableError{err}
}

func isUnavailable(err error) bool {
	if errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return false // an answer, or the caller went away: not an outage
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return true // refused, reset, timed out
	}
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, syscall.ECONNREFUSED, syscall.ECONNRESET,
		syscall.EPIPE, redis.ErrClosed, redis.ErrPoolTimeout, redis.ErrPoolExhausted} {
		if errors.Is(err, e) {
			return true
		}
	}
	if _, moved := redis.IsMovedError(err); moved {
		return true // redirects exhausted while a slot moves
	}
	if _, ask := redis.IsAskError(err); ask {
		return true
	}
	return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsMasterDownError(err) || redis.IsNoReplicasError(err) ||
		redis.IsMaxClientsError(err) || err.Error() == "redis: cluster has no nodes" ||
		redis.HasErrorPrefix(err, "BUSY ")
}

// availabilityHook classifies the error of every command and pipeline the client runs.
type availabilityHook struct{}

func (availabilityHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (availabilityHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := classify(next(ctx, cmd))
		if err != nil && cmd.Err() != nil {
			cmd.SetErr(classify(cmd.Err()))
		}
		return err
	}
}

func (availabilityHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := classify(next(ctx, cmds))
		for _, c := range cmds {
			if c.Err() != nil {
				c.SetErr(classify(c.Err()))
			}
		}
		return err
	}
}
