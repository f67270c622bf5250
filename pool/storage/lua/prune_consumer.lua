-- KEYS: the four lanes (priority 0 to 3) (every key it touches)
-- ARGV: group, consumer
-- Deletes the consumer (from every lane) only if it still holds nothing, checked in the same step (a read in
-- between would otherwise lose its new entries with the consumer). Returns 1, or -1 when it holds something.
local group, consumer = ARGV[1], ARGV[2]
local lanes = {}
for p = 1, 4 do
  local pending = redis.pcall('XPENDING', KEYS[p], group, '-', '+', 1, consumer)
  if not pending.err then
    if #pending > 0 then return -1 end
    lanes[#lanes + 1] = KEYS[p]
  end
end
for _, stream in ipairs(lanes) do redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer) end
return 1
