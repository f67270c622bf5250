-- KEYS: the four lanes (priority 0 to 3), deferred, releasing, then job:<id> of each known id in ARGV (every key
--       it touches)
-- ARGV: prefix, now_ms ('' for Redis's own clock, TIME: the one all hosts share), limit, then the known ids: the
--       due jobs a previous call returned, whose keys this call declares
-- Moves due deferred jobs onto their lanes. Up to limit jobs are due (by score); each known one is moved, the
-- others are returned, untouched, for the caller to call again with them known (a script touches only the
-- keys its call declares): a first call with no known ids only reads. Idempotent, so every worker may run it at
-- any time. Also counts the finished jobs whose dependents are still to be released (the step after COMPLETE
-- or ABORT was lost), for the caller to release them.
-- Returns {moved, ms until the next deferred job is due (<= 0: due already) or false, {due ids not known},
-- pending releases}: a delay, not a time, so the caller's clock never meets Redis's.
--@include lib/lanes.lua
--@include lib/redis_time.lua

local prefix = ARGV[1]
local now = tonumber(ARGV[2])
if not now then now = redis_now_ms() end
local known = {}
for i = 4, #ARGV do known[ARGV[i]] = true end
local deferred = KEYS[5]
local due = redis.call('ZRANGEBYSCORE', deferred, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
-- the first member after the due ones, read before any is removed: a key is never touched after this script
-- may have emptied it
local nxt = redis.call('ZRANGE', deferred, #due, #due, 'WITHSCORES')
local moved, unknown = {}, {}
for _, job_id in ipairs(due) do
  if known[job_id] then
    moved[#moved + 1] = job_id
    local job = prefix .. 'job:' .. job_id
    local state = redis.call('HGET', job, 's')
    -- only a job still deferred; a missing hash is pushed too, so START records the expiry (no job vanishes
    -- without a result). A stale member of a job now queued or running is just dropped.
    if state == 'd' or not state then
      if state then redis.call('HSET', job, 's', 'q') end
      redis.call('XADD', lane_of(job), '*', 'id', job_id)
    end
  else
    unknown[#unknown + 1] = job_id
  end
end
if #moved > 0 then redis.call('ZREM', deferred, unpack(moved)) end
local next_due_in = false
if #unknown > 0 then
  next_due_in = 0
elseif nxt[2] then
  next_due_in = tonumber(nxt[2]) - now
end
return {#moved, next_due_in, unknown, redis.call('HLEN', KEYS[6])}
