-- KEYS: the four lanes (priority 0 to 3), then running:<fn> and parked:<fn> of each function named in ARGV, then
--       job:<id> of each job in ARGV (every key it touches)
-- ARGV: prefix, group, consumer, then quadruples (entry_id, job_id, priority, function: the one START returned
--       for it, '' when it was not started) read but not run
-- Puts entries this consumer read but will not run back at the end of their lane, in the same step that acks
-- them: the extras of a blocking read over several lanes (more entries than free slots), and jobs START marked
-- running just as a stop came. A start made by this consumer for this entry is undone (the attempt is not
-- counted, the slot of a limited function is passed on: see lib/slots.lua). An entry whose job runs from it
-- under another consumer (a recreated group delivered it again) goes to that consumer instead.
-- Returns {how many went back, {function, id, ...} of parked jobs given a slot (the caller runs SWEEP_PARKED
-- for them)}.
--@include lib/lanes.lua
--@include lib/slots.lua
--@include lib/hand_to_runner.lua

local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local count = 0
local passed = {}
for i = 4, #ARGV, 4 do
  local entry_id, job_id = ARGV[i], ARGV[i + 1]
  local stream = lane_key(ARGV[i + 2])
  local job = prefix .. 'job:' .. job_id
  local f = redis.call('HMGET', job, 's', 'e')
  local marker = consumer .. ' ' .. entry_id
  -- the first branch is empty on purpose: the entry is handed over, nothing is left to do
  -- luacheck: push ignore 542
  if f[1] == 'r' and f[2] and f[2] ~= marker and hand_to_runner(group, stream, entry_id, f[2]) then
    -- handed to the consumer running it (again on a replay: XCLAIM is idempotent)
  elseif redis.call('XACK', stream, group, entry_id) == 1 then
    redis.call('XDEL', stream, entry_id)
    if f[1] == 'r' and f[2] == marker then
      redis.call('HINCRBY', job, 't', -1)
      redis.call('HSET', job, 's', 'q')
      redis.call('HDEL', job, 'e')
      free_slot(prefix, job_id, ARGV[i + 3], passed)
    end
    redis.call('XADD', stream, '*', 'id', job_id)
    count = count + 1
  end
  -- luacheck: pop
end
return {count, passed}
