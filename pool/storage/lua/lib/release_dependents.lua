--@include lib/place.lua

-- Jobs waiting on a finished job: one dependency fewer to wait for; a failed dependency releases them at once
-- with 'df' set (the worker fails them, unless they asked to run anyway). A released job leaves the 'waiting' set.
-- clock() gives now in ms, to place a released job by its due time; called only when one is released, so a
-- caller reading Redis's TIME for it pays only then.
local function release_dependents(prefix, deferred, job_id, ok, clock)
  local key = prefix .. 'dependents:' .. job_id
  for _, dependent in ipairs(redis.call('SMEMBERS', key)) do
    local job = prefix .. 'job:' .. dependent
    if redis.call('HGET', job, 's') == 'w' then
      if not ok then redis.call('HSET', job, 'df', job_id) end
      if redis.call('HINCRBY', job, 'w', -1) <= 0 or not ok then
        place(prefix, deferred, dependent, clock())
        redis.call('SREM', prefix .. 'waiting', dependent)
      end
    end
  end
  redis.call('DEL', key)
end
