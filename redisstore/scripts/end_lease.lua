-- end_lease.lua: release a lease, or expire it once its expires_at has passed; a key freed this
-- way wakes its head waiter at once (PUBLISH as:lease-wake <waiter id>).
--
-- KEYS[1] as:{p}:leaserec:<id>   hash, the lease record
-- KEYS[2] as:{p}:leasecur:<key>  hash, the key's current lease (deleted only if it is this one)
-- KEYS[3] as:{p}:leases          zset, active lease ids by expires_at
-- KEYS[4] as:{p}:lease-events    stream, lease transitions
-- KEYS[5] as:{p}:leaseq:<key>    zset, waiters by arrival number
-- KEYS[6] as:{p}:leaseqd:<key>   zset, waiters by deadline (server ms)
--
-- ARGV[1] lease id   ARGV[2] now (ms)   ARGV[3] "released" | "expired"   ARGV[4] events cap
-- ARGV[5] request id: a retry of the call that ended the lease answers 1 again
-- ARGV[6] the admission of a remembered credential (admission_lib.lua), or ""; its keys follow
--         KEYS[6]
--
-- Returns 1 when the lease ended (now, or by this request before), 0 when there was nothing to
-- end: unknown or already ended; for "expired", also not yet due. Releasing an expired lease is
-- allowed (v1). With an admission: {"OK", 1 or 0, count}, {"DONE", 1, count} (this request's
-- release, retried; its count as it stands), or the admission's refusals.

local function run()
  return end_lease(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[1], ARGV[2], ARGV[3], ARGV[5], ARGV[4])
end
if (ARGV[6] or "") == "" then return run() end
if ARGV[5] ~= "" and redis.call("HGET", KEYS[1], "end_req") == ARGV[5] then return counted({"DONE", 1}, admitted_count(ARGV[6])) end
local refusal, top = admit(ARGV[6])
if refusal then return refusal end
return {"OK", run(), top}
