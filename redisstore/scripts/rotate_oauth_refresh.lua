-- rotate_oauth_refresh.lua: exchange a refresh token for its successor (OAuth 2.1 §4.3.1
-- rotation). The old token is spent and the new one stored in one step; a spent token
-- presented again is a replay (one of the two holders is a thief), so the whole family, the
-- grant all its tokens descend from, is revoked in that same step.
--
-- KEYS[1] as:{p}:oauth:rt:<old hash>  hash {grant, client_id, resource, scope, expires_at[, used_at]}
-- KEYS[2] as:{p}:oauth:rt:<new hash>  written on success
-- KEYS[3] as:{p}:revoked              set of revoked credential ids
-- ARGV[1] now (ms)  ARGV[2] the presenting client_id  ARGV[3] the new token's expires_at (ms)
-- ARGV[4] the new record's TTL (ms)
-- Returns {"unknown"} | {"expired"} | {"revoked"} | {"replayed", grant} | {"ok", grant, resource, scope}
local f = redis.call("HGETALL", KEYS[1])
if #f == 0 then
  return {"unknown"}
end
local h = {}
for i = 1, #f, 2 do h[f[i]] = f[i + 1] end
-- Another client's token is not this client's to spend or to revoke.
if h["client_id"] ~= ARGV[2] then
  return {"unknown"}
end
if h["used_at"] then
  redis.call("SADD", KEYS[3], h["grant"])
  return {"replayed", h["grant"]}
end
if redis.call("SISMEMBER", KEYS[3], h["grant"]) == 1 then
  return {"revoked"}
end
if tonumber(h["expires_at"]) <= tonumber(ARGV[1]) then
  return {"expired"}
end
redis.call("HSET", KEYS[1], "used_at", ARGV[1])
redis.call("HSET", KEYS[2], "grant", h["grant"], "client_id", h["client_id"], "resource", h["resource"],
  "scope", h["scope"], "expires_at", ARGV[3])
redis.call("PEXPIRE", KEYS[2], ARGV[4])
return {"ok", h["grant"], h["resource"], h["scope"]}
