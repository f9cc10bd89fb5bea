-- rotate_generation.lua: replace the store generation by its successor, unless another server
-- replaced it first (redisstore/generation.go).
--
-- KEYS[1] as:generation  string, the store generation
--
-- ARGV[1] the value this server saw ("" = the key was gone)
-- ARGV[2] the successor, "<id>/<floor>/<previous id>"
--
-- Returns 1 when it wrote the successor, 0 when the key no longer held ARGV[1]. Retry-safe: a
-- re-sent call finds its own successor there and answers 0.

if (redis.call("GET", KEYS[1]) or "") ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[2])
return 1
