-- touch_conversation.lua: change a conversation's title, metadata or tags; updated_at and
-- every ordering keyed by it move in the same step.
--
-- KEYS[1] as:{p}:conv:<id>   KEYS[2] as:{p}:convs   KEYS[3] as:{p}:traces
-- KEYS[4] as:{p}:convtags:<id>   KEYS[5] as:{p}:tags (hash, tag -> conversations carrying it)
-- KEYS[6..5+n]      as:{p}:tagconvs:<tag> of the conversation's current tags (ARGV[10..9+n])
-- KEYS[6+n..5+n+a]  as:{p}:tagconvs:<tag> of tags to add (ARGV[10+n..9+n+a])
-- KEYS[6+n+a]       asf:{p}:c:<id>, the RediSearch document (moved with updated_at when it exists)
--
-- ARGV[1] id   ARGV[2] now, or "" to leave updated_at (tag changes do not touch it in v1)
-- ARGV[3] "1" to set the title   ARGV[4] title   ARGV[5] "1" to set metadata   ARGV[6] metadata
-- ARGV[7] n current tags   ARGV[8] a tags to add   ARGV[9] a tag to remove or ""
-- ARGV[10+n+a] the document's encoded sort key at now
-- ARGV[11+n+a] the document's g after this change: the tags encoded, ","-separated
--
-- Returns 1, 0 when the conversation does not exist (or is being deleted), or "RETRY" when the current tags passed
-- are not exactly the conversation's.

local id, n, a = ARGV[1], tonumber(ARGV[7]), tonumber(ARGV[8])
if redis.call("EXISTS", KEYS[1]) == 0 or redis.call("HEXISTS", KEYS[1], "deleting") == 1 then return 0 end
if redis.call("SCARD", KEYS[4]) ~= n then return "RETRY" end
for i = 1, n do
  if redis.call("SISMEMBER", KEYS[4], ARGV[9 + i]) == 0 then return "RETRY" end
end
if ARGV[3] == "1" then redis.call("HSET", KEYS[1], "title", ARGV[4]) end
if ARGV[5] == "1" then redis.call("HSET", KEYS[1], "metadata", ARGV[6]) end
local score = ARGV[2]
if score ~= "" then
  redis.call("HSET", KEYS[1], "updated_at", score)
  redis.call("ZADD", KEYS[2], score, id)
  if redis.call("HGET", KEYS[1], "traced") == "1" then redis.call("ZADD", KEYS[3], score, id) end
  for i = 1, n do redis.call("ZADD", KEYS[5 + i], score, id) end
  local doc = KEYS[6 + n + a]
  if redis.call("EXISTS", doc) == 1 then redis.call("HSET", doc, "u", score, "k", ARGV[10 + n + a]) end
else
  score = redis.call("HGET", KEYS[1], "updated_at")
end
for i = 1, a do
  local tag = ARGV[9 + n + i]
  if redis.call("SADD", KEYS[4], tag) == 1 then
    redis.call("HINCRBY", KEYS[5], tag, 1)
    redis.call("ZADD", KEYS[5 + n + i], score, id)
  end
end
local rm = ARGV[9]
if rm ~= "" and redis.call("SREM", KEYS[4], rm) == 1 then
  if redis.call("HINCRBY", KEYS[5], rm, -1) <= 0 then redis.call("HDEL", KEYS[5], rm) end
  for i = 1, n do
    if ARGV[9 + i] == rm then redis.call("ZREM", KEYS[5 + i], id) end
  end
end
local doc = KEYS[6 + n + a]
if (a > 0 or rm ~= "") and redis.call("EXISTS", doc) == 1 then
  if ARGV[11 + n + a] == "" then redis.call("HDEL", doc, "g") else redis.call("HSET", doc, "g", ARGV[11 + n + a]) end
end
return 1
