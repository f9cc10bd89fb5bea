-- claim_webhook.lua: claim one pending outbox entry for a consumer if it has been idle (since
-- its last attempt started) at least the given time. The check and the claim are one step, so
-- of several workers racing for a due retry exactly one gets it. (XCLAIM's own min-idle-time
-- does this on Redis, but the embedded store ignores it; the script holds on both.)
--
-- KEYS[1] as:{p}:webhook-outbox   stream with the consumer group
-- ARGV[1] consumer group   ARGV[2] consumer   ARGV[3] minimum idle time (ms)   ARGV[4] entry id
-- Returns XCLAIM's reply (the entry with its fields), or an empty array when not claimed.
local p = redis.call("XPENDING", KEYS[1], ARGV[1], "IDLE", ARGV[3], ARGV[4], ARGV[4], 1)
if #p == 0 then
  return {}
end
return redis.call("XCLAIM", KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
