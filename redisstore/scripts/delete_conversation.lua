-- delete_conversation.lua: remove a conversation with its messages, tags, orderings and its
-- entries in the search index, all or nothing.
--
-- KEYS[1] as:{p}:conv:<id>   KEYS[2] as:{p}:convmsgs:<id>   KEYS[3] as:{p}:convmsgids:<id>
-- KEYS[4] as:{p}:convs       KEYS[5] as:{p}:convs-created   KEYS[6] as:{p}:convext
-- KEYS[7] as:{p}:convtok:<id>   KEYS[8] as:{p}:traces   KEYS[9] as:{p}:convtags:<id>
-- KEYS[10] as:{p}:tags (hash, tag -> number of conversations carrying it)
-- KEYS[11..10+n]     as:{p}:tagconvs:<tag> of the conversation's tags (ARGV[4..3+n])
-- KEYS[11+n..10+n+m] as:{p}:sx:<token> of the conversation's tokens (ARGV[4+n..3+n+m])
--
-- ARGV[1] conversation id   ARGV[2] n   ARGV[3] m   ARGV[4..] tags, then tokens
--
-- Returns 1 when deleted, 0 when there was no such conversation, "RETRY" when the tags or
-- tokens passed are not exactly the conversation's (a concurrent write).

local id, n, m = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
if redis.call("SCARD", KEYS[9]) ~= n or redis.call("SCARD", KEYS[7]) ~= m then return "RETRY" end
for i = 1, n do
  if redis.call("SISMEMBER", KEYS[9], ARGV[3 + i]) == 0 then return "RETRY" end
end
for i = 1, m do
  if redis.call("SISMEMBER", KEYS[7], ARGV[3 + n + i]) == 0 then return "RETRY" end
end
local ext = redis.call("HGET", KEYS[1], "external_id")
if ext then redis.call("HDEL", KEYS[6], ext) end
for i = 1, n do
  redis.call("ZREM", KEYS[10 + i], id)
  if redis.call("HINCRBY", KEYS[10], ARGV[3 + i], -1) <= 0 then redis.call("HDEL", KEYS[10], ARGV[3 + i]) end
end
for i = 1, m do redis.call("SREM", KEYS[10 + n + i], id) end
redis.call("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[7], KEYS[9])
redis.call("ZREM", KEYS[4], id)
redis.call("ZREM", KEYS[5], id)
redis.call("ZREM", KEYS[8], id)
return 1
