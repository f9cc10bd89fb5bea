-- consume_oauth_code.lua: spend an OAuth authorization code at most once. A second
-- presentation means the code leaked (OAuth 2.1 §4.1.3): the grant it produced is revoked in
-- the same step, so every token issued from it stops working at its next request.
--
-- KEYS[1] as:{p}:oauth:code:<hash>   hash {grant, client_id, redirect_uri, redirect_given, challenge, resource, scope, expires_at[, consumed_at]}
-- KEYS[2] as:{p}:revoked             set of revoked credential ids (what authentication checks)
-- ARGV[1] now (ms)
-- Returns {"unknown"} | {"expired"} | {"replayed", grant} | {"ok", field, value, ...}
local f = redis.call("HGETALL", KEYS[1])
if #f == 0 then
  return {"unknown"}
end
local h = {}
for i = 1, #f, 2 do h[f[i]] = f[i + 1] end
if h["consumed_at"] then
  redis.call("SADD", KEYS[2], h["grant"])
  return {"replayed", h["grant"]}
end
if tonumber(h["expires_at"]) <= tonumber(ARGV[1]) then
  return {"expired"}
end
redis.call("HSET", KEYS[1], "consumed_at", ARGV[1])
local out = {"ok"}
for i = 1, #f do out[#out + 1] = f[i] end
return out
