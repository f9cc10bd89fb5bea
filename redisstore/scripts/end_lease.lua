-- end_lease.lua: release a lease, or expire it once its expires_at has passed.
--
-- KEYS[1] as:{p}:leaserec:<id>   hash, the lease record
-- KEYS[2] as:{p}:lease:<key>     string, the redsync lock (deleted only if it still holds this id)
-- KEYS[3] as:{p}:leases          zset, active lease ids by expires_at
-- KEYS[4] as:{p}:lease-events    stream, lease transitions
--
-- ARGV[1] lease id   ARGV[2] now (ms)   ARGV[3] "released" | "expired"   ARGV[4] events stream cap
--
-- Returns 1 when the lease ended now, 0 when there was nothing to end: unknown or already
-- released; for "expired", also not yet due or already expired. Releasing an expired lease is
-- allowed (v1).

local r = redis.call("HMGET", KEYS[1], "status", "expires_at", "state_key", "holder", "fencing_token")
if not r[1] or r[1] == "released" then return 0 end
if ARGV[3] == "expired" and (r[1] ~= "active" or tonumber(r[2]) > tonumber(ARGV[2])) then return 0 end
if redis.call("GET", KEYS[2]) == ARGV[1] then redis.call("DEL", KEYS[2]) end
redis.call("HSET", KEYS[1], "status", ARGV[3], "ended_at", ARGV[2])
redis.call("ZREM", KEYS[3], ARGV[1])
redis.call("XADD", KEYS[4], "MAXLEN", "~", ARGV[4], "*", "type", ARGV[3], "lease_id", ARGV[1],
  "state_key", r[3], "holder", r[4], "fencing_token", r[5], "at", ARGV[2])
return 1
