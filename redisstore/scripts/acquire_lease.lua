-- acquire_lease.lua: one acquire attempt, all or nothing: expire the key's lease if it is due,
-- check the FIFO queue (nobody passes a live waiter), grant, or (with wait) join the queue.
-- The attempt's id is the lease id it grants, so a retried call (go-redis re-sends EVALSHA when
-- a reply is lost) finds its own record and answers the same, with no second fencing token and
-- no second "acquired" event; a retried enqueue keeps its place and draws no arrival number.
--
-- KEYS[1] as:{p}:leaserec:<id>   hash, the record this attempt would create
-- KEYS[2] as:{p}:leasecur:<key>  hash, the key's current lease (same fields as a record)
-- KEYS[3] as:{p}:fence:<key>     string, fencing counter; never expires, only goes up
-- KEYS[4] as:{p}:leases          zset, active lease ids by expires_at
-- KEYS[5] as:{p}:lease-events    stream, lease transitions
-- KEYS[6] as:{p}:leaseq:<key>    zset, waiters by arrival number
-- KEYS[7] as:{p}:leaseqd:<key>   zset, waiters by deadline (server ms)
-- KEYS[8] as:{p}:leasew-seq      string, arrival counter (drawn only when a waiter joins)
-- KEYS[9] as:{p}:leasew:<id>     hash, who waits (holder, agent_id), for the console's queue
--                                view; it expires with the wait, so no other script removes it
-- KEYS[10] as:{p}:seq            string, the project's sequence counter (read only)
-- then, only with an admission (ARGV[14]), its keys (admission_lib.lua)
--
-- ARGV[1] lease id (= waiter id)   ARGV[2] state key   ARGV[3] holder   ARGV[4] agent id or ""
-- ARGV[5] ttl (ms)   ARGV[6] now (ms, service clock)   ARGV[7] client request id or ""
-- ARGV[8] wait left (ms); "0" = do not queue   ARGV[9] owner credential id
-- ARGV[10] owner chain ",<ancestor>,...,<owner>,"   ARGV[11] events stream cap
-- ARGV[12] the store generation's floor: no token is issued below it (lease_lib next_fencing_token)
-- ARGV[13] the highest sequence of the project the caller has seen issued: a counter below it
--          means the store lost writes, fencing tokens likely among them (redisstore/generation.go)
-- ARGV[14] the admission of a remembered credential (admission_lib.lua), or ""
--
-- Returns
--   {"OK", id, fencing_token, expires_at, created_at, renewed_at, status}
--       granted now, or the live lease of the same holder client request id and credential
--       (then id differs from ARGV[1])
--   {"DONE", id, fencing_token, expires_at, created_at, renewed_at, status}
--       granted earlier to this attempt (a retried execution)
--   {"BUSY", holder, agent_id, fencing_token, expires_at, wake_in_ms, queued}
--       not granted. holder.. expires_at describe the live lease ("" when the key is free but
--       waiters are ahead); wake_in_ms is when the situation can change without a wake-up (the
--       lease's expiry or the head waiter's deadline); queued is 1 when ARGV[8] > 0.
--   {"ERR", "STORE_RESET", counter}  the project's counter is below ARGV[13]; nothing written
--   {"NOADMIT"}, {"NOSESSION"}, {"LIMITED", count}  the admission's refusals; nothing written
-- With an admission, "OK", "BUSY" and "DONE" end with its count (DONE: as it stands).

local id, key, now = ARGV[1], ARGV[2], tonumber(ARGV[6])
local wait = tonumber(ARGV[8])

local mine = read_lease(KEYS[1])
if mine then
  return counted({"DONE", id, mine.fencing_token, mine.expires_at, mine.created_at, mine.renewed_at, mine.status},
    admitted_count(ARGV[14]))
end

-- A store that lost the project's last writes may have lost fencing tokens too: granting now
-- could issue one again.
local counter = tonumber(redis.call("GET", KEYS[10]) or "0")
if counter < tonumber(ARGV[13]) then return {"ERR", "STORE_RESET", counter} end

local refusal, top = admit(ARGV[14])
if refusal then return refusal end

local srvnow = server_ms()
local function queue()
  if wait <= 0 then return 0 end
  if not redis.call("ZSCORE", KEYS[6], id) then
    redis.call("ZADD", KEYS[6], redis.call("INCR", KEYS[8]), id)
  end
  redis.call("ZADD", KEYS[7], srvnow + wait, id)
  redis.call("HSET", KEYS[9], "holder", ARGV[3], "agent_id", ARGV[4])
  redis.call("PEXPIRE", KEYS[9], wait + 1000)
  return 1
end

local cur = read_lease(KEYS[2])
if cur then
  if tonumber(cur.expires_at) > now then
    if ARGV[7] ~= "" and cur.request_id == ARGV[7] and cur.holder == ARGV[3] and cur.chain == ARGV[10] then
      return counted({"OK", cur.id, cur.fencing_token, cur.expires_at, cur.created_at, cur.renewed_at, cur.status}, top)
    end
    local q = queue()
    return counted({"BUSY", cur.holder, cur.agent_id, cur.fencing_token, cur.expires_at, tonumber(cur.expires_at) - now, q}, top)
  end
  -- Due: it expires here, in the same step that may grant the key. Its record is not in KEYS;
  -- it keeps status "active" with a past expires_at, which every reader shows as expired.
  redis.call("ZREM", KEYS[4], cur.id)
  redis.call("DEL", KEYS[2])
  lease_event(KEYS[5], ARGV[11], "expired", cur, now)
end

local h, hd = head(KEYS[6], KEYS[7], srvnow)
if h and h ~= id then
  -- Someone is ahead. The key is free, so make sure the head knows (it may have missed a wake).
  redis.call("PUBLISH", WAKE_CHANNEL, h)
  local q = queue()
  return counted({"BUSY", "", "", "", "", hd - srvnow, q}, top)
end

local token = next_fencing_token(KEYS[3], tonumber(ARGV[12]))
local exp = now + tonumber(ARGV[5])
local l = {id = id, state_key = key, holder = ARGV[3], agent_id = ARGV[4], fencing_token = token,
  expires_at = exp, created_at = now, renewed_at = now, request_id = ARGV[7], owner = ARGV[9],
  chain = ARGV[10], status = "active"}
local f = {}
for _, name in ipairs(LEASE_FIELDS) do
  f[#f + 1] = name
  f[#f + 1] = l[name]
end
redis.call("HSET", KEYS[1], unpack(f))
redis.call("HSET", KEYS[2], unpack(f))
redis.call("ZADD", KEYS[4], exp, id)
redis.call("ZREM", KEYS[6], id)
redis.call("ZREM", KEYS[7], id)
lease_event(KEYS[5], ARGV[11], "acquired", l, now)
return counted({"OK", id, token, exp, now, now, "active"}, top)
