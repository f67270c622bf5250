-- KEYS: stream, aborts, deferred, failed
-- ARGV: prefix, group, then ONE msgpack array of 9-tuples (entry_id, job_id, result_payload,
--       result_ttl_ms, failure_ttl_ms, callback_id, callback_payload, priority of the entry's lane,
--       callback_function): one argument rather than 9 per job, which redis-py would encode one by one.
-- result_ttl_ms: > 0 keep that long, 0 keep nothing, < 0 keep forever. failure_ttl_ms: 0 for a success, < 0
-- for a failure not kept in the registry (aborted, or failure_ttl=0), > 0 marks a failure for
-- good: the result also goes to the failed registry for that long (record failed:<id> with that TTL, indexed
-- in KEYS[4] by its expiry time; each call with failures also drops up to max(100, 2 per failure) members whose
-- record expired, so the index stays bounded). A callback (on_success / on_failure) is
-- enqueued in the same step, so it is never lost between the two.
-- ARGV[4]: the consumer (worker) that ran these jobs.
-- Times (the failed registry's expiry scores, a released dependent's due time compared with now, a callback's
-- score) come from Redis's clock, the one hosts share: TIME is read once per call, and only when a job of the
-- batch needs it (a failure, a dependent, a callback), so a batch of plain successes does not pay for it.
-- Records each result and only then acks and deletes the job: one round trip for a whole batch. An entry
-- already acked (a replayed call, or a job another worker took over and finished) is skipped. An entry that
-- vanished (its stream deleted or trimmed, or the group destroyed) while the job ran is not: its result is
-- recorded when the job hash still names this consumer and entry as its run (marked by START); a replay finds
-- the hash deleted, a takeover finds another consumer's mark, so each is still skipped. Entries are
-- deleted with one XDEL per lane at the end: deleting a stream's first entries one call at a time rescans
-- the tombstones before them each time (9 us per entry against 3.5 in batches of 100, measured).
--@include lib/lanes.lua
--@include lib/store_result.lua
--@include lib/slots.lua
--@include lib/release_dependents.lua
--@include lib/trim_failed.lua
--@include lib/redis_time.lua

local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[4] or ''
local now
local function clock()
  now = now or redis_now_ms()
  return now
end
local function runs_here(job_id, entry_id)
  return consumer ~= '' and redis.call('HGET', prefix .. 'job:' .. job_id, 'e') == consumer .. ' ' .. entry_id
end
local to_delete = {}
local failures = 0
for _, c in ipairs(cmsgpack.unpack(ARGV[3])) do
  local entry_id, job_id, payload, ttl, failure_ttl, callback_id, callback_payload, priority, callback_fn =
    c[1], c[2], c[3], c[4], tonumber(c[5]), c[6], c[7], c[8], c[9]
  local stream = lane_key(prefix, priority)
  if redis.call('XACK', stream, group, entry_id) == 1 or runs_here(job_id, entry_id) then
    local entries = to_delete[stream]
    if not entries then
      entries = {}
      to_delete[stream] = entries
    end
    entries[#entries + 1] = entry_id
    store_result(prefix, job_id, payload, ttl)
    local fn = redis.call('HGET', prefix .. 'job:' .. job_id, 'f')
    redis.call('DEL', prefix .. 'job:' .. job_id)
    free_slot(prefix, job_id, fn)
    redis.call('ZREM', KEYS[2], job_id)
    redis.call('ZREM', KEYS[3], job_id)
    if failure_ttl > 0 then
      redis.call('SET', prefix .. 'failed:' .. job_id, payload, 'PX', failure_ttl)
      redis.call('ZADD', KEYS[4], clock() + failure_ttl, job_id)
      failures = failures + 1
    end
    release_dependents(prefix, KEYS[3], job_id, failure_ttl == 0, clock)  -- dependents run only after a success
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
if failures > 0 then trim_failed(KEYS[4], prefix, clock(), math.max(100, 2 * failures)) end
return 1
