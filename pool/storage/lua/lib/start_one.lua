--@include lib/hand_to_runner.lua

-- Mark one delivered job running (or park it, or report it expired). Shared by START and FETCH. It touches the
-- job's hash and result, its lane, and for a function in ``limits`` running:<fn>, parked:<fn> and
-- parked-functions: keys the caller knows (for a function not in its limits it touches none of them).
-- A full function parks the job: members of running:<fn> whose job no longer holds its slot (aborted, expired)
-- are forgotten by SWEEP_PARKED, which declares their keys, not here.
local function admit(prefix, fn, job_id, limit)
  local key = prefix .. 'running:' .. fn
  if redis.call('SISMEMBER', key, job_id) == 1 then return true end  -- its slot was reserved (or a reclaim)
  if redis.call('SCARD', key) >= limit then return false end
  redis.call('SADD', key, job_id)
  return true
end

-- fresh: this consumer got the entry by a plain read (delivered once), not by a reclaim
local function start_one(prefix, group, consumer, stream, entry_id, job_id, limits, fresh)
  local job = prefix .. 'job:' .. job_id
  local f = redis.call('HMGET', job, 'd', 'sc', 's', 'e', 't', 'df', 'f')
  local marker = consumer .. ' ' .. entry_id
  if f[1] and fresh and f[3] == 'r' and f[4] and f[4] ~= marker and hand_to_runner(group, stream, entry_id, f[4]) then
    return false
  end
  if f[1] then
    local attempts = tonumber(f[5])
    if not (f[3] == 'r' and f[4] == marker) then
      local limit = f[7] and limits[f[7]]
      if f[3] == 'p' or (limit and not admit(prefix, f[7], job_id, limit)) then
        redis.call('XACK', stream, group, entry_id)
        redis.call('XDEL', stream, entry_id)
        if f[3] ~= 'p' then
          redis.call('HSET', job, 's', 'p')
          redis.call('RPUSH', prefix .. 'parked:' .. f[7], job_id)
          redis.call('SADD', prefix .. 'parked-functions', f[7])
        end
        return 'parked'
      end
      attempts = (attempts or 0) + 1  -- one HSET rather than HINCRBY + HSET: this runs for every job
      redis.call('HSET', job, 's', 'r', 'e', marker, 't', attempts)
      redis.call('PERSIST', job)
    end
    return {f[1], attempts, f[2], f[6] or '', f[7] or ''}
  elseif redis.call('EXISTS', prefix .. 'result:' .. job_id) == 0 then
    return 'expired'
  end
  redis.call('XACK', stream, group, entry_id)
  redis.call('XDEL', stream, entry_id)
  return false
end

local function read_limits(first)
  local limits = {}
  local count = tonumber(ARGV[first])
  for k = 1, count do limits[ARGV[first + 2 * k - 1]] = tonumber(ARGV[first + 2 * k]) end
  return limits, first + 2 * count + 1
end
