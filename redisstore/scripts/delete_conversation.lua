-- delete_conversation.lua: remove a conversation with its messages, tags, orderings and its
-- entries in the search index, all or nothing, in two calls.
--
-- "mark" (KEYS[1] only) sets the conversation's deleting flag, after which the write and touch
-- scripts refuse it, and returns its message_count (-1 when there is no such conversation). The
-- caller then reads and tokenises that many messages and calls "delete": with writes frozen the
-- key list cannot go stale, so a delete cannot be starved by a stream of appends. A deleting
-- conversation left by a crash stays readable, and the next delete of it finishes the job.
--
-- KEYS[1] as:{p}:conv:<id>   KEYS[2] as:{p}:convmsgs:<id>   KEYS[3] as:{p}:convmsgids:<id>
-- KEYS[4] as:{p}:convs       KEYS[5] as:{p}:convs-created   KEYS[6] as:{p}:convext
-- KEYS[7] as:{p}:traces      KEYS[8] as:{p}:convtags:<id>
-- KEYS[9] as:{p}:tags (hash, tag -> number of conversations carrying it)
-- KEYS[10..9+n]     as:{p}:tagconvs:<tag> of the conversation's tags (ARGV[5..4+n])
-- KEYS[10+n..9+n+m] as:{p}:sx:<token> of every token of its messages (ARGV[5+n..4+n+m])
-- KEYS[10+n+m] as:{p}:vocab (a token leaves it with its last conversation)
-- KEYS[11+n+m] asf:{p}:c:<id>, the RediSearch document
--
-- "delete": ARGV[1] conversation id   ARGV[2] n   ARGV[3] m
-- ARGV[4] the message_count the tokens were read at   ARGV[5..] tags, then tokens
-- "mark":   ARGV[1] "mark"
--
-- The caller tokenises the messages to know which posting sets hold the conversation (nothing
-- stores a per-conversation token list: that would cost memory on every message).
-- "delete" returns 1 when deleted, 0 when there was no such conversation (another delete won),
-- "RETRY" when the key list does not match (only if the caller skipped "mark").

if ARGV[1] == "mark" then
  if redis.call("EXISTS", KEYS[1]) == 0 then return -1 end
  redis.call("HSET", KEYS[1], "deleting", "1")
  return tonumber(redis.call("HGET", KEYS[1], "message_count"))
end

local id, n, m = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
if redis.call("HGET", KEYS[1], "message_count") ~= ARGV[4] then return "RETRY" end
if redis.call("SCARD", KEYS[8]) ~= n then return "RETRY" end
for i = 1, n do
  if redis.call("SISMEMBER", KEYS[8], ARGV[4 + i]) == 0 then return "RETRY" end
end
local ext = redis.call("HGET", KEYS[1], "external_id")
if ext then redis.call("HDEL", KEYS[6], ext) end
for i = 1, n do
  redis.call("ZREM", KEYS[9 + i], id)
  if redis.call("HINCRBY", KEYS[9], ARGV[4 + i], -1) <= 0 then redis.call("HDEL", KEYS[9], ARGV[4 + i]) end
end
for i = 1, m do
  redis.call("SREM", KEYS[9 + n + i], id)
  if redis.call("SCARD", KEYS[9 + n + i]) == 0 then redis.call("ZREM", KEYS[10 + n + m], ARGV[4 + n + i]) end
end
redis.call("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[8], KEYS[11 + n + m])
redis.call("ZREM", KEYS[4], id)
redis.call("ZREM", KEYS[5], id)
redis.call("ZREM", KEYS[7], id)
return 1
