-- KEYS: stream
-- ARGV: prefix, group, consumer, count, limit count, (function, max_concurrency) pairs, then the priorities
--       to read, in order
-- Reads up to count new entries without blocking, from each priority's lane in the order given until count
-- is reached, and STARTs each one (see START; every entry read here is a first delivery) in the same step:
-- one round trip for a busy worker.
-- Returns {lanes without the group, then per entry {entry_id, job_id, priority, START's item}}.
--@include lib/lanes.lua
--@include lib/start_one.lua

local prefix, group, consumer, remaining = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local limits, first = read_limits(5)
local out = {0}
for i = first, #ARGV do
  if remaining <= 0 then break end
  local stream = lane_key(prefix, ARGV[i])
  local reply = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', remaining, 'STREAMS', stream, '>')
  if type(reply) == 'table' and reply.err then
    out[1] = out[1] + 1
  elseif reply then
    for _, entry in ipairs(reply[1][2]) do
      local job_id = entry[2][2]
      local item = start_one(prefix, group, consumer, stream, entry[1], job_id, limits, true)
      out[#out + 1] = {entry[1], job_id, ARGV[i], item}
      remaining = remaining - 1
    end
  end
end
return out
