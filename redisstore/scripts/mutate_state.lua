-- mutate_state.lua: one state write (upsert or soft delete), all or nothing.
--
-- The key's stream is its append-only event log; its last entry is the current state, so the
-- record is never stored twice. Stream ids are "<sequence>-0". The key's head hash repeats the
-- few fields of that last entry the guards and indexes need, so a write reads a handful of small
-- strings (HMGET) instead of the whole record (XREVRANGE). A key written before heads existed
-- has none, or a stale one when a server from before heads wrote it since: the script then
-- reads its last entry and rewrites the head (lazy migration).
--
-- KEYS[1]  as:{p}:state:<key>   stream, the key's events
-- KEYS[2]  as:{p}:head:<key>    hash, the last event's type, version, agent_id, tags,
--                               created_at, state_created_at
-- KEYS[3]  as:{p}:seq           string, the project's sequence counter
-- KEYS[4]  as:{p}:log           stream, the project's event log (fields key, type)
-- KEYS[5]  as:{p}:idx:live      zset, live state keys by latest sequence
-- KEYS[6]  as:{p}:evid          hash, event id -> sequence (claims cite events by id; a retried
--                               execution finds its own event here)
-- KEYS[7]  as:{p}:leasecur:<key> hash, the key's current lease (fields id, chain, ...)
-- KEYS[8]  as:{p}:fence:<key>   string, the highest fencing token issued for the key
-- KEYS[9]  as:{p}:leases        zset, active lease ids by expires_at (ms)
-- then, only when given (a common write names neither, so it sends two keys fewer):
--          as:{p}:idem:<k>      hash {fp, seq, key}, when ARGV[8] ~= ""
--          as:{p}:leaserec:<id> hash, the record of the presented lease id, when ARGV[11] ~= ""
-- then the index zsets named by the labels ARGV[15..], in that order: "a:<agent>" is
--          as:{p}:idx:agent:<agent>, "t:<tag>" is as:{p}:idx:tag:<tag>
-- then, only with an admission (in ARGV[#ARGV]), last: its keys (admission_lib.lua)
--
-- ARGV[1]  op: "upsert" | "delete"
-- ARGV[2]  now (Unix ms)
-- ARGV[3]  event id
-- ARGV[4]  agent_id (upsert); on delete the deleting agent, or "" to record the last writer
-- ARGV[5]  data, compact JSON object (upsert)
-- ARGV[6]  metadata, compact JSON object or "" for null (upsert)
-- ARGV[7]  tags, JSON array, sorted and unique (upsert)
-- ARGV[8]  idempotency key or ""
-- ARGV[9]  request fingerprint (with ARGV[8])
-- ARGV[10] expected version or "" (0 = the state must not exist)
-- ARGV[11] lease id or ""
-- ARGV[12] the state key
-- ARGV[13] fencing token or ""
-- ARGV[14] the writer: "*" for a full-access key (may write under any lease), else its
--          credential id (may write under a lease whose owner chain holds it)
-- ARGV[15..#ARGV-1] the index labels
-- ARGV[#ARGV] (the last, after the index labels) "<floor>:<seen>": the store generation's floor
--          (no sequence is issued below it) and the highest sequence of the project the
--          caller has seen issued (a counter below it means the store lost writes); then,
--          for the admission of a remembered credential (none when it was admitted before),
--          its spec (admission_lib.lua). (One argument: each costs EVALSHA.)
--
-- Returns one of:
--   {"OK", seq, version, created_at, state_created_at, fencing_token}  an upsert written: only
--                                       what the caller did not send (not the record back)
--   {"OK", seq, version, created_at, state_created_at, fencing_token, agent_id, metadata, tags}
--                                       a delete written
--   {"DONE", seq, field, value, ...}    the event this very call wrote before (a retried
--                                       execution), every field
--   {"REPLAY", seq, field, value, ...}  the event an earlier request with this idempotency key
--                                       wrote, every field
--   {"RETRY", agent_id, tags_json}      the caller did not pass the index keys of the state's
--                                       current agent/tags; nothing was written
--   {"ERR", code}                       IDEMPOTENCY_CONFLICT, LEASE_FORBIDDEN, NOT_FOUND,
--                                       VERSION_CONFLICT
--   {"ERR", code, highest}              LEASE_REQUIRED, LEASE_CONFLICT, LEASE_EXPIRED, with the
--                                       key's highest fencing token (the live holder's, if any)
--   {"ERR", "STALE_FENCING_TOKEN", highest}  the token is not the key's highest issued one
--   {"ERR", "VERSION_CONFLICT", seq, field, value, ...}  with the current live state
--   {"ERR", "STORE_RESET", counter}     the project's counter is below the caller's <seen> (found
--                                       when the sequence is issued, after the guards and the
--                                       admission's count); no event written, the counter put back
--   {"NOADMIT"}                         the admission's record is gone or its lineage revoked;
--                                       nothing counted, nothing written
--   {"NOSESSION"}                       the admission names a legacy MCP session that is unknown
--                                       or another credential's; nothing counted, nothing written
--   {"LIMITED", count}                  the admission counted over its budget (count: the
--                                       highest of its counters); nothing written
-- With an admission, every reply but STORE_RESET and those three ends with the highest of its
-- counters' counts (DONE: as they stand, this request counted by the first execution).

local op, now, key = ARGV[1], tonumber(ARGV[2]), ARGV[12]

local floor, seen, admission = string.match(ARGV[#ARGV], "^(%d+):(%d+)(.*)$")

local function event_at(seq)
  local e = redis.call("XRANGE", KEYS[1], seq .. "-0", seq .. "-0")
  return e[1][2]
end

local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
end

-- The key's last event in full (its sequence and {field, value, ...}): needed only off the
-- common path.
local function last_event()
  local last = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)
  if #last == 0 then return nil end
  return tonumber(string.match(last[1][1], "^(%d+)")), last[1][2]
end

-- The head of the key's last event (cur_*: nil for a key never written). The head is trusted
-- only while its version counts the key's events (each event adds one, and the streams are
-- never trimmed): a key written without a head, or since by a server that predates heads (a
-- rolling upgrade), is read from its stream and its head rewritten.
local h = redis.call("HMGET", KEYS[2], "type", "version", "agent_id", "tags", "created_at", "state_created_at")
-- Each string is converted to a number once (tonumber is strtod, about 1k instructions).
local cur_v = tonumber(h[2]) -- nil without a head
local migrate = not h[1] or cur_v ~= redis.call("XLEN", KEYS[1])
if migrate then
  local _, f = last_event()
  h = {}
  if f then
    h = {field(f, "type"), field(f, "version"), field(f, "agent_id"), field(f, "tags"), field(f, "created_at"),
      field(f, "state_created_at")}
  end
  cur_v = tonumber(h[2])
end
local cur_type, cur_agent, cur_tags, cur_at, cur_created = h[1], h[3], h[4], h[5], h[6]
local cur_at_n = cur_type and tonumber(cur_at)

-- A retried execution finds its own event and answers with it: go-redis sends a script again
-- when its reply was lost, and the event id (ARGV[3]) is made once per request, before the
-- first attempt, so a second execution must not write a second event. An event this request
-- wrote is stamped no earlier than ARGV[2] and a key's created_at never goes back, so while
-- the key's last event is older than that, no earlier execution can have written one: the
-- look-up is needed only when the key was written at or after this request's clock.
if cur_type and cur_at_n >= now then
  local done = redis.call("HGET", KEYS[6], ARGV[3])
  if done then return counted({"DONE", tonumber(done), unpack(event_at(done))}, admitted_count(admission)) end
end

-- The admission of a remembered credential: after the retried-execution check (a retry of a
-- write that was admitted must answer with that write, not be counted or refused again), before
-- anything else answers (a replay, a guard's refusal: a refused credential learns nothing).
-- The highest of its counts ends every reply after it (answer; inline in the common ones).
local refusal, top = admit(admission)
if refusal then return refusal end
local function answer(reply) return counted(reply, top) end

local k = 10 -- the next optional key
local idem
if ARGV[8] ~= "" then
  idem, k = KEYS[k], k + 1
  -- A replay answers before any guard: the first request already passed them.
  local rec = redis.call("HMGET", idem, "fp", "seq")
  if rec[1] then
    if rec[1] ~= ARGV[9] then return answer({"ERR", "IDEMPOTENCY_CONFLICT"}) end
    return answer({"REPLAY", tonumber(rec[2]), unpack(event_at(rec[2]))})
  end
end

-- Lease guard. A lease is live while its lock is held and its expires_at (the injected clock,
-- not the lock's TTL) is in the future. While one is live only its id may write. A presented id
-- of an expired or released lease on this key is stale and never accepted (v1 defect D3).
-- A stale id answers LEASE_CONFLICT while another lease is live (v1), LEASE_EXPIRED when none is.
-- Only the lease's owner chain (or a full-access key) may write under it.
local lease = ARGV[11]
local live, chain
local lc = redis.call("HMGET", KEYS[7], "id", "chain")
if lc[1] then
  local exp = redis.call("ZSCORE", KEYS[9], lc[1])
  if exp and tonumber(exp) > now then live, chain = lc[1], lc[2] or "" end
end
-- The key's highest fencing token matters only under a lease or with a token presented.
local fence = ARGV[13]
local highest_s, highest = "0", 0
if live or lease ~= "" or fence ~= "" then
  highest_s = redis.call("GET", KEYS[8]) or "0" -- kept as text: tostring() of a number above
  highest = tonumber(highest_s)                 -- 10^14 gives "1.8e+15" (generation floors)
end
if lease == "" then
  if live then return answer({"ERR", "LEASE_REQUIRED", highest}) end
else
  local rec = KEYS[k]
  k = k + 1
  if lease ~= live then
    if not live and redis.call("HGET", rec, "state_key") == key then return answer({"ERR", "LEASE_EXPIRED", highest}) end
    return answer({"ERR", "LEASE_CONFLICT", highest})
  elseif ARGV[14] ~= "*" and not string.find(chain, "," .. ARGV[14] .. ",", 1, true) then
    return answer({"ERR", "LEASE_FORBIDDEN"})
  end
end

-- Fencing: only the key's highest issued token may write; a lower one belongs to a holder that
-- has since been superseded (v1 defect D4: issued but never checked).
if fence ~= "" and tonumber(fence) ~= highest then
  return answer({"ERR", "STALE_FENCING_TOKEN", highest})
end
if fence == "" and live then fence = highest_s end

local exists = cur_type == "upsert"

if op == "delete" and not exists then return answer({"ERR", "NOT_FOUND"}) end

if ARGV[10] ~= "" then
  local have = 0
  if exists then have = cur_v end
  if tonumber(ARGV[10]) ~= have then
    if exists then
      local at_seq, f = last_event()
      return answer({"ERR", "VERSION_CONFLICT", at_seq, unpack(f)})
    end
    return answer({"ERR", "VERSION_CONFLICT"})
  end
end

local idx = {}
for i = 15, #ARGV - 1 do idx[ARGV[i]] = KEYS[k + i - 15] end

-- Every Lua table costs an allocation and its collection, per write: the common write has no
-- tags, so it shares one empty list and builds no set of them.
local NONE = {}
local function decode_tags(json)
  if json == "[]" then return NONE end
  return cjson.decode(json)
end

local old_tags = NONE
if exists then
  old_tags = decode_tags(cur_tags)
  local missing = not idx["a:" .. cur_agent]
  for _, t in ipairs(old_tags) do
    if not idx["t:" .. t] then missing = true end
  end
  if missing then return answer({"RETRY", cur_agent, cur_tags}) end
end

-- The store generation (redisstore/generation.go): a counter below a sequence already issued
-- means the store lost writes, and writing on would issue their sequences again. It is checked
-- here, where a sequence is issued, not read before the guards (one command fewer per write):
-- a refusal above issues nothing, so on a store that lost writes it answers as a read of it
-- would. Tripped, the counter is put back as it was (absent when INCR created it).
local n = redis.call("INCR", KEYS[3])
if n - 1 < tonumber(seen) then
  if n == 1 then redis.call("DEL", KEYS[3]) else redis.call("DECR", KEYS[3]) end
  return {"ERR", "STORE_RESET", n - 1}
end
-- Never below the generation's floor, so a generation begun after a loss reissues no sequence.
-- As a string once: Lua formats a number anew each time one is passed to a command, and
-- tostring() would write one above 10^14 as 1.8e+15.
if floor ~= "0" and n < tonumber(floor) then -- "0": a store that never lost data
  n = tonumber(floor)
  redis.call("SET", KEYS[3], string.format("%d", n))
end
local seq = string.format("%d", n)
local id = seq .. "-0"
local version, created, at = 1, ARGV[2], ARGV[2]
if cur_type then
  version = cur_v + 1
  created = cur_created -- kept across delete and re-create
  -- Never earlier than the event before it (replicas' clocks differ): time travel and the
  -- retry check above rely on a key's created_at being sorted like its sequence.
  if cur_at_n > now then at = cur_at end
end
version = string.format("%d", version) -- an integer format: tostring() is "%.14g"

local agent, metadata, tags, reply
if op == "upsert" then
  agent, metadata, tags = ARGV[4], ARGV[6], ARGV[7]
  redis.call("XADD", KEYS[1], id, "type", "upsert", "id", ARGV[3], "agent_id", agent,
    "data", ARGV[5], "metadata", metadata, "tags", tags, "idempotency_key", ARGV[8],
    "version", version, "created_at", at, "state_created_at", created, "fencing_token", fence)
  reply = {"OK", n, version, at, created, fence, top}
else
  -- The delete event keeps the state's metadata, which the head does not hold.
  local _, f = last_event()
  agent, metadata, tags = ARGV[4], field(f, "metadata"), cur_tags
  if agent == "" then agent = cur_agent end
  redis.call("XADD", KEYS[1], id, "type", "delete", "id", ARGV[3], "agent_id", agent,
    "data", "", "metadata", metadata, "tags", tags, "idempotency_key", "",
    "version", version, "created_at", at, "state_created_at", created, "fencing_token", fence)
  reply = {"OK", n, version, at, created, fence, agent, metadata, tags, top}
end
redis.call("XADD", KEYS[4], id, "key", key, "type", op)
redis.call("HSET", KEYS[6], ARGV[3], seq)
if migrate then
  redis.call("HSET", KEYS[2], "type", op, "version", version, "agent_id", agent, "tags", tags,
    "created_at", at, "state_created_at", created)
elseif cur_agent ~= agent or cur_tags ~= tags or cur_type ~= op then
  redis.call("HSET", KEYS[2], "type", op, "version", version, "agent_id", agent, "tags", tags,
    "created_at", at)
else -- the common rewrite by the same agent with the same tags
  redis.call("HSET", KEYS[2], "version", version, "created_at", at)
end

if exists then
  if op == "delete" or cur_agent ~= agent then
    redis.call("ZREM", idx["a:" .. cur_agent], key)
  end
end
if op == "upsert" then
  redis.call("ZADD", KEYS[5], seq, key)
  redis.call("ZADD", idx["a:" .. agent], seq, key)
  local keep = NONE -- stays empty unless there are tags
  if tags ~= "[]" then keep = {} end
  for _, t in ipairs(decode_tags(tags)) do
    keep[t] = true
    redis.call("ZADD", idx["t:" .. t], seq, key)
  end
  for _, t in ipairs(old_tags) do
    if not keep[t] then redis.call("ZREM", idx["t:" .. t], key) end
  end
else
  redis.call("ZREM", KEYS[5], key)
  for _, t in ipairs(old_tags) do redis.call("ZREM", idx["t:" .. t], key) end
end

if idem then
  redis.call("HSET", idem, "fp", ARGV[9], "seq", seq, "key", key)
end

return reply
