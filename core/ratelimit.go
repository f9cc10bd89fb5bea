package core

import (
	"context"
	"fmt"
	"slices"
	"sync"
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
	expiries  expiriesSent
}

// RateCounter is one counter a request adds to: the credential's, or the minting key's.
type RateCounter struct {
	ID string
	// SetExpiry asks the store to (re)set the counter's expiry with this count. Only a
	// replica's first count of a counter in a window asks, so a steady request costs one INCR
	// and not INCR + PEXPIRE. The INCR that creates a counter is either such a first count or
	// one that finds the counter new without having asked (the key was removed since, or this
	// replica's first count is still on its way), which sets the expiry right after
	// (AuthStore.CredentialAndCount): no counter is left without one.
	SetExpiry bool
}

// expiriesSent is which counters this replica has set the expiry of in the current window.
// It forgets everything at each new window, so it holds at most the credentials counted here
// in one minute.
type expiriesSent struct {
	mu     sync.Mutex
	window int64
	set    map[string]struct{}
}

// first reports whether id's counter in window has not had its expiry set by this replica yet,
// and records that it now has.
func (e *expiriesSent) first(window int64, id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.window != window || e.set == nil {
		e.window, e.set = window, map[string]struct{}{}
	}
	if _, ok := e.set[id]; ok {
		return false
	}
	e.set[id] = struct{}{}
	return true
}

// failed forgets the expiries that counters' failed round trip may not have set.
func (e *expiriesSent) failed(window int64, counters []RateCounter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.window != window {
		return
	}
	for _, c := range counters {
		if c.SetExpiry {
			delete(e.set, c.ID)
		}
	}
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
	now, window, counters := l.charge(p.CredentialID, p.MintedBy)
	if counters == nil {
		return RateStatus{}, nil
	}
	ids := make([]string, len(counters))
	for i, c := range counters {
		ids[i] = c.ID
	}
	counts, err := l.store.CountRequest(ctx, p.ProjectID, window, ids...) // sets every expiry
	if err != nil {
		l.failed(window, counters)
		return RateStatus{}, Internal("core.RateLimiter.Allow", err)
	}
	return l.verdict(now, counts)
}

// charge names the counters a request of credential (minted by mintedBy, "" for a key) adds
// to and the window they count in; no counters with the limiter off.
func (l *RateLimiter) charge(credential, mintedBy string) (time.Time, int64, []RateCounter) {
	if l == nil || l.perWindow <= 0 {
		return time.Time{}, 0, nil
	}
	now := l.clock.Now()
	window := now.Truncate(RateWindow).UnixMilli()
	counters := []RateCounter{{ID: credential, SetExpiry: l.expiries.first(window, credential)}}
	if mintedBy != "" {
		counters = append(counters, RateCounter{ID: mintedBy, SetExpiry: l.expiries.first(window, mintedBy)})
	}
	return now, window, counters
}

// failed is told that counting counters in window failed: their expiries may not be set.
func (l *RateLimiter) failed(window int64, counters []RateCounter) {
	if l != nil {
		l.expiries.failed(window, counters)
	}
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
