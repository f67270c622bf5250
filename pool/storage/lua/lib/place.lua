--@include lib/lanes.lua

-- Put a job on its lane now, or in the deferred set when due later (used when a job is released).
local function place(prefix, deferred, job_id, now)
  local job = prefix .. 'job:' .. job_id
  local score = tonumber(redis.call('HGET', job, 'sc') or '0')
  if score > now then
    redis.call('HSET', job, 's', 'd')
    redis.call('ZADD', deferred, score, job_id)
  else
    redis.call('HSET', job, 's', 'q')
    redis.call('XADD', lane_of(job), '*', 'id', job_id)
  end
end
