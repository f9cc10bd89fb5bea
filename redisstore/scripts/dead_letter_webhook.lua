-- dead_letter_webhook.lua: move a delivery that ran out of attempts from the outbox to the
-- dead-letter stream. Acknowledge, delete and record in one step: a crash cannot leave the
-- delivery both pending (to be retried) and dead-lettered, or neither.
--
-- KEYS[1] as:{p}:webhook-outbox   stream with the consumer group
-- KEYS[2] as:{p}:webhook-dead     stream, capped
-- ARGV[1] consumer group   ARGV[2] outbox entry id
-- ARGV[3] webhook id  ARGV[4] event  ARGV[5] timestamp (ms)  ARGV[6] body
-- ARGV[7] attempts    ARGV[8] last error  ARGV[9] failed at (ms)  ARGV[10] cap of KEYS[2]
-- Returns 1, or 0 when the entry was no longer pending (another worker finished it).
if redis.call("XACK", KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call("XDEL", KEYS[1], ARGV[2])
redis.call("XADD", KEYS[2], "MAXLEN", ARGV[10], "*", "delivery", ARGV[2], "webhook", ARGV[3], "event", ARGV[4],
  "ts", ARGV[5], "body", ARGV[6], "attempts", ARGV[7], "error", ARGV[8], "failed_at", ARGV[9])
return 1
