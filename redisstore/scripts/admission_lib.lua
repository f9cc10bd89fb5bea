-- admission_lib.lua: the deferred admission of a remembered credential (core/admission.go),
-- prepended to every script whose write may carry one (mutate_state and the lease transitions
-- acquire, renew and release), so that the write is its request's only round trip. Not run on
-- its own.
--
-- Its keys are the last of KEYS, in this order:
--   as:{p}:key:<id> or as:{p}:tok:<id>  hash, the credential's record (its revoked_at is set
--                                       when it is revoked; deleted with its project)
--   as:{p}:revoked                      set, revoked credential ids, when there is a lineage
--   as:{p}:mcpsess:<sid>                string, a legacy MCP session the request names (the id of
--                                       the credential that opened it), when there is one
--   as:{p}:rl:<id>:<window>             string, each rate counter the request adds to (0 to 2)
-- Its spec (one argument of the caller's) is ":<limit>:<expiry ms>:<flags>:<idle ms>:<id>,<id>,...":
-- the rate budget per counter, the counters' expiry, one "1" or "0" per counter (set the expiry
-- with this count even if the counter exists), the session's idle time (empty: no session; it
-- must name this credential, and its idle time starts again, as the face's check would do), and
-- a token's lineage (its minting key, ancestors and itself), none of which may be in the revoked
-- set; the lineage is empty for an API key, whose record alone says whether it is revoked.
-- "" = no admission.
--
-- A script runs it after its retried-execution check (a retry of an admitted write answers with
-- that write, counted once, and ends with admitted_count's count) and before anything else
-- answers (a refused credential learns nothing). Its refusals are the script's reply:
-- {"NOADMIT"} (the record is gone or the lineage revoked; nothing counted), {"NOSESSION"} (the
-- credential is admitted, but the session is unknown or another's; nothing counted) or
-- {"LIMITED", count} (counted over the budget; nothing written).
-- Admitted, it returns nil and the highest of the counts, which ends every reply after it.

local function admit(spec)
  if spec == "" then return nil, nil end
  local limit, expiry, flags, idle, lineage = string.match(spec, "^:(%d+):(%d+):([01]*):(%d*):(.*)$")
  local rec = #KEYS - #flags -- the record, then the revoked set and the session when there are
  if lineage ~= "" then rec = rec - 1 end
  if idle ~= "" then rec = rec - 1 end
  local r = redis.call("HMGET", KEYS[rec], "id", "revoked_at")
  if not r[1] or r[2] then return {"NOADMIT"} end
  if lineage ~= "" then
    local ids = {}
    for id in string.gmatch(lineage, "[^,]+") do ids[#ids + 1] = id end
    for _, revoked in ipairs(redis.call("SMISMEMBER", KEYS[rec + 1], unpack(ids))) do
      if revoked == 1 then return {"NOADMIT"} end
    end
  end
  if idle ~= "" then
    local session = KEYS[#KEYS - #flags]
    if redis.call("GET", session) ~= r[1] then return {"NOSESSION"} end
    redis.call("PEXPIRE", session, idle)
  end
  local top = 0
  for i = 1, #flags do
    local counter = KEYS[#KEYS - #flags + i]
    local n = redis.call("INCR", counter)
    if n == 1 or string.byte(flags, i) == 49 then redis.call("PEXPIRE", counter, expiry) end -- 49: "1"
    if n > top then top = n end
  end
  if top > tonumber(limit) then return {"LIMITED", top} end
  return nil, top
end

-- admitted_count is, for a retried execution's answer, the highest of the admission's counters
-- as they stand (read, not counted again: the first execution counted this request), so the
-- retry's reply tells the client its budget as the first one would have; 0 when the counters
-- have expired since, nil with no admission.
local function admitted_count(spec)
  if spec == "" then return nil end
  local flags = string.match(spec, "^:%d+:%d+:([01]*):")
  local top = 0
  for i = 1, #flags do
    local n = tonumber(redis.call("GET", KEYS[#KEYS - #flags + i]) or "0")
    if n > top then top = n end
  end
  return top
end

-- counted ends reply with the admission's count top, when there was one.
local function counted(reply, top)
  if top then reply[#reply + 1] = top end
  return reply
end
