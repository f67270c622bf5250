-- KEYS: failed (the registry: job_id -> expiry ms of its failed:<id> record), then failed:<id> of each id in ARGV
--       (every key it touches)
-- ARGV: prefix, then ids of registry members whose score had passed when COMPLETE read them
-- The step after a COMPLETE with failures: the registry loses its members whose record expired, so it stays
-- as large as the live records (plus what expired since the last failure) without a reader having to trim it.
-- A member scored by its failure time (the registry's form before it was scored by expiry) whose record still
-- lives is re-scored by that record's expiry. Judged by Redis's clock; a member re-scored since the read is left
-- alone. The members dropped go in one ZREM at the end (after any re-scoring ZADD), so the registry is never
-- touched after this may have emptied it. Idempotent. Returns the number dropped.
--@include lib/redis_time.lua

local prefix, registry = ARGV[1], KEYS[1]
local now = redis_now_ms()
local dropped = {}
for i = 2, #ARGV do
  local job_id = ARGV[i]
  local score = redis.call('ZSCORE', registry, job_id)
  if score and tonumber(score) <= now then
    local left = redis.call('PTTL', prefix .. 'failed:' .. job_id)
    if left > 0 then
      redis.call('ZADD', registry, now + left, job_id)
    else
      dropped[#dropped + 1] = job_id
    end
  end
end
if #dropped > 0 then redis.call('ZREM', registry, unpack(dropped)) end
return #dropped
