-- write_conversation.lua: create a conversation with its first messages, or append messages,
-- with its aggregates, orderings, tag orderings and search indexes, all or nothing; or
-- ("reindex") put an existing conversation's tokens into the search indexes (the backfill).
--
-- KEYS[1] as:{p}:conv:<id>          hash, the conversation (absent field = null)
-- KEYS[2] as:{p}:convmsgs:<id>      stream, messages, id "<position>-0", field m (JSON)
-- KEYS[3] as:{p}:convmsgids:<id>    hash, message id -> position
-- KEYS[4] as:{p}:convs              zset, conversation ids by updated_at
-- KEYS[5] as:{p}:convs-created      zset, conversation ids by created_at
-- KEYS[6] as:{p}:convext            hash, external_id -> conversation id
-- KEYS[7] as:{p}:traces             zset, ids of conversations with observations, by updated_at
-- KEYS[8] as:{p}:convtags:<id>      set, the conversation's tags
-- KEYS[9..8+n]        as:{p}:tagconvs:<tag> zsets of the conversation's current tags (ARGV[20..])
-- KEYS[9+n..8+n+m]    as:{p}:sx:<token> sets (posting lists) of the new messages' tokens
-- KEYS[9+n+m]         as:{p}:vocab   zset (all scores 0), the project's tokens, for prefix queries
-- KEYS[10+n+m]        asf:{p}:c:<id> hash, the conversation's RediSearch document (ftsearch.go):
--                     p project tag, t " "-separated encoded tokens, u updated_at, k sort key,
--                     g the conversation's encoded tags (absent when it has none)
--
-- ARGV[1] "create" | "append"   ARGV[2] conversation id   ARGV[3] now (ms)
-- ARGV[4] external_id   ARGV[5] "1" when external_id is set   ARGV[6] title   ARGV[7] "1" when title is set
-- ARGV[8] metadata JSON ("null" for none)   ARGV[9] k, the number of messages
-- ARGV[10] token_count delta   ARGV[11] total_tokens delta   ARGV[12] total_cost_microdollars delta
-- ARGV[13] "1" when a message is an observation   ARGV[14] n tags   ARGV[15] m tokens
-- ARGV[16] "1" when the RediSearch document is kept (FT path on): a create writes it, a reindex
-- rewrites it; an append updates it whenever it exists   ARGV[17] the project's encoded tag
-- ARGV[18] the encoded sort key at now (a reindex: at its updated_at)
-- ARGV[19] the document's g: the n tags encoded, ","-separated (a reindex; "" otherwise)
-- ARGV[20..19+n] tags   ARGV[20+n..19+n+m] tokens   ARGV[20+n+m..19+n+2m] the same, encoded
-- then k pairs: message id, message JSON ("reindex": none; ARGV[9] and ARGV[3] are the
-- message_count and updated_at the tokens were read at, RETRY when either moved since)
--
-- Returns {"OK"} (also for a retried execution that finds its own write), {"ERR", "CONFLICT"} (external_id taken), {"ERR", "NOT_FOUND"} (also while it is
-- being deleted), or {"RETRY"}
-- when the tags passed are not exactly the conversation's (a concurrent tag change).

local mode, id, now = ARGV[1], ARGV[2], ARGV[3]
local k, n, m = tonumber(ARGV[9]), tonumber(ARGV[14]), tonumber(ARGV[15])
local vocab, doc, ft = KEYS[9 + n + m], KEYS[10 + n + m], ARGV[16] == "1"

local function index_tokens()
  for i = 1, m do
    redis.call("SADD", KEYS[8 + n + i], id)
    redis.call("ZADD", vocab, 0, ARGV[19 + n + i])
  end
end

-- new_doc writes the whole document: these tokens are all of the conversation's.
local function new_doc(sortkey)
  local t = {}
  for i = 1, m do t[i] = ARGV[19 + n + m + i] end
  redis.call("HSET", doc, "p", ARGV[17], "t", " " .. table.concat(t, " ") .. " ",
    "u", redis.call("HGET", KEYS[1], "updated_at"), "k", sortkey)
  if ARGV[19] ~= "" then redis.call("HSET", doc, "g", ARGV[19]) end
