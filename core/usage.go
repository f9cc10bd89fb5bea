package core

import "context"

// UsageReport is GET /api/v1/usage: what the console's overview shows about load.
type UsageReport struct {
	WatchersConnected int               `json:"watchers_connected" jsonschema_description:"Watch streams of this project open on the server replica that answered (each replica counts its own)."`
	RateLimit         int64             `json:"rate_limit" jsonschema_description:"Requests per credential per minute; 0 = no limit, and then requests are not counted."`
	WindowStart       int64             `json:"window_start" jsonschema_description:"Unix ms at which the current one-minute window began."`
	Credentials       []CredentialUsage `json:"credentials" jsonschema_description:"Live API keys and capability tokens, with their request counts (empty counts when there is no limit)."`
}

// CredentialUsage is one credential's request counts.
type CredentialUsage struct {
	ID       string         `json:"id"`
	Kind     CredentialKind `json:"kind" jsonschema:"enum=api_key,enum=capability_token"`
	Name     string         `json:"name"`
	AgentID  *string        `json:"agent_id" jsonschema_description:"The agent a capability token is bound to; null for keys and unbound tokens."`
	Requests int64          `json:"requests" jsonschema_description:"Requests counted in the current window so far. An API key's count includes the requests of the tokens it minted, as its rate limit does."`
	Previous int64          `json:"previous_window" jsonschema_description:"Requests counted in the previous (whole) minute: the request rate per minute."`
}

// Usage reports the watchers connected and each live credential's request rate. Counts come
// from the rate limiter's own per-credential counters (read, not added to), so they exist only
// when a limit is set.
func Usage(ctx context.Context, p Principal, keys *Keys, limiter *RateLimiter, watchers WatchCounter) (UsageReport, error) {
	const op = "core.Usage"
	if err := p.Authorize(OpUsage); err != nil {
		return UsageReport{}, err
	}
	ks, err := keys.ListAPIKeys(ctx, p)
	if err != nil {
		return UsageReport{}, err
	}
	ts, err := keys.ListTokens(ctx, p)
	if err != nil {
		return UsageReport{}, err
	}
	out := UsageReport{Credentials: []CredentialUsage{}}
	if watchers != nil {
		out.WatchersConnected = watchers.Connected(p.ProjectID)
	}
	var ids []string
	for _, k := range ks.Data {
		if k.RevokedAt == nil {
			out.Credentials = append(out.Credentials, CredentialUsage{ID: k.ID, Kind: KindAPIKey, Name: k.Name})
			ids = append(ids, k.ID)
		}
	}
	for _, t := range ts.Data {
		out.Credentials = append(out.Credentials, CredentialUsage{ID: t.ID, Kind: KindCapabilityToken, Name: t.Name, AgentID: t.AgentID})
		ids = append(ids, t.ID)
	}
	c, ok := limiter.counter()
	if !ok || len(ids) == 0 {
		return out, nil
	}
	out.RateLimit = limiter.perWindow
	start := limiter.clock.Now().Truncate(RateWindow)
	out.WindowStart = start.UnixMilli()
	now, err := c.RequestCounts(ctx, p.ProjectID, start.UnixMilli(), ids...)
	if err != nil {
		return UsageReport{}, Internal(op, err)
	}
	prev, err := c.RequestCounts(ctx, p.ProjectID, start.Add(-RateWindow).UnixMilli(), ids...)
	if err != nil {
		return UsageReport{}, Internal(op, err)
	}
	for i := range out.Credentials {
		out.Credentials[i].Requests, out.Credentials[i].Previous = now[i], prev[i]
	}
	return out, nil
}
