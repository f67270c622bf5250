-- KEYS: the four lanes (priority 0 to 3), deferred, job:<id>, then running:<fn> and parked:<fn> when ARGV names
--       the job's function (every key it touches)
-- ARGV: prefix, group, entry_id, job_id, run_at_ms, now_ms, priority of the entry's lane, the job's function (as
--       START returned it; '' for none)
-- Puts a running job back: deferred until run_at (Retry with a delay) or straight onto its lane (a
-- cancelled job handed back at shutdown), written in the same step that acks the old entry. The delay
-- (run_at - now, both on the worker's clock) is counted from Redis's clock, which PROMOTE judges by. The slot
-- of a limited function is passed on (see lib/slots.lua).
-- Returns {1, {function, id, ...} of parked jobs given a slot (the caller runs SWEEP_PARKED for them)}; {0}
-- touching nothing when the job hash is gone (deleted by hand: the entry stays pending, is reclaimed, and START
-- records the job as expired) or the entry was already acked (a replayed call).
--@include lib/lanes.lua
--@include lib/redis_time.lua
--@include lib/slots.lua

local prefix, group, entry_id, job_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job = prefix .. 'job:' .. job_id
local stream = lane_key(ARGV[7])
if redis.call('EXISTS', job) == 0 then return {0} end
if redis.call('XACK', stream, group, entry_id) == 0 then return {0} end
redis.call('XDEL', stream, entry_id)
local delay = tonumber(ARGV[5]) - tonumber(ARGV[6])
if delay > 0 then
  local run_at = redis_now_ms() + delay
  redis.call('HSET', job, 's', 'd', 'sc', run_at)
  redis.call('ZADD', KEYS[5], run_at, job_id)
else
  redis.call('HSET', job, 's', 'q')
  redis.call('XADD', lane_of(job), '*', 'id', job_id)
end
local passed = {}
free_slot(prefix, job_id, ARGV[8], passed)
return {1, passed}
