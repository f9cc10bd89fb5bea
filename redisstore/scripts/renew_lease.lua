-- renew_lease.lua: reset a live lease's expiry to now + ttl (not an extension: a shorter ttl
-- shrinks it). Guarded, so a concurrent release can never report a successful renew.
--
-- KEYS[1] as:{p}:leaserec:<id>   hash, the lease record
-- KEYS[2] as:{p}:lease:<key>     string, the redsync lock
-- KEYS[3] as:{p}:leases          zset, active lease ids by expires_at
-- KEYS[4] as:{p}:lease-events    stream, lease transitions
--
-- ARGV[1] lease id   ARGV[2] ttl (ms)   ARGV[3] now (ms)   ARGV[4] events stream cap
--
-- Returns {"OK", expires_at}, {"ERR", "NOT_FOUND"} (unknown or released) or
-- {"ERR", "LEASE_EXPIRED"}.

local r = redis.call("HMGET", KEYS[1], "status", "expires_at", "state_key", "holder", "fencing_token")
if not r[1] or r[1] == "released" then return {"ERR", "NOT_FOUND"} end
local now = tonumber(ARGV[3])
if r[1] ~= "active" or tonumber(r[2]) <= now or redis.call("GET", KEYS[2]) ~= ARGV[1] then
  return {"ERR", "LEASE_EXPIRED"}
end
local exp = now + tonumber(ARGV[2])
redis.call("PEXPIRE", KEYS[2], ARGV[2])
redis.call("HSET", KEYS[1], "expires_at", exp, "renewed_at", now)
redis.call("ZADD", KEYS[3], exp, ARGV[1])
redis.call("XADD", KEYS[4], "MAXLEN", "~", ARGV[4], "*", "type", "renewed", "lease_id", ARGV[1],
  "state_key", r[3], "holder", r[4], "fencing_token", r[5], "at", ARGV[3])
return {"OK", exp}
