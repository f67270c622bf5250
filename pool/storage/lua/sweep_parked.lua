-- KEYS: the four lanes (priority 0 to 3), then for each function in ARGV: running:<fn>, parked:<fn>, and job:<id>,
--       result:<id> of each of its known ids (every key it touches)
-- ARGV: prefix, then for each function: its name, its max_concurrency (0 when the caller does not know it), the
--       count k of its known ids and those k ids: the jobs whose keys the call declares (what the caller read of
--       running:<fn> and of the head of parked:<fn>, or the ids a script that passed a slot on returned)
-- Releases parked jobs: walks each function's parked list from its head. A job that holds a slot (one was
-- passed to it: see lib/slots.lua) goes onto its lane (state q); so does one that holds none while the function
-- has room (only with its max_concurrency known: the limit less the members of running:<fn> that hold a slot),
-- its slot taken. Ids of jobs no longer parked (aborted, expired or deleted meanwhile) leave the list, a slot
-- reserved for one passed on to the next, and one whose hash expired without a result goes to the stream so
-- START records the expiry. With the limit known, members of running:<fn> whose job no longer holds a slot
-- (gone, or in another state) are forgotten first. The walk stops at an id whose keys are not declared and
-- returns it, for the caller to call again with it known (a script touches only the keys its call declares);
-- without room it stops at the first job that holds no slot, unless a known job further on holds one (the ids
-- before such a job are all gone: slots pass to the first parked job that holds none).
-- It is the step after every script that passes a slot on (COMPLETE, REQUEUE, UNREAD, ABORT, HAND_BACK_CONSUMER),
-- and every worker with a limited function runs it now and then, so a slot freed where no script passed it on
-- (a job aborted or expired, the step after a script lost with its worker) still reaches the parked jobs.
-- No key is touched after this call may have emptied it: LPOP is bounded by the list's length read first, and
-- the forgotten members go in one SREM after the slots taken. Idempotent. Returns {released, {ids needed}}.
--@include lib/lanes.lua

local prefix = ARGV[1]

-- one function's walk; returns the number released, adds the ids it needs to ``needed``
local function sweep(fn, limit, known, needed)
  local running, parked = prefix .. 'running:' .. fn, prefix .. 'parked:' .. fn
  local left = redis.call('LLEN', parked)
  if left == 0 then return 0 end
  local states = {}
  for id in pairs(known) do states[id] = redis.call('HGET', prefix .. 'job:' .. id, 's') end
  local forget, stale, room, ahead, released = {}, {}, 0, 0, 0
  if limit > 0 then
    local members = redis.call('SMEMBERS', running)
    for _, member in ipairs(members) do
      local state = states[member]
      if known[member] and state ~= 'r' and state ~= 'q' and state ~= 'p' then
        forget[#forget + 1] = member
        stale[member] = true
      end
    end
    room = limit - #members + #forget
  end
  -- parked jobs holding a slot, known: the walk goes on to them past jobs gone without one
  for id in pairs(known) do
    if states[id] == 'p' and redis.call('SISMEMBER', running, id) == 1 then ahead = ahead + 1 end
  end
  while left > 0 do
    local head = redis.call('LINDEX', parked, 0)
    local reserved = not stale[head] and redis.call('SISMEMBER', running, head) == 1
    if not reserved and room <= 0 and ahead == 0 then break end
    if not known[head] then
      needed[#needed + 1] = head
      break
    end
    local state = states[head]
    if state == 'p' and not reserved and room <= 0 then break end
    redis.call('LPOP', parked)
    left = left - 1
    local job = prefix .. 'job:' .. head
    if state == 'p' then
      if reserved then
        ahead = ahead - 1
      else
        redis.call('SADD', running, head)
        room = room - 1
      end
      redis.call('HSET', job, 's', 'q')
      redis.call('XADD', lane_of(job), '*', 'id', head)
      released = released + 1
    else
      if not state and redis.call('EXISTS', prefix .. 'result:' .. head) == 0 then
        redis.call('XADD', KEYS[1], '*', 'id', head)
      end
      if reserved and state ~= 'r' and state ~= 'q' then  -- a slot passed to a job gone since: on to the next
        forget[#forget + 1] = head
        room = room + 1
      end
    end
  end
  if #forget > 0 then redis.call('SREM', running, unpack(forget)) end
  return released
end

local released, needed = 0, {}
local i = 2
while i <= #ARGV do
  local fn, limit, count = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local known = {}
  for k = i + 3, i + 2 + count do known[ARGV[k]] = true end
  released = released + sweep(fn, limit, known, needed)
  i = i + 3 + count
end
return {released, needed}
