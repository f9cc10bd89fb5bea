-- Floor (c0) of `loadgen -compare` only: a frozen copy of redisstore/scripts/mutate_state.lua as
-- it was at commit 2649068, the write script issue #20 measured ("today's write script": it reads
-- the current record with XREVRANGE and echoes the event back). Never loaded by the server.
--
-- mutate_state.lua: one state write (upsert or soft delete), all or nothing.
--
-- The key's stream is its append-only event log; its last entry is the current state, so the
-- record is never stored twice. Stream ids are "<sequence>-0".
--
-- KEYS[1]  as:{p}:state:<key>   stream, the key's events
-- KEYS[2]  as:{p}:seq           string, the project's sequence counter
-- KEYS[3]  as:{p}:log           stream, the project's event log (fields key, type)
-- KEYS[4]  as:{p}:idx:live      zset, live state keys by latest sequence
-- KEYS[5]  as:{p}:idem:<k>      hash {fp, seq, key}; read and written only when ARGV[8] ~= ""
-- KEYS[6]  as:{p}:leasecur:<key> hash, the key's current lease (fields id, chain, ...)
-- KEYS[7]  as:{p}:fence:<key>   string, the highest fencing token issued for the key
-- KEYS[8]  as:{p}:leases        zset, active lease ids by expires_at (ms)
-- KEYS[9]  as:{p}:leaserec:<id> hash, the record of the presented lease id (ARGV[11])
-- KEYS[10] as:{p}:evid          hash, event id -> sequence (claims cite events by id; a retried
--                               execution finds its own event here)
-- KEYS[11..10+n] index zsets named by the labels ARGV[17..16+n]: "a:<agent>" is
--                 as:{p}:idx:agent:<agent>, "t:<tag>" is as:{p}:idx:tag:<tag>
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
-- ARGV[14] n, the number of index labels
-- ARGV[15] "1" when the writer is a full-access key (may write under any lease)
-- ARGV[16] the writer's credential id (may write under a lease whose owner chain holds it)
--
-- Returns one of:
--   {"OK", seq, field, value, ...}      the event written
--   {"DONE", seq, field, value, ...}    the event this very call wrote before (a retried execution)
--   {"REPLAY", seq, field, value, ...}  the event an earlier request with this idempotency key wrote
--   {"RETRY", agent_id, tags_json}      the caller did not pass the index keys of the state's
--                                       current agent/tags; nothing was written
--   {"ERR", code}                       IDEMPOTENCY_CONFLICT, LEASE_FORBIDDEN, NOT_FOUND,
--                                       VERSION_CONFLICT
--   {"ERR", code, highest}              LEASE_REQUIRED, LEASE_CONFLICT, LEASE_EXPIRED, with the
--                                       key's highest fencing token (the live holder's, if any)
--   {"ERR", "STALE_FENCING_TOKEN", highest}  the token is not the key's highest issued one
--   {"ERR", "VERSION_CONFLICT", seq, field, value, ...}  with the current live state

local op, now, key = ARGV[1], ARGV[2], ARGV[12]

local function seq_of(id)
  return tonumber(string.match(id, "^(%d+)"))
end

local function fields_of(entry)
  local t, f = {}, entry[2]
  for i = 1, #f, 2 do t[f[i]] = f[i + 1] end
  return t
end

-- A retried execution finds its own event and answers with it: go-redis sends a script again
-- when its reply was lost, and the event id (ARGV[3]) is made once per request, before the
-- first attempt, so a second execution must not write a second event.
local done = redis.call("HGET", KEYS[10], ARGV[3])
if done then
  local e = redis.call("XRANGE", KEYS[1], done .. "-0", done .. "-0")
  return {"DONE", tonumber(done), unpack(e[1][2])}
end

-- A replay answers before any guard: the first request already passed them.
if ARGV[8] ~= "" then
  local rec = redis.call("HMGET", KEYS[5], "fp", "seq")
  if rec[1] then
    if rec[1] ~= ARGV[9] then return {"ERR", "IDEMPOTENCY_CONFLICT"} end
    local e = redis.call("XRANGE", KEYS[1], rec[2] .. "-0", rec[2] .. "-0")
    return {"REPLAY", tonumber(rec[2]), unpack(e[1][2])}
  end
end

