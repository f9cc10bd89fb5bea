-- grant_lease.lua: turn a freshly taken redsync lock into a lease, bumping the fencing counter
-- only if the lock is still ours.
--
-- KEYS[1] as:{p}:lease:<key>      string, the redsync lock (value = lease id)
-- KEYS[2] as:{p}:fence:<key>      string, fencing counter; never expires, only goes up
-- KEYS[3] as:{p}:leaserec:<id>    hash, the new lease's record
-- KEYS[4] as:{p}:leases           zset, active lease ids by expires_at
-- KEYS[5] as:{p}:lease-events     stream, lease transitions
-- KEYS[6] as:{p}:leaseq:<key>     zset, FIFO queue of waiters on the key
--
-- ARGV[1] lease id   ARGV[2] state key   ARGV[3] holder   ARGV[4] ttl (ms)   ARGV[5] now (ms)
-- ARGV[6] request id or ""   ARGV[7] waiter id to dequeue or ""   ARGV[8] events stream cap
--
-- Returns {"OK", fencing_token, expires_at} or {"LOST"} when the lock is no longer ours.

if redis.call("GET", KEYS[1]) ~= ARGV[1] then return {"LOST"} end
local token = redis.call("INCR", KEYS[2])
local exp = tonumber(ARGV[5]) + tonumber(ARGV[4])
redis.call("HSET", KEYS[3], "id", ARGV[1], "state_key", ARGV[2], "holder", ARGV[3],
  "fencing_token", token, "expires_at", exp, "created_at", ARGV[5], "renewed_at", ARGV[5],
  "request_id", ARGV[6], "status", "active")
redis.call("ZADD", KEYS[4], exp, ARGV[1])
if ARGV[7] ~= "" then redis.call("ZREM", KEYS[6], ARGV[7]) end
redis.call("XADD", KEYS[5], "MAXLEN", "~", ARGV[8], "*", "type", "acquired", "lease_id", ARGV[1],
  "state_key", ARGV[2], "holder", ARGV[3], "fencing_token", token, "at", ARGV[5])
return {"OK", token, exp}