end

-- same_tags: the n tags passed are exactly the conversation's (else the caller must re-read).
local function same_tags()
  if redis.call("SCARD", KEYS[8]) ~= n then return false end
  for i = 1, n do
    if redis.call("SISMEMBER", KEYS[8], ARGV[19 + i]) == 0 then return false end
  end
  return true
end

if mode == "reindex" then
  if redis.call("EXISTS", KEYS[1]) == 0 or redis.call("HEXISTS", KEYS[1], "deleting") == 1 then
    return {"ERR", "NOT_FOUND"}
  end
  if redis.call("HGET", KEYS[1], "message_count") ~= ARGV[9] or
    redis.call("HGET", KEYS[1], "updated_at") ~= now or not same_tags() then return {"RETRY"} end
  index_tokens()
  if ft then
    redis.call("DEL", doc)
    new_doc(ARGV[18])
  end
  return {"OK"}
end

-- A retried execution (go-redis resends a script whose reply was lost) finds its own work and
-- succeeds without writing again: a create's conversation id and every message id are made
-- once per request, before the first attempt.
if mode == "create" and redis.call("EXISTS", KEYS[1]) == 1 then return {"OK"} end
if k > 0 and redis.call("HEXISTS", KEYS[3], ARGV[20 + n + 2 * m]) == 1 then return {"OK"} end

if mode == "create" then
  if ARGV[5] == "1" and redis.call("HEXISTS", KEYS[6], ARGV[4]) == 1 then return {"ERR", "CONFLICT"} end
  redis.call("HSET", KEYS[1], "id", id, "metadata", ARGV[8], "message_count", 0, "token_count", 0,
    "total_tokens", 0, "total_cost_microdollars", 0, "created_at", now, "updated_at", now)
  if ARGV[5] == "1" then
    redis.call("HSET", KEYS[1], "external_id", ARGV[4])
    redis.call("HSET", KEYS[6], ARGV[4], id)
  end
  if ARGV[7] == "1" then redis.call("HSET", KEYS[1], "title", ARGV[6]) end
  redis.call("ZADD", KEYS[5], now, id)
else
  if redis.call("EXISTS", KEYS[1]) == 0 or redis.call("HEXISTS", KEYS[1], "deleting") == 1 then
    return {"ERR", "NOT_FOUND"}
  end
  if not same_tags() then return {"RETRY"} end
end

local pos = tonumber(redis.call("HGET", KEYS[1], "message_count"))
local at = 20 + n + 2 * m
for i = 1, k do
  pos = pos + 1
  redis.call("XADD", KEYS[2], pos .. "-0", "m", ARGV[at + 1])
  redis.call("HSET", KEYS[3], ARGV[at], pos)
  at = at + 2
end
redis.call("HINCRBY", KEYS[1], "message_count", k)
redis.call("HINCRBY", KEYS[1], "token_count", ARGV[10])
redis.call("HINCRBY", KEYS[1], "total_tokens", ARGV[11])
redis.call("HINCRBY", KEYS[1], "total_cost_microdollars", ARGV[12])
redis.call("HSET", KEYS[1], "updated_at", now)
redis.call("ZADD", KEYS[4], now, id)
for i = 1, n do redis.call("ZADD", KEYS[8 + i], now, id) end
if ARGV[13] == "1" then redis.call("HSET", KEYS[1], "traced", "1") end
if redis.call("HGET", KEYS[1], "traced") == "1" then redis.call("ZADD", KEYS[7], now, id) end
index_tokens()
if mode == "create" then
  if ft then new_doc(ARGV[18]) end
elseif redis.call("EXISTS", doc) == 1 then
  -- Only the new messages' tokens are passed: add those the document does not hold yet.
  local t = redis.call("HGET", doc, "t")
  for i = 1, m do
    local e = ARGV[19 + n + m + i]
    if not string.find(t, " " .. e .. " ", 1, true) then t = t .. e .. " " end
  end
  redis.call("HSET", doc, "t", t, "u", now, "k", ARGV[18])
end
return {"OK"}
