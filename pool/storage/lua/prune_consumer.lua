-- KEYS: stream
-- ARGV: prefix, group, consumer, then every priority
-- Deletes the consumer (from every lane) only if it still holds nothing, checked in the same step (a read in
-- between would otherwise lose its new entries with the consumer). Returns 1, or -1 when it holds something.
--@include lib/lanes.lua

local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local lanes = {}
for p = 4, #ARGV do
  local stream = lane_key(prefix, ARGV[p])
  local pending = redis.pcall('XPENDING', stream, group, '-', '+', 1, consumer)
  if not pending.err then
    if #pending > 0 then return -1 end
    lanes[#lanes + 1] = stream
  end
end
for _, stream in ipairs(lanes) do redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer) end
return 1
