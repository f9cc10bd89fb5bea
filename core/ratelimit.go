package core

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// RateWindow is v1's fixed window: counts reset at each UTC minute.
const RateWindow = time.Minute

// RateLimitStore counts requests per credential and window in the store, so every server
// replica sees the same counters.
type RateLimitStore interface {
	// CountRequest adds one to each credential's counter for the window starting at windowStart
	// (Unix ms), atomically, and returns the new counts.
	CountRequest(ctx context.Context, project string, windowStart int64, credentialIDs ...string) ([]int64, error)
}

// RateLimiter applies a per-credential request budget.
type RateLimiter struct {
	store     RateLimitStore
	clock     Clock
	perWindow int64    // 0 = off
	Observer  Observer // counts refusals; nil = not counted
}

// NewRateLimiter builds a limiter of perMinute requests per credential; 0 turns it off.
func NewRateLimiter(store RateLimitStore, clock Clock, perMinute int) *RateLimiter {
	return &RateLimiter{store: store, clock: clock, perWindow: int64(perMinute)}
}

// RateStatus is what a response tells the client about its budget (the X-RateLimit-* headers).
type RateStatus struct {
	Limit      int64
	Remaining  int64
	Reset      int64 // Unix seconds at which the window ends
	RetryAfter int64 // seconds; set when the request was refused
}

// Allow counts one request of p. Over budget it returns the status and a RATE_LIMITED error
// with v1's message. With the limiter off the status is zero. A capability token's request
// also counts against the API key that minted its chain, so minting children multiplies no
// budget: the tighter of the two counters decides.
func (l *RateLimiter) Allow(ctx context.Context, p Principal) (RateStatus, error) {
	now, window, ids := l.charge(p.CredentialID, p.MintedBy)
	if ids == nil {
		return RateStatus{}, nil
	}
	counts, err := l.store.CountRequest(ctx, p.ProjectID, window, ids...)
	if err != nil {
		return RateStatus{}, Internal("core.RateLimiter.Allow", err)
	}
	return l.verdict(now, counts)
}

// charge names the counters a request of credential (minted by mintedBy, "" for a key) adds
// to and the window they count in; no counters with the limiter off.
func (l *RateLimiter) charge(credential, mintedBy string) (time.Time, int64, []string) {
	if l == nil || l.perWindow <= 0 {
		return time.Time{}, 0, nil
	}
	now := l.clock.Now()
	ids := []string{credential}
	if mintedBy != "" {
		ids = append(ids, mintedBy)
	}
	return now, now.Truncate(RateWindow).UnixMilli(), ids
}

// verdict turns the counts charge's counters reached at now into the status and, over budget,
// the RATE_LIMITED error.
func (l *RateLimiter) verdict(now time.Time, counts []int64) (RateStatus, error) {
	if len(counts) == 0 {
		return RateStatus{}, nil
	}
	end := now.Truncate(RateWindow).Add(RateWindow)
	n := slices.Max(counts)
	st := RateStatus{Limit: l.perWindow, Remaining: max(l.perWindow-n, 0), Reset: end.Unix()}
	if n <= l.perWindow {
		return st, nil
	}
	Observe(l.Observer, EventRateLimited, 1)
	st.RetryAfter = max(int64((end.Sub(now)+time.Second-1)/time.Second), 1)
	return st, &Error{Op: "core.RateLimiter.Allow", Code: CodeRateLimited, Message: fmt.Sprintf(
		"Rate limit exceeded. Maximum %d requests per minute. Retry after %d seconds.", l.perWindow, st.RetryAfter)}
}
