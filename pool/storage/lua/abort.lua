-- KEYS: deferred, aborts
-- ARGV: prefix, job_id, now_ms, aborted_result_payload, result_ttl_ms
-- A job not yet started is finished here with the aborted result (its stale stream entry, if any, is dropped
-- by START; one waiting for dependencies leaves the 'waiting' set); jobs waiting on it are released as after
-- a failure, and a concurrency slot reserved for it is passed on. A running job is flagged for its worker to
-- cancel. Returns 0 not found, 1 flagged, 2 aborted.
--@include lib/store_result.lua
--@include lib/slots.lua
--@include lib/release_dependents.lua

local prefix, job_id = ARGV[1], ARGV[2]
local job = prefix .. 'job:' .. job_id
local state = redis.call('HGET', job, 's')
if not state then return 0 end
if state == 'r' then
  redis.call('ZADD', KEYS[2], ARGV[3], job_id)
  return 1
end
redis.call('ZREM', KEYS[1], job_id)
redis.call('SREM', prefix .. 'waiting', job_id)
local fn = redis.call('HGET', job, 'f')
redis.call('DEL', job)
store_result(prefix, job_id, ARGV[4], ARGV[5])
free_slot(prefix, job_id, fn)
release_dependents(prefix, KEYS[1], job_id, false, function() return tonumber(ARGV[3]) end)
return 2
