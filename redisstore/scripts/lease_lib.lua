-- lease_lib.lua: helpers prepended to every lease script (acquire_lease, end_lease, renew_lease,
-- leave_lease_queue). Not run on its own; it touches only keys its caller passes in.
--
-- A lease lives in two hashes with the same fields: its record (as:{p}:leaserec:<id>, kept after
-- it ends) and, while it is the key's lease, the key's current-lease hash
-- (as:{p}:leasecur:<key>). Scripts that know only the key (acquire, a state write) read the
-- current hash; scripts that know the id read the record.
--
-- Waiters queue per key: as:{p}:leaseq:<key> (zset id -> arrival number) and
-- as:{p}:leaseqd:<key> (zset id -> deadline in Redis server ms; TIME, not the injected clock,
-- so a jump of the service clock cannot declare live waiters dead). A waiter past its deadline
-- is dead (its server gave up or crashed) and is dropped when it reaches the front.

local WAKE_CHANNEL = "as:lease-wake" -- redisstore.leaseWakeChannel; payload = waiter id
local MAX_DEAD_DROPS = 64            -- bounds one script's work on a queue full of dead waiters

local function server_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- head returns the first live waiter (dropping dead ones in front of it) and its deadline.
local function head(queue, deadlines, srvnow)
  for _ = 1, MAX_DEAD_DROPS do
    local h = redis.call("ZRANGE", queue, 0, 0)[1]
    if not h then return nil end
    local d = tonumber(redis.call("ZSCORE", deadlines, h) or "0")
    if d > srvnow then return h, d end
    redis.call("ZREM", queue, h)
    redis.call("ZREM", deadlines, h)
  end
  return nil
end

-- wake_head tells the first live waiter the key is free; it re-runs acquire_lease, which grants
-- it the key because it is at the front. Returns the waiter woken, or nil.
local function wake_head(queue, deadlines, srvnow)
  local h = head(queue, deadlines, srvnow)
  if h then redis.call("PUBLISH", WAKE_CHANNEL, h) end
  return h
end

local LEASE_FIELDS = {"id", "state_key", "holder", "agent_id", "fencing_token", "expires_at",
  "created_at", "renewed_at", "request_id", "owner", "chain", "status"}

-- read_lease returns a lease hash as a table (nil when absent), with any extra fields named
-- (a transition's last request id) read in the same HMGET: each script reads a record once.
local function read_lease(key, ...)
  local fields = {unpack(LEASE_FIELDS)}
  for _, f in ipairs({...}) do fields[#fields + 1] = f end
  local v = redis.call("HMGET", key, unpack(fields))
  if not v[1] then return nil end
  local l = {}
  for i, f in ipairs(fields) do l[f] = v[i] or "" end
  return l
end

-- next_fencing_token draws the key's next fencing token from its counter (fence): the one
-- place a token is issued. The counter never expires and only goes up, so no token is issued
-- twice; a retried acquire finds its own record before it gets here and draws none. Never
-- below floor, the store generation's (redisstore/generation.go): a generation started after
-- a data loss issues above every token of the ones before, whatever the lost counter said.
local function next_fencing_token(fence, floor)
  local t = redis.call("INCR", fence)
  if t < floor then
    redis.call("SET", fence, floor)
    t = floor
  end
  return t
end

local function lease_event(events, cap, typ, l, at)
  redis.call("XADD", events, "MAXLEN", "~", cap, "*", "type", typ, "lease_id", l.id,
    "state_key", l.state_key, "holder", l.holder, "agent_id", l.agent_id,
    "fencing_token", l.fencing_token, "at", at, "chain", l.chain)
end

-- end_lease ends an active lease (record rec, key's current hash cur) as "released" or
-- "expired", frees the key if it was still this lease's, and wakes the head waiter. reqid makes
-- a retried call answer like the first one.
local function end_lease(rec, cur, active, events, queue, deadlines, id, now, how, reqid, cap)
  local l = read_lease(rec, "end_req")
  if not l then return 0 end
  if reqid ~= "" and l.end_req == reqid then return 1 end
  if l.status == "released" then return 0 end
  -- An expired lease may still be released (v1); only an active, due one can expire.
  if how == "expired" and (l.status ~= "active" or tonumber(l.expires_at) > tonumber(now)) then return 0 end
  redis.call("HSET", rec, "status", how, "ended_at", now, "end_req", reqid)
  redis.call("ZREM", active, id)
  lease_event(events, cap, how, l, now)
  if redis.call("HGET", cur, "id") == id then
    redis.call("DEL", cur)
    wake_head(queue, deadlines, server_ms())
  end
  return 1
end
