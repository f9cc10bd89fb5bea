package redisstore

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/oauth"
)

var (
	//go:embed scripts/consume_oauth_code.lua
	consumeOAuthCodeLua string
	//go:embed scripts/rotate_oauth_refresh.lua
	rotateOAuthRefreshLua string

	consumeOAuthCodeScript   = redis.NewScript(consumeOAuthCodeLua)
	rotateOAuthRefreshScript = redis.NewScript(rotateOAuthRefreshLua)
)

var _ oauth.Store = (*Store)(nil)

// PutOAuthClient stores a client registration as one JSON document.
func (s *Store) PutOAuthClient(ctx context.Context, c oauth.Client) error {
	b, err := json.Marshal(c)
	if err != nil {
		return core.Internal("redisstore.PutOAuthClient", err)
	}
	if err := s.write(ctx, oauthClientKey(c.ID), func(r redis.Cmdable) error {
		return r.Set(ctx, oauthClientKey(c.ID), b, 0).Err()
	}); err != nil {
		return core.Internal("redisstore.PutOAuthClient", err)
	}
	return nil
}

// OAuthClient reads a registration; nil when there is none.
func (s *Store) OAuthClient(ctx context.Context, id string) (*oauth.Client, error) {
	b, err := s.rdb.Get(ctx, oauthClientKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, core.Internal("redisstore.OAuthClient", err)
	}
	var c oauth.Client
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, core.Internal("redisstore.OAuthClient", err)
	}
	return &c, nil
}

// PutCode stores an authorization code's record for ttl (its lifetime: a code is never
// consulted after it expires, and the consumed marker lives as long as a replay could come).
func (s *Store) PutCode(ctx context.Context, project, hash string, c oauth.Code, ttl time.Duration) error {
	key := oauthCodeKey(project, hash)
	err := s.tx(ctx, key, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "grant", c.Grant, "client_id", c.ClientID, "redirect_uri", c.RedirectURI,
			"redirect_given", flag(c.RedirectGiven), "challenge", c.Challenge, "resource", c.Resource, "scope", c.Scope, "expires_at", c.ExpiresAt)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return core.Internal("redisstore.PutCode", err)
	}
	return nil
}

// ConsumeCode runs consume_oauth_code.lua.
func (s *Store) ConsumeCode(ctx context.Context, project, hash string, now int64) (*oauth.Code, oauth.Outcome, error) {
	const op = "redisstore.ConsumeCode"
	res, err := s.run(ctx, consumeOAuthCodeScript, []string{oauthCodeKey(project, hash), revokedTokensKey(project)}, now).StringSlice()
	if err != nil {
		return nil, oauth.Unknown, core.Internal(op, err)
	}
	switch res[0] {
	case "unknown":
		return nil, oauth.Unknown, nil
	case "expired":
		return nil, oauth.Expired, nil
	case "replayed":
		return &oauth.Code{Grant: res[1]}, oauth.Replayed, nil
	case "ok":
		f := map[string]string{}
		for i := 1; i+1 < len(res); i += 2 {
			f[res[i]] = res[i+1]
		}
		return &oauth.Code{Grant: f["grant"], ClientID: f["client_id"], RedirectURI: f["redirect_uri"], RedirectGiven: f["redirect_given"] == "1",
			Challenge: f["challenge"], Resource: f["resource"], Scope: f["scope"], ExpiresAt: int64Field(f, "expires_at")}, oauth.Exchanged, nil
	}
	return nil, oauth.Unknown, core.Internal(op, fmt.Errorf("unexpected script reply %q", res[0]))
}

// PutRefresh stores a refresh token's record for ttl.
func (s *Store) PutRefresh(ctx context.Context, project, hash string, r oauth.Refresh, ttl time.Duration) error {
	key := oauthRefreshKey(project, hash)
	err := s.tx(ctx, key, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "grant", r.Grant, "client_id", r.ClientID, "resource", r.Resource, "scope", r.Scope, "expires_at", r.ExpiresAt)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return core.Internal("redisstore.PutRefresh", err)
	}
	return nil
}

// RotateRefresh runs rotate_oauth_refresh.lua.
func (s *Store) RotateRefresh(ctx context.Context, project, oldHash, clientID, newHash string, nextExpiresAt int64, ttl time.Duration, now int64) (*oauth.Refresh, oauth.Outcome, error) {
	const op = "redisstore.RotateRefresh"
	keys := []string{oauthRefreshKey(project, oldHash), oauthRefreshKey(project, newHash), revokedTokensKey(project)}
	res, err := s.run(ctx, rotateOAuthRefreshScript, keys, now, clientID, nextExpiresAt, ttl.Milliseconds()).StringSlice()
	if err != nil {
		return nil, oauth.Unknown, core.Internal(op, err)
	}
	switch res[0] {
	case "unknown":
		return nil, oauth.Unknown, nil
	case "expired":
		return nil, oauth.Expired, nil
	case "revoked":
		return nil, oauth.GrantRevoked, nil
	case "replayed":
		return &oauth.Refresh{Grant: res[1]}, oauth.Replayed, nil
	case "ok":
		return &oauth.Refresh{Grant: res[1], ClientID: clientID, Resource: res[2], Scope: res[3], ExpiresAt: nextExpiresAt}, oauth.Exchanged, nil
	}
	return nil, oauth.Unknown, core.Internal(op, fmt.Errorf("unexpected script reply %q", res[0]))
}

// RefreshRecord reads a refresh token's record; nil when unknown.
func (s *Store) RefreshRecord(ctx context.Context, project, hash string) (*oauth.Refresh, error) {
	f, err := s.rdb.HGetAll(ctx, oauthRefreshKey(project, hash)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.RefreshRecord", err)
	}
	if len(f) == 0 {
		return nil, nil
	}
	return &oauth.Refresh{Grant: f["grant"], ClientID: f["client_id"], Resource: f["resource"], Scope: f["scope"],
		ExpiresAt: int64Field(f, "expires_at")}, nil
}

// CountIP counts a request in a fixed per-IP window; like the credential counters it is not
// worth a WAIT, and it outlives its window by one more.
func (s *Store) CountIP(ctx context.Context, bucket, ip string, windowStart int64, window time.Duration) (int64, error) {
	key := oauthIPLimitKey(bucket, ip, windowStart)
	var incr *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, key)
		p.PExpire(ctx, key, 2*window)
		return nil
	})
	if err != nil {
		return 0, core.Internal("redisstore.CountIP", err)
	}
	return incr.Val(), nil
}
