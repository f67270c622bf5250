-- KEYS: stream
-- ARGV: prefix, then (function, max_concurrency) pairs
-- For each limited function with parked jobs: forget members that hold no slot (their job was aborted,
-- expired or deleted on its way back), then release parked jobs while there is room. Every worker runs it
-- now and then, so a slot freed where no script passes it on (an abort, an expiry, a worker without the
-- limit) still reaches the parked jobs. Idempotent. Returns the number released.
--@include lib/slots.lua

local prefix = ARGV[1]
local released = 0
for i = 2, #ARGV, 2 do
  local fn, limit = ARGV[i], tonumber(ARGV[i + 1])
  if redis.call('LLEN', prefix .. 'parked:' .. fn) > 0 then
    local running = prefix .. 'running:' .. fn
    for _, other in ipairs(redis.call('SMEMBERS', running)) do
      if not holds_slot(prefix, other) then redis.call('SREM', running, other) end
    end
    local room = limit - redis.call('SCARD', running)
    while room > 0 and release_one(prefix, fn) do
      room = room - 1
      released = released + 1
    end
  end
end
return released
