-- KEYS: the four lanes (priority 0 to 3), then running:<fn> and parked:<fn> of each function named in ARGV, then
--       job:<id> of each job named in ARGV (every key it touches)
-- ARGV: prefix, group, consumer, then quadruples (priority, entry_id, job_id or '' when the entry is gone from
--       its lane, the job's function or ''): the consumer's pending entries as the caller read them (XPENDING,
--       XRANGE, the job's 'f'), so their jobs' keys are declared
-- Puts the jobs of those entries still pending for the (dead or retiring) consumer back onto their lanes at
-- once, acking and deleting the old entries; a slot of a limited function is passed on (see lib/slots.lua).
-- Used when a worker's identity is known to be gone, so its jobs need not wait for the idle-time reclaim. Then,
-- if the consumer holds nothing on any lane, removes it; if it holds entries the caller did not name (read since),
-- it stays, and the caller reads and calls again. Idempotent (a replay finds the entries acked).
-- Returns {the number of jobs handed back, 1 when the consumer still holds entries else 0, {function, id, ...}
-- of parked jobs given a slot (the caller runs SWEEP_PARKED for them)}.
--@include lib/lanes.lua
--@include lib/slots.lua

local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local count = 0
local passed = {}
for i = 4, #ARGV, 4 do
  local stream, entry_id, job_id = lane_key(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  local pending = redis.pcall('XPENDING', stream, group, entry_id, entry_id, 1, consumer)
  if not pending.err and #pending == 1 then
    if job_id ~= '' then
      local job = prefix .. 'job:' .. job_id
      if redis.call('EXISTS', job) == 1 then
        redis.call('HSET', job, 's', 'q')
        redis.call('XADD', stream, '*', 'id', job_id)
        free_slot(prefix, job_id, ARGV[i + 3], passed)
        count = count + 1
      end
    end
    redis.call('XACK', stream, group, entry_id)
    redis.call('XDEL', stream, entry_id)
  end
end
local holds, lanes = 0, {}
for p = 1, 4 do
  local pending = redis.pcall('XPENDING', KEYS[p], group, '-', '+', 1, consumer)
  if not pending.err then  -- no such lane, or no group on it: nothing held there
    if #pending > 0 then holds = 1 end
    lanes[#lanes + 1] = KEYS[p]
  end
end
if holds == 0 then
  for _, stream in ipairs(lanes) do redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer) end
end
return {count, holds, passed}
