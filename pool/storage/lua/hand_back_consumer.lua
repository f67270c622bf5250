-- KEYS: stream
-- ARGV: prefix, group, consumer, then every priority
-- Puts every job a (dead or retiring) consumer holds back onto its lane at once, then removes the consumer.
-- Used when a worker's identity is known to be gone, so its jobs need not wait for the idle-time reclaim.
-- Returns the number of jobs handed back.
--@include lib/lanes.lua
--@include lib/slots.lua

local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local count = 0
for p = 4, #ARGV do
  local stream = lane_key(prefix, ARGV[p])
  local has_group = true
  while true do
    local pending = redis.pcall('XPENDING', stream, group, '-', '+', 1000, consumer)
    if pending.err then has_group = false end  -- no such lane, or no group on it: nothing held there
    if not has_group or #pending == 0 then break end
    for _, item in ipairs(pending) do
      local entry_id = item[1]
      local entry = redis.call('XRANGE', stream, entry_id, entry_id)
      if entry[1] then
        local job_id = entry[1][2][2]
        local job = prefix .. 'job:' .. job_id
        if redis.call('EXISTS', job) == 1 then
          redis.call('HSET', job, 's', 'q')
          redis.call('XADD', stream, '*', 'id', job_id)
          free_slot(prefix, job_id, redis.call('HGET', job, 'f'))
          count = count + 1
        end
      end
      redis.call('XACK', stream, group, entry_id)
      redis.call('XDEL', stream, entry_id)
    end
  end
  if has_group then redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer) end
end
return count
