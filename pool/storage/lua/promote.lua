-- KEYS: stream, deferred
-- ARGV: prefix, now_ms ('' for Redis's own clock, TIME: the one all hosts share), limit
-- Moves due deferred jobs onto the stream. Idempotent, so every worker may run it at any time.
-- Returns {moved, ms until the next deferred job is due (<= 0: due already) or false}: a delay, not a time,
-- so the caller's clock never meets Redis's.
--@include lib/lanes.lua
--@include lib/redis_time.lua

local prefix = ARGV[1]
local now = tonumber(ARGV[2])
if not now then now = redis_now_ms() end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, job_id in ipairs(due) do
  redis.call('ZREM', KEYS[2], job_id)
  local state = redis.call('HGET', prefix .. 'job:' .. job_id, 's')
  -- only a job still deferred; a missing hash is pushed too, so START records the expiry (no job vanishes
  -- without a result). A stale member of a job now queued or running is just dropped.
  if state == 'd' or not state then
    local job = prefix .. 'job:' .. job_id
    if state then redis.call('HSET', job, 's', 'q') end
    redis.call('XADD', lane_of(prefix, job), '*', 'id', job_id)
  end
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if not nxt[2] then return {#due, false} end
return {#due, tonumber(nxt[2]) - now}
