-- KEYS: stream
-- ARGV: prefix, group, consumer, then triples of (entry_id, job_id, priority) read but not run
-- Puts entries this consumer read but will not run back at the end of their lane, in the same step that acks
-- them: the extras of a blocking read over several lanes (more entries than free slots), and jobs START marked
-- running just as a stop came. A start made by this consumer for this entry is undone (the attempt is not
-- counted, the slot of a limited function is freed). An entry whose job runs from it under another consumer
-- (a recreated group delivered it again) goes to that consumer instead. Returns how many went back.
--@include lib/lanes.lua
--@include lib/slots.lua
--@include lib/hand_to_runner.lua

local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local count = 0
for i = 4, #ARGV, 3 do
  local entry_id, job_id = ARGV[i], ARGV[i + 1]
  local stream = lane_key(prefix, ARGV[i + 2])
  local job = prefix .. 'job:' .. job_id
  local f = redis.call('HMGET', job, 's', 'e', 'f')
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
      free_slot(prefix, job_id, f[3])
    end
    redis.call('XADD', stream, '*', 'id', job_id)
    count = count + 1
  end
  -- luacheck: pop
end
return count
