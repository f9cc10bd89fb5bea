-- enqueue_webhooks.lua: add deliveries to a project's webhook outbox in one step, so a created
-- conversation reaches every subscriber's queue or none. The stream and its consumer group are
-- created on first use (from id 0, so nothing added before the group existed is skipped).
--
-- KEYS[1] as:{p}:webhook-outbox   stream
-- ARGV[1] consumer group name
-- ARGV[2..] four values per delivery: webhook id, event, timestamp (ms), body
-- Returns the new entry ids.
if redis.call("EXISTS", KEYS[1]) == 0 then
  redis.call("XGROUP", "CREATE", KEYS[1], ARGV[1], "0", "MKSTREAM")
end
local ids = {}
for i = 2, #ARGV, 4 do
  ids[#ids + 1] = redis.call("XADD", KEYS[1], "*", "webhook", ARGV[i], "event", ARGV[i + 1], "ts", ARGV[i + 2], "body", ARGV[i + 3])
end
return ids
