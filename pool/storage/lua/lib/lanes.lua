-- The streams ("lanes") of the four priorities are KEYS[1] to KEYS[4] (priority 0 to 3) of every script that
-- includes this: lane_key(priority) is one of them (anything but 1, 2 or 3 is priority 0), never a name built
-- here, so a lane a script touches is always declared. lane_of(job): the lane of a job, by its 'p' field (a
-- missing hash goes to priority 0). A script may include this for lane_key alone: lane_of unused there is not
-- dead code.
-- luacheck: ignore 211/lane_of
local function lane_key(priority)
  local p = tonumber(priority)
  if p ~= 1 and p ~= 2 and p ~= 3 then p = 0 end
  return KEYS[p + 1]
end
local function lane_of(job)
  return lane_key(redis.call('HGET', job, 'p'))
end
