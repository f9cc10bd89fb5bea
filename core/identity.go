package core

import (
	"context"
	"errors"
)

// RequestCounter reads credentials' counts in a window without adding to them; stores that can
// offer it let whoami report the budget without spending any, and the console show request rates.
type RequestCounter interface {
	RequestCounts(ctx context.Context, project string, windowStart int64, credentialIDs ...string) ([]int64, error)
}

// Budget is p's rate-limit status now, not counting a request. With the limiter off (or a
// store that cannot read counters) it is the zero status.
func (l *RateLimiter) Budget(ctx context.Context, p Principal) (RateStatus, error) {
	c, ok := l.counter()
	if !ok {
		return RateStatus{}, nil
	}
	start := l.clock.Now().Truncate(RateWindow)
	ns, err := c.RequestCounts(ctx, p.ProjectID, start.UnixMilli(), p.CredentialID)
	if err != nil {
		return RateStatus{}, Internal("core.RateLimiter.Budget", err)
	}
	n := ns[0]
	return RateStatus{Limit: l.perWindow, Remaining: max(l.perWindow-n, 0), Reset: start.Add(RateWindow).Unix()}, nil
}

func (l *RateLimiter) counter() (RequestCounter, bool) {
	if l == nil || l.perWindow <= 0 {
		return nil, false
	}
	c, ok := l.store.(RequestCounter)
	return c, ok
}

// CredentialName is the name p's key or token was created with ("" if it has none).
func (k *Keys) CredentialName(ctx context.Context, p Principal) (string, error) {
	const op = "core.Keys.CredentialName"
	if p.Kind == KindCapabilityToken {
		t, err := k.store.Token(ctx, p.ProjectID, p.CredentialID)
		if err != nil {
			return "", Internal(op, err)
		}
		if t == nil {
			return "", Internal(op, errors.New("token record missing"))
		}
		return t.Name, nil
	}
	keys, err := k.store.ListAPIKeys(ctx, p.ProjectID)
	if err != nil {
		return "", Internal(op, err)
	}
	for _, key := range keys {
		if key.ID == p.CredentialID {
			return key.Name, nil
		}
	}
	return "", nil
}

// OpWhoami is the identity question every live credential may ask; it needs no scope.
var OpWhoami = read("identity.whoami", "", KeysAndTokens)
