-- touch_webhook.lua: record a delivery time on a webhook that still exists (a delivery may
-- finish after the webhook was deleted; it must not leave a stray record behind).
--
-- KEYS[1] as:{p}:webhook:<id>   hash {doc, last_triggered_at}
-- ARGV[1] delivery time (ms)
if redis.call("EXISTS", KEYS[1]) == 1 then
  redis.call("HSET", KEYS[1], "last_triggered_at", ARGV[1])
end
return 1
