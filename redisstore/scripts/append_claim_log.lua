-- append_claim_log.lua: store a claim (or a verification run) and append its claims-log entry,
-- all or nothing, only if the log still ends where the caller computed the entry's prev_hash.
-- Redis scripts cannot compute SHA-256, so the caller hashes and this script is the
-- compare-and-append that keeps the chain unbroken under concurrent writers.
--
-- KEYS[1] as:{p}:claimlog-head      hash {size, hash}: the log's length and head entry hash
-- KEYS[2] as:{p}:claimlog           stream, id "<seq>-0", fields entry (JSON with entry_hash)
-- KEYS[3] as:{p}:claim:<id>         hash {doc, status, updated_at}
-- KEYS[4] as:{p}:claims             zset, claim ids by created_at (create only)
-- KEYS[5] as:{p}:claimruns:<id>     list of run JSON, oldest first (run only)
-- KEYS[6..8] (create only) the subject indexes, zsets of claim ids by created_at like KEYS[4]:
--         as:{p}:claims:subject:<len(type)>:<type>:<id>, …:subject-type:<type>, …:subject-id:<id>
--
-- ARGV[1] the log size the entry was computed against
-- ARGV[2] "create" | "run"
-- ARGV[3] the entry's seq (= ARGV[1] + 1)   ARGV[4] entry JSON   ARGV[5] entry hash
-- create: ARGV[6] claim id   ARGV[7] created_at   ARGV[8] claim JSON (immutable part + evidence)
-- run:    ARGV[6] run JSON   ARGV[7] new claim status   ARGV[8] updated_at
--
-- Returns 1 when written (or found written by this very call's earlier execution), 0 when the head moved (nothing written), -1 when a run's claim is gone.

local size = tonumber(redis.call("HGET", KEYS[1], "size") or "0")
-- A retried execution (its reply lost, go-redis sent it again) finds its own entry in the log
-- and succeeds without appending it twice.
if size >= tonumber(ARGV[3]) then
  local e = redis.call("XRANGE", KEYS[2], ARGV[3] .. "-0", ARGV[3] .. "-0")
  if e[1] and e[1][2][2] == ARGV[4] then return 1 end
end
if size ~= tonumber(ARGV[1]) then return 0 end
if ARGV[2] == "run" and redis.call("EXISTS", KEYS[3]) == 0 then return -1 end
redis.call("XADD", KEYS[2], ARGV[3] .. "-0", "entry", ARGV[4])
redis.call("HSET", KEYS[1], "size", ARGV[3], "hash", ARGV[5])
if ARGV[2] == "create" then
  redis.call("HSET", KEYS[3], "doc", ARGV[8], "status", "pending", "updated_at", ARGV[7])
  redis.call("ZADD", KEYS[4], ARGV[7], ARGV[6])
  for i = 6, 8 do redis.call("ZADD", KEYS[i], ARGV[7], ARGV[6]) end
else
  redis.call("RPUSH", KEYS[5], ARGV[6])
  redis.call("HSET", KEYS[3], "status", ARGV[7], "updated_at", ARGV[8])
end
return 1
