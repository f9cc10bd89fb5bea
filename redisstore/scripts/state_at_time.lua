-- state_at_time.lua: a key's newest event with created_at <= a time, by binary search.
--
-- mutate_state.lua never lets a key's created_at go backwards (an event is stamped no earlier
-- than the one before it), so along a key's stream created_at is sorted like the ids and the
-- newest event at or before a time is found in O(log n) stream seeks, however long the history.
--
-- KEYS[1]  as:{p}:state:<key>  stream, the key's events (ids "<sequence>-0")
-- ARGV[1]  the newest sequence to consider ("" = the newest event)
-- ARGV[2]  the time bound (Unix ms)
--
-- Returns {seq, field, value, ...} of the event, or false when the key has none that old.

local function created_at(entry)
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == "created_at" then return tonumber(f[i + 1]) end
  end
  return 0
end

local function seq_of(id)
  return tonumber(string.match(id, "^(%d+)"))
end

local t = tonumber(ARGV[2])
local first = redis.call("XRANGE", KEYS[1], "-", "+", "COUNT", 1)[1]
if not first or created_at(first) > t then return false end
local newest = redis.call("XREVRANGE", KEYS[1], ARGV[1] == "" and "+" or ARGV[1] .. "-0", "-", "COUNT", 1)[1]
if not newest then return false end
if created_at(newest) <= t then return {seq_of(newest[1]), unpack(newest[2])} end

-- best is old enough; every event above hi is too new.
local best, lo, hi = first, seq_of(first[1]) + 1, seq_of(newest[1]) - 1
while lo <= hi do
  local mid = math.floor((lo + hi) / 2)
  -- string.format, not mid .. "-0": Lua writes numbers above 10^14 as 1.8e+15, and a
  -- generation's floor (redisstore/generation.go) puts sequences there.
  local e = redis.call("XREVRANGE", KEYS[1], string.format("%d-0", mid), "-", "COUNT", 1)[1]
  local s = seq_of(e[1])
  if created_at(e) <= t then
    best, lo = e, mid + 1
  else
    hi = s - 1
  end
end
return {seq_of(best[1]), unpack(best[2])}
