--@include lib/lanes.lua

-- Concurrency-limited functions. running:<fn> holds the ids of jobs that hold a slot: running ones, and parked
-- ones put back on their lane with a slot reserved for them (state q). A member whose job is gone or in any other
-- state holds nothing. release_one puts the oldest parked job back with its slot reserved; ids of parked jobs
-- aborted meanwhile are dropped, and one whose hash expired goes to the stream so START records the expiry.
-- A script may include this for one of these functions: the others unused there are not dead code.
-- luacheck: ignore 211/holds_slot 211/free_slot
local function holds_slot(prefix, job_id)
  local state = redis.call('HGET', prefix .. 'job:' .. job_id, 's')
  return state == 'r' or state == 'q'
end

local function release_one(prefix, fn)
  local parked = prefix .. 'parked:' .. fn
  while true do
    local next_id = redis.call('LPOP', parked)
    if not next_id then return false end
    local job = prefix .. 'job:' .. next_id
    local state = redis.call('HGET', job, 's')
    if state == 'p' then
      redis.call('SADD', prefix .. 'running:' .. fn, next_id)
      redis.call('HSET', job, 's', 'q')
      redis.call('XADD', lane_of(prefix, job), '*', 'id', next_id)
      return true
    elseif not state and redis.call('EXISTS', prefix .. 'result:' .. next_id) == 0 then
      redis.call('XADD', prefix .. 'stream', '*', 'id', next_id)
    end
  end
end

-- A job of a limited function stopped running (it finished, or was retried or handed back): free its slot
-- and pass it on to the oldest parked job of that function.
local function free_slot(prefix, job_id, fn)
  if fn and redis.call('SREM', prefix .. 'running:' .. fn, job_id) == 1 then release_one(prefix, fn) end
end
