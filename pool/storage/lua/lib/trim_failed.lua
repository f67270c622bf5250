-- The failed registry (sorted set job_id -> expiry ms of its failed:<id> record) loses members whose record
-- expired, at most ``limit`` per call, oldest expiry first, so it stays as large as the live records (plus what
-- expired since the last failure) without a reader having to trim it. A member scored by its failure time (the
-- registry's form before it was scored by expiry) whose record still lives is re-scored by that record's expiry.
local function trim_failed(registry, prefix, now, limit)
  for _, job_id in ipairs(redis.call('ZRANGEBYSCORE', registry, '-inf', now, 'LIMIT', 0, limit)) do
    local left = redis.call('PTTL', prefix .. 'failed:' .. job_id)
    if left > 0 then
      redis.call('ZADD', registry, now + left, job_id)
    else
      redis.call('ZREM', registry, job_id)
    end
  end
end
