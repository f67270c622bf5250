-- Concurrency-limited functions. running:<fn> holds the ids of the jobs that hold a slot: running ones, ones put
-- back on their lane with a slot reserved (state q), and parked ones a slot was passed to (state p) that are not
-- on their lane yet. parked:<fn> lists the parked jobs, oldest first.
-- A job that stops running (it finished, or was retried, handed back or put back) passes its slot on to the
-- first parked job that holds none: free_slot touches running:<fn> and parked:<fn> only (the caller declares
-- both for each function it names), never the parked job's own keys, which the script could not have declared:
-- it adds the job's id to the running set and returns it in ``passed`` (function, id, ...), and the caller then
-- runs SWEEP_PARKED for those ids, their keys declared, which puts them on their lanes. Until then, and if that
-- second step is lost, the slot stays reserved for them (the workers' periodic SWEEP_PARKED finishes it).
-- No key is touched after this may have emptied it: the set never empties between the two writes (SADD first),
-- and a set emptied by its last member's SREM is noted and left alone by later calls in the same script.
local emptied = {}  -- (a script's top-level local: new for each call)

local function first_unreserved(running, parked)
  local from = 0
  while true do
    local ids = redis.call('LRANGE', parked, from, from + 15)
    if #ids == 0 then return nil end
    for _, id in ipairs(ids) do
      if redis.call('SISMEMBER', running, id) == 0 then return id end
    end
    from = from + 16
  end
end

local function free_slot(prefix, job_id, fn, passed)
  if not fn or fn == '' then return end
  local running = prefix .. 'running:' .. fn
  if emptied[running] or redis.call('SISMEMBER', running, job_id) == 0 then return end
  local next_id = first_unreserved(running, prefix .. 'parked:' .. fn)
  if next_id then
    redis.call('SADD', running, next_id)
    passed[#passed + 1] = fn
    passed[#passed + 1] = next_id
  elseif redis.call('SCARD', running) == 1 then
    emptied[running] = true
  end
  redis.call('SREM', running, job_id)
end
