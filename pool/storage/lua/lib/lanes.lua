-- The stream ("lane") of a priority, and of a job (by its 'p' field; a missing hash goes to priority 0).
-- A script may include this for lane_key alone: lane_of unused there is not dead code.
-- luacheck: ignore 211/lane_of
local function lane_key(prefix, priority)
  if not priority or priority == '' or tonumber(priority) == 0 then return prefix .. 'stream' end
  return prefix .. 'stream:' .. priority
end
local function lane_of(prefix, job)
  return lane_key(prefix, redis.call('HGET', job, 'p'))
end
