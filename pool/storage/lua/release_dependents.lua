-- KEYS: the four lanes (priority 0 to 3), deferred, waiting, releasing, then dependents:<id> of each finished
--       job in ARGV, then job:<id> of each known id in ARGV (every key it touches)
-- ARGV: prefix, count n of finished jobs, their n ids, then the known ids: the jobs waiting on them, as COMPLETE
--       or ABORT returned them (or as the caller read dependents:<id>), whose keys the call declares
-- The step after COMPLETE and ABORT for jobs that others wait on (their dependents). For each finished job still
-- in 'releasing' (where COMPLETE and ABORT keep whether it succeeded): each dependent still waiting (state w) has
-- one dependency fewer to wait for, and runs (placed on its lane, or deferred until its due time by Redis's
-- clock) when none is left; a failed dependency releases it at once marked with that failure ('df': the worker
-- fails it, unless it asked to run anyway). A released job leaves the 'waiting' set. A dependent not known to
-- the call is left in the set and returned, for the caller to call again with it known; once all are done, the
-- set and the job's entry in 'releasing' are deleted. Each dependent is counted off in the same step that
-- removes it from the set, so a replay counts nothing twice. No key is touched after this may have emptied it
-- (the sets and 'releasing' lose their members in one command each, at the end). Returns {ids needed}.
--@include lib/place.lua
--@include lib/redis_time.lua

local prefix = ARGV[1]
local count = tonumber(ARGV[2])
local finished = {}
for i = 1, count do finished[i] = ARGV[2 + i] end
local known = {}
for i = 3 + count, #ARGV do known[ARGV[i]] = true end
local deferred, waiting, releasing = KEYS[5], KEYS[6], KEYS[7]
local now
local function clock()
  now = now or redis_now_ms()
  return now
end

local needed, done, released = {}, {}, {}
local outcomes = count > 0 and redis.call('HMGET', releasing, unpack(finished)) or {}
for i, job_id in ipairs(finished) do
  local outcome = outcomes[i]
  if outcome then
    local key = prefix .. 'dependents:' .. job_id
    local ok = outcome == '1'
    local counted, complete = {}, true
    local members = redis.call('SMEMBERS', key)
    for _, dependent in ipairs(members) do
      if known[dependent] then
        local job = prefix .. 'job:' .. dependent
        if redis.call('HGET', job, 's') == 'w' then
          if not ok then redis.call('HSET', job, 'df', job_id) end
          if redis.call('HINCRBY', job, 'w', -1) <= 0 or not ok then
            place(prefix, deferred, dependent, clock())
            released[#released + 1] = dependent
          end
        end
        counted[#counted + 1] = dependent
      else
        needed[#needed + 1] = dependent
        complete = false
      end
    end
    if complete then
      if #members > 0 then redis.call('DEL', key) end
      done[#done + 1] = job_id
    elseif #counted > 0 then
      redis.call('SREM', key, unpack(counted))
    end
  end
end
if #released > 0 then redis.call('SREM', waiting, unpack(released)) end
if #done > 0 then redis.call('HDEL', releasing, unpack(done)) end
return needed
