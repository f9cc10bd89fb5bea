-- leave_lease_queue.lua: an acquire that stops waiting (deadline, cancelled request, error)
-- leaves the queue. If its attempt was granted after all (a reply lost or arriving after the
-- caller gave up), that lease is released, so no lease is left that nobody knows it holds.
-- Either way, if it was at the front of a free key, the next waiter is woken.
--
-- KEYS[1] as:{p}:leaserec:<id>   hash, the record the attempt would have created
-- KEYS[2] as:{p}:leasecur:<key>  hash, the key's current lease
-- KEYS[3] as:{p}:leases          zset, active lease ids by expires_at
-- KEYS[4] as:{p}:lease-events    stream, lease transitions
-- KEYS[5] as:{p}:leaseq:<key>    zset, waiters by arrival number
-- KEYS[6] as:{p}:leaseqd:<key>   zset, waiters by deadline (server ms)
--
-- ARGV[1] lease id (= waiter id)   ARGV[2] now (ms)   ARGV[3] events cap   ARGV[4] request id
--
-- Returns 1 when a granted lease was released, 0 when the attempt only left (or was not in)
-- the queue.

local id = ARGV[1]
if redis.call("EXISTS", KEYS[1]) == 1 then
  return end_lease(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], id, ARGV[2], "released", ARGV[4], ARGV[3])
end
local srvnow = server_ms()
local h = head(KEYS[5], KEYS[6], srvnow)
redis.call("ZREM", KEYS[5], id)
redis.call("ZREM", KEYS[6], id)
if h == id then
  local exp = redis.call("HGET", KEYS[2], "expires_at")
  if not exp or tonumber(exp) <= tonumber(ARGV[2]) then wake_head(KEYS[5], KEYS[6], srvnow) end
end
return 0
