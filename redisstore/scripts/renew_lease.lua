-- renew_lease.lua: reset a live lease's expiry to now + ttl (not an extension: a shorter ttl
-- shrinks it). Guarded, so a concurrent release can never report a successful renew.
--
-- KEYS[1] as:{p}:leaserec:<id>   hash, the lease record
-- KEYS[2] as:{p}:leasecur:<key>  hash, the key's current lease
-- KEYS[3] as:{p}:leases          zset, active lease ids by expires_at
-- KEYS[4] as:{p}:lease-events    stream, lease transitions
--
-- ARGV[1] lease id   ARGV[2] ttl (ms)   ARGV[3] now (ms)   ARGV[4] events stream cap
-- ARGV[5] request id: a retry of a renew that succeeded answers the same, with no second event
-- ARGV[6] the admission of a remembered credential (admission_lib.lua), or ""; its keys follow
--         KEYS[4]
--
-- Returns {"OK", expires_at, renewed_at}, {"DONE", expires_at, renewed_at} (this request's
-- renew, retried), {"ERR", "NOT_FOUND"} (unknown or released), {"ERR", "LEASE_EXPIRED"}, or
-- the admission's refusals; with an admission, "OK", "ERR" and "DONE" end with its count
-- (DONE: as it stands).

local l = read_lease(KEYS[1], "renew_req")
if l and l.status ~= "released" and ARGV[5] ~= "" and l.renew_req == ARGV[5] then
  return counted({"DONE", tonumber(l.expires_at), tonumber(l.renewed_at)}, admitted_count(ARGV[6]))
end
local refusal, top = admit(ARGV[6])
if refusal then return refusal end
if not l or l.status == "released" then return counted({"ERR", "NOT_FOUND"}, top) end
local now = tonumber(ARGV[3])
if l.status ~= "active" or tonumber(l.expires_at) <= now or redis.call("HGET", KEYS[2], "id") ~= ARGV[1] then
  return counted({"ERR", "LEASE_EXPIRED"}, top)
end
local exp = now + tonumber(ARGV[2])
redis.call("HSET", KEYS[1], "expires_at", exp, "renewed_at", now, "renew_req", ARGV[5])
redis.call("HSET", KEYS[2], "expires_at", exp, "renewed_at", now)
redis.call("ZADD", KEYS[3], exp, ARGV[1])
lease_event(KEYS[4], ARGV[4], "renewed", l, now)
return counted({"OK", exp, now}, top)