-- Lease guard. A lease is live while its lock is held and its expires_at (the injected clock,
-- not the lock's TTL) is in the future. While one is live only its id may write. A presented id
-- of an expired or released lease on this key is stale and never accepted (v1 defect D3).
-- A stale id answers LEASE_CONFLICT while another lease is live (v1), LEASE_EXPIRED when none is.
-- Only the lease's owner chain (or a full-access key) may write under it.
local lease = ARGV[11]
local live, chain
local cur = redis.call("HMGET", KEYS[6], "id", "chain")
if cur[1] then
  local exp = redis.call("ZSCORE", KEYS[8], cur[1])
  if exp and tonumber(exp) > tonumber(now) then live, chain = cur[1], cur[2] or "" end
end
local highest = tonumber(redis.call("GET", KEYS[7]) or "0")
if lease == "" then
  if live then return {"ERR", "LEASE_REQUIRED", highest} end
elseif lease ~= live then
  if not live and redis.call("HGET", KEYS[9], "state_key") == key then return {"ERR", "LEASE_EXPIRED", highest} end
  return {"ERR", "LEASE_CONFLICT", highest}
elseif ARGV[15] ~= "1" and not string.find(chain, "," .. ARGV[16] .. ",", 1, true) then
  return {"ERR", "LEASE_FORBIDDEN"}
end

-- Fencing: only the key's highest issued token may write; a lower one belongs to a holder that
-- has since been superseded (v1 defect D4: issued but never checked).
local fence = ARGV[13]
if fence ~= "" and tonumber(fence) ~= highest then
  return {"ERR", "STALE_FENCING_TOKEN", highest}
end
if fence == "" and live then fence = tostring(highest) end

local last = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)
local cur
if #last > 0 then cur = fields_of(last[1]) end
local live = cur ~= nil and cur.type == "upsert"

if op == "delete" and not live then return {"ERR", "NOT_FOUND"} end

if ARGV[10] ~= "" then
  local have = 0
  if live then have = tonumber(cur.version) end
  if tonumber(ARGV[10]) ~= have then
    if live then return {"ERR", "VERSION_CONFLICT", seq_of(last[1][1]), unpack(last[1][2])} end
    return {"ERR", "VERSION_CONFLICT"}
  end
end

local idx = {}
for i = 1, tonumber(ARGV[14]) do idx[ARGV[16 + i]] = KEYS[10 + i] end

local old_tags = {}
if live then
  old_tags = cjson.decode(cur.tags)
  local missing = not idx["a:" .. cur.agent_id]
  for _, t in ipairs(old_tags) do
    if not idx["t:" .. t] then missing = true end
  end
  if missing then return {"RETRY", cur.agent_id, cur.tags} end
end

local seq = redis.call("INCR", KEYS[2])
local id = seq .. "-0"
local version, created = 1, now
if cur then
  version = tonumber(cur.version) + 1
  created = cur.state_created_at -- kept across delete and re-create
end

local f
if op == "upsert" then
  f = {"type", "upsert", "id", ARGV[3], "agent_id", ARGV[4], "data", ARGV[5], "metadata", ARGV[6],
       "tags", ARGV[7], "idempotency_key", ARGV[8], "version", tostring(version),
       "created_at", now, "state_created_at", created, "fencing_token", fence}
else
  local deleter = ARGV[4]
  if deleter == "" then deleter = cur.agent_id end
  f = {"type", "delete", "id", ARGV[3], "agent_id", deleter, "data", "", "metadata", cur.metadata,
       "tags", cur.tags, "idempotency_key", "", "version", tostring(version),
       "created_at", now, "state_created_at", created, "fencing_token", fence}
end
redis.call("XADD", KEYS[1], id, unpack(f))
redis.call("XADD", KEYS[3], id, "key", key, "type", op)
redis.call("HSET", KEYS[10], ARGV[3], seq)

if live then
  if op == "delete" or cur.agent_id ~= ARGV[4] then
    redis.call("ZREM", idx["a:" .. cur.agent_id], key)
  end
end
if op == "upsert" then
  redis.call("ZADD", KEYS[4], seq, key)
  redis.call("ZADD", idx["a:" .. ARGV[4]], seq, key)
  local keep = {}
  for _, t in ipairs(cjson.decode(ARGV[7])) do
    keep[t] = true
    redis.call("ZADD", idx["t:" .. t], seq, key)
  end
  for _, t in ipairs(old_tags) do
    if not keep[t] then redis.call("ZREM", idx["t:" .. t], key) end
  end
else
  redis.call("ZREM", KEYS[4], key)
  for _, t in ipairs(old_tags) do redis.call("ZREM", idx["t:" .. t], key) end
end

if ARGV[8] ~= "" then
  redis.call("HSET", KEYS[5], "fp", ARGV[9], "seq", seq, "key", key)
end

return {"OK", seq, unpack(f)}
