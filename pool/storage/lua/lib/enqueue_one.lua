--@include lib/lanes.lua

-- One job's enqueue (ENQUEUE runs it for each job of a call). A call that enqueues a job also leaves a marker
-- nonce:<id> holding its nonce for NONCE_TTL_MS, apart from the job hash: redis-py replays a call whose reply was
-- lost within its retry window (seconds), when the job may already have finished and its hash be gone; the marker
-- still says "this call enqueued it" then. (The hash's 'n' field answers a replay later than that while the job
-- is alive.) A minute is far beyond any retry window and keeps the markers few: ~100 bytes per job enqueued in
-- the last minute. SET ... GET needs Redis 6.2, pool's minimum.
local NONCE_TTL_MS = 60000

-- A refused call leaves the marker as it found it: it belongs to the call that enqueued the job.
local function refused(marker, previous)
  if previous then redis.call('SET', marker, previous, 'PX', NONCE_TTL_MS) else redis.call('DEL', marker) end
  return 0
end

-- deferred, waiting: the keys of those sets; the other keys it touches are named from the prefix and the ids.
local function enqueue_one(deferred, waiting_set, prefix, job_id, payload, score, now, expires, attempts_before,
                           nonce, fence_key, tick, fn, priority, dependencies)
  local job, marker = prefix .. 'job:' .. job_id, prefix .. 'nonce:' .. job_id
  -- one command reads and writes the marker, so a new job (the common case) pays one call for it
  local previous = redis.call('SET', marker, nonce, 'PX', NONCE_TTL_MS, 'GET')
  if previous == nonce then return 1 end  -- a replay of this very call, whatever the job became since
  if redis.call('EXISTS', job, prefix .. 'result:' .. job_id) > 0 then
    if redis.call('HGET', job, 'n') == nonce then return 1 end  -- a replay later than the marker lives
    return refused(marker, previous)
  end
  if fence_key ~= '' then
    local last = redis.call('GET', fence_key)
    if last and tonumber(last) >= tonumber(tick) then return refused(marker, previous) end
    redis.call('SET', fence_key, tick, 'PX', 7 * 86400000)
  end
  local waiting, failed_dependency = 0, false
  for _, dependency in ipairs(dependencies) do
    if redis.call('EXISTS', prefix .. 'failed:' .. dependency) == 1 then
      failed_dependency = dependency
    elseif redis.call('EXISTS', prefix .. 'job:' .. dependency) == 1 then
      redis.call('SADD', prefix .. 'dependents:' .. dependency, job_id)
      waiting = waiting + 1
    end
  end
  if not failed_dependency and waiting == 0 and tonumber(score) <= tonumber(now) then
    -- the common case, written out: building the field list below costs Redis more than these three calls
    redis.call('HSET', job, 'd', payload, 't', attempts_before, 'sc', score, 'n', nonce, 'f', fn, 's', 'q')
    if tonumber(priority) > 0 then redis.call('HSET', job, 'p', priority) end
    redis.call('XADD', lane_key(priority), '*', 'id', job_id)
    redis.call('PEXPIRE', job, expires)
    return 1
  end
  -- one HSET with every field
  local fields = {'d', payload, 't', attempts_before, 'sc', score, 'n', nonce, 'f', fn}
  if tonumber(priority) > 0 then
    fields[#fields + 1] = 'p'
    fields[#fields + 1] = priority
  end
  local function hset(...)
    for _, value in ipairs({...}) do fields[#fields + 1] = value end
    redis.call('HSET', job, unpack(fields))
  end
  if failed_dependency then
    hset('df', failed_dependency, 's', 'q')
    redis.call('XADD', lane_key(priority), '*', 'id', job_id)
  elseif waiting > 0 then
    hset('s', 'w', 'w', waiting)
    redis.call('SADD', waiting_set, job_id)
    return 1
  else
    hset('s', 'd')
    redis.call('ZADD', deferred, score, job_id)
  end
  redis.call('PEXPIRE', job, expires)
  return 1
end
