package core

import "time"

// Clock is injected wherever time matters, so tests move time instead of sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// NowMs is the wire time unit: Unix milliseconds.
func NowMs(c Clock) int64 { return c.Now().UnixMilli() }
