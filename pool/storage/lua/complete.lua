-- KEYS: the four lanes (priority 0 to 3), aborts, deferred, failed, releasing, then for each job in ARGV's order:
--       job:<id>, result:<id>, wait:<id>, done:<id>, dependents:<id>, failed:<id> when it failed for good
--       (failure_ttl_ms > 0), job:<callback_id> when it has a callback; then running:<fn> and parked:<fn> of each
--       function the jobs name (every key it touches: the names it builds from the prefix are these; all but the
--       first eight are declared where Redis checks them, on Redis Cluster: RedisQueue.declares_job_keys)
-- ARGV: prefix, group, then ONE msgpack array of 10-tuples (entry_id, job_id, result_payload, result_ttl_ms,
--       failure_ttl_ms, callback_id, callback_payload, priority of the entry's lane, callback_function, function
--       of the job as START returned it): one argument rather than 10 per job, which redis-py would encode one by
--       one; then the consumer (worker) that ran these jobs.
-- result_ttl_ms: > 0 keep that long, 0 keep nothing, < 0 keep forever. failure_ttl_ms: 0 for a success, < 0
-- for a failure not kept in the registry (aborted, or failure_ttl=0), > 0 marks a failure for
-- good: the result also goes to the failed registry for that long (record failed:<id> with that TTL, indexed
-- in KEYS[7] by its expiry time). A callback (on_success / on_failure) is enqueued in the same step, so it is never
-- lost between the two.
-- The work that touches keys named by what this script reads is left to the step after it, whose call declares
-- them: a slot freed is passed to the first parked job (added to running:<fn>: see lib/slots.lua), which
-- SWEEP_PARKED then puts on its lane; the jobs waiting on a finished one (its dependents) are released by
-- RELEASE_DEPENDENTS, the job's outcome kept in KEYS[8] ('releasing') until then; members of the failed
-- registry whose record expired are dropped by TRIM_FAILED (up to max(100, 2 per failure) per call with
-- failures, so the index stays bounded). RedisQueue.complete runs that step when the reply names work for it.
-- Times (the failed registry's expiry scores, a callback's score) come from Redis's clock, the one hosts share:
-- TIME is read once per call, and only when a job of the batch needs it (a failure, a callback), so a batch of
-- plain successes does not pay for it.
-- Records each result and only then acks and deletes the job: one round trip for a whole batch. An entry
-- already acked (a replayed call, or a job another worker took over and finished) is skipped. An entry that
-- vanished (its stream deleted or trimmed, or the group destroyed) while the job ran is not: its result is
-- recorded when the job hash still names this consumer and entry as its run (marked by START); a replay finds
-- the hash deleted, a takeover finds another consumer's mark, so each is still skipped. Entries are
-- deleted with one XDEL per lane at the end: deleting a stream's first entries one call at a time rescans
-- the tombstones before them each time (9 us per entry against 3.5 in batches of 100, measured). The aborts and
-- deferred sets lose the batch's ids in one ZREM each at the end, too.
-- Returns {{function, id, ...} of parked jobs given a slot, {{job_id, dependent ids...}, ...} of finished jobs
-- with dependents, {ids of failed registry members whose record may have expired}}.
--@include lib/lanes.lua
--@include lib/store_result.lua
--@include lib/slots.lua
--@include lib/redis_time.lua

local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[4] or ''
local aborts, deferred, registry, releasing = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local now
local function clock()
  now = now or redis_now_ms()
  return now
end
local function runs_here(job_id, entry_id)
  return consumer ~= '' and redis.call('HGET', prefix .. 'job:' .. job_id, 'e') == consumer .. ' ' .. entry_id
end
local to_delete = {}
local finished = {}
local failures = 0
local passed, with_dependents = {}, {}
for _, c in ipairs(cmsgpack.unpack(ARGV[3])) do
  local entry_id, job_id, payload, ttl, failure_ttl, callback_id, callback_payload, priority, callback_fn, fn =
    c[1], c[2], c[3], c[4], tonumber(c[5]), c[6], c[7], c[8], c[9], c[10]
  local stream = lane_key(priority)
  if redis.call('XACK', stream, group, entry_id) == 1 or runs_here(job_id, entry_id) then
    local entries = to_delete[stream]
    if not entries then
      entries = {}
      to_delete[stream] = entries
    end
    entries[#entries + 1] = entry_id
    finished[#finished + 1] = job_id
    store_result(prefix, job_id, payload, ttl)
    redis.call('DEL', prefix .. 'job:' .. job_id)
    free_slot(prefix, job_id, fn, passed)
    if failure_ttl > 0 then
      redis.call('SET', prefix .. 'failed:' .. job_id, payload, 'PX', failure_ttl)
      redis.call('ZADD', registry, clock() + failure_ttl, job_id)
      failures = failures + 1
    end
    local dependents = redis.call('SMEMBERS', prefix .. 'dependents:' .. job_id)
    if #dependents > 0 then  -- dependents run only after a success
      redis.call('HSET', releasing, job_id, failure_ttl == 0 and '1' or '0')
      table.insert(dependents, 1, job_id)
      with_dependents[#with_dependents + 1] = dependents
    end
    if callback_id ~= '' and redis.call('EXISTS', prefix .. 'job:' .. callback_id) == 0 then
      local callback = prefix .. 'job:' .. callback_id
      redis.call('HSET', callback, 'd', callback_payload, 't', 0, 's', 'q', 'sc', clock(), 'f', callback_fn)
      redis.call('PEXPIRE', callback, 86400000)
      redis.call('XADD', KEYS[1], '*', 'id', callback_id)
    end
  end
end
for stream, entries in pairs(to_delete) do
  for i = 1, #entries, 1000 do  -- bounded by unpack's stack: batches are at most 500 today
    redis.call('XDEL', stream, unpack(entries, i, math.min(i + 999, #entries)))
  end
end
for i = 1, #finished, 1000 do
  redis.call('ZREM', aborts, unpack(finished, i, math.min(i + 999, #finished)))
  redis.call('ZREM', deferred, unpack(finished, i, math.min(i + 999, #finished)))
end
local expired = {}
if failures > 0 then
  expired = redis.call('ZRANGEBYSCORE', registry, '-inf', clock(), 'LIMIT', 0, math.max(100, 2 * failures))
end
return {passed, with_dependents, expired}
