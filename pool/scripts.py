"""The queue's Lua scripts, each with its contract.

Each script is one atomic step of a job's life. They are loaded once per client and run by EVALSHA (redis-py's
``Script`` falls back to EVAL after a restart flushed the script cache). Every key a script touches starts with
the queue's hash-tagged prefix, passed as ARGV[1], so a script stays inside one Redis Cluster slot.

A job is a hash ``job:<id>`` with fields d (payload), t (attempts started), s (state: d deferred, q queued,
w waiting for dependencies, r running), sc (score: the ms timestamp it is due), e (consumer and entry it runs from),
n (the enqueue call's nonce), w (dependencies left) and df (a dependency that failed). Ready jobs are
stream entries ``{id: <job_id>}``; an entry stays in the consumer group's pending list while its job runs, and is
acked and deleted only in the same script that records the result or puts the job back. That is the whole of
invariant 1: no step drops a job.

Every script is safe to run twice: redis-py retries a command whose connection dropped, even if Redis had
already run it. Acks return 0 the second time, START recognises its entry, ENQUEUE its nonce.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

# Notify anyone blocked in Job.result(): each registered waiter gets one wake-up item.
_NOTIFY_WAITERS = """
local function notify(prefix, job_id)
  local waiters = tonumber(redis.call('GET', prefix .. 'wait:' .. job_id) or '0')
  if waiters > 0 then
    local key = prefix .. 'notify:' .. job_id
    for _ = 1, waiters do redis.call('RPUSH', key, '1') end
    redis.call('PEXPIRE', key, 60000)
    redis.call('DEL', prefix .. 'wait:' .. job_id)
  end
end
"""

# Record a result (or not, when ttl is 0) and wake waiters.
_STORE_RESULT = """
local function store_result(prefix, job_id, payload, ttl)
  ttl = tonumber(ttl)
  if ttl > 0 then
    redis.call('SET', prefix .. 'result:' .. job_id, payload, 'PX', ttl)
  elseif ttl < 0 then
    redis.call('SET', prefix .. 'result:' .. job_id, payload)
  end
  notify(prefix, job_id)
end
"""

# Put a job on the stream now, or in the deferred set when due later (used when a job is released).
_PLACE = """
local function place(prefix, stream, deferred, job_id, now)
  local job = prefix .. 'job:' .. job_id
  local score = tonumber(redis.call('HGET', job, 'sc') or '0')
  if score > now then
    redis.call('HSET', job, 's', 'd')
    redis.call('ZADD', deferred, score, job_id)
  else
    redis.call('HSET', job, 's', 'q')
    redis.call('XADD', stream, '*', 'id', job_id)
  end
end
"""

# Jobs waiting on a finished job: one dependency fewer to wait for; a failed dependency releases them at once
# with 'df' set (the worker fails them, unless they asked to run anyway).
_RELEASE_DEPENDENTS = """
local function release_dependents(prefix, stream, deferred, job_id, ok, now)
  local key = prefix .. 'dependents:' .. job_id
  for _, dependent in ipairs(redis.call('SMEMBERS', key)) do
    local job = prefix .. 'job:' .. dependent
    if redis.call('HGET', job, 's') == 'w' then
      if not ok then redis.call('HSET', job, 'df', job_id) end
      if redis.call('HINCRBY', job, 'w', -1) <= 0 or not ok then
        place(prefix, stream, deferred, dependent, now)
      end
    end
  end
  redis.call('DEL', key)
end
"""

# One job's enqueue, shared by ENQUEUE and ENQUEUE_MANY.
_ENQUEUE_ONE = """
local function enqueue_one(stream, deferred, prefix, job_id, payload, score, now, expires, attempts_before, nonce,
                           fence_key, tick, dependencies)
  local job = prefix .. 'job:' .. job_id
  if redis.call('HGET', job, 'n') == nonce then return 1 end
  if redis.call('EXISTS', job, prefix .. 'result:' .. job_id) > 0 then return 0 end
  if fence_key ~= '' then
    local last = redis.call('GET', fence_key)
    if last and tonumber(last) >= tonumber(tick) then return 0 end
    redis.call('SET', fence_key, tick, 'PX', 7 * 86400000)
  end
  local waiting, failed_dependency = 0, false
  for _, dependency in ipairs(dependencies) do
    if redis.call('EXISTS', prefix .. 'failed:' .. dependency) == 1 then
      failed_dependency = dependency
    elseif redis.call('EXISTS', prefix .. 'job:' .. dependency) == 1 then
      redis.call('SADD', prefix .. 'dependents:' .. dependency, job_id)
      waiting = waiting + 1
    end
  end
  redis.call('HSET', job, 'd', payload, 't', attempts_before, 'sc', score, 'n', nonce)
  if failed_dependency then
    redis.call('HSET', job, 'df', failed_dependency, 's', 'q')
    redis.call('XADD', stream, '*', 'id', job_id)
  elseif waiting > 0 then
    redis.call('HSET', job, 's', 'w', 'w', waiting)
    return 1
  elseif tonumber(score) > tonumber(now) then
    redis.call('HSET', job, 's', 'd')
    redis.call('ZADD', deferred, score, job_id)
  else
    redis.call('HSET', job, 's', 'q')
    redis.call('XADD', stream, '*', 'id', job_id)
  end
  redis.call('PEXPIRE', job, expires)
  return 1
end
"""

ENQUEUE = (
    _ENQUEUE_ONE
    + """
-- KEYS: stream, deferred
-- ARGV: prefix, job_id, payload, score_ms, now_ms, expires_ms, attempts_before, nonce, fence_key or '',
--       tick_ms, then the ids of jobs this one depends on
-- Creates the job unless one with this id is queued, deferred, waiting, running or has a kept result (arq's
-- uniqueness), and, for cron ticks, unless the fence already holds this tick or a later one. A replay of the
-- same call (a retried command whose reply was lost) is recognised by its nonce and answers 1 again.
-- Dependencies: each one still queued/running makes the job wait (state w); one in the failed registry
-- releases it at once marked with that failure. Waiting jobs have no TTL (they wait as long as their
-- dependencies take). Returns 1 when enqueued, 0 when refused.
local dependencies = {}
for i = 11, #ARGV do dependencies[#dependencies + 1] = ARGV[i] end
return enqueue_one(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
                   ARGV[9], ARGV[10], dependencies)
"""
)

ENQUEUE_MANY = (
    _ENQUEUE_ONE
    + """
-- KEYS: stream, deferred
-- ARGV: prefix, now_ms, then per job: job_id, payload, score_ms, expires_ms, attempts_before, nonce,
--       dependency count, the dependency ids
-- ENQUEUE for many jobs in one call (no cron fence). Returns 1 or 0 per job, in order.
local out = {}
local i = 3
while i <= #ARGV do
  local count = tonumber(ARGV[i + 6])
  local dependencies = {}
  for k = 1, count do dependencies[k] = ARGV[i + 6 + k] end
  out[#out + 1] = enqueue_one(KEYS[1], KEYS[2], ARGV[1], ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[2], ARGV[i + 3],
                              ARGV[i + 4], ARGV[i + 5], '', 0, dependencies)
  i = i + 7 + count
end
return out
"""
)

START = """
-- KEYS: stream
-- ARGV: prefix, group, consumer, then pairs of (entry_id, job_id) just delivered to this consumer
-- Marks each job running, counts the attempt, remembers consumer + entry (a replayed call does not count the
-- attempt again; a reclaim by another consumer does) and lifts the hash's TTL (_expires bounds the wait to
-- start, not the run). Returns per pair {payload, attempts, score, failed_dependency or ''}; 'expired' when
-- the hash is gone and no result exists
-- (the worker records that, acking the entry); false when a result exists (aborted before it started): the
-- entry is acked and deleted here.
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV, 2 do
  local entry_id, job_id = ARGV[i], ARGV[i + 1]
  local job = prefix .. 'job:' .. job_id
  local f = redis.call('HMGET', job, 'd', 'sc', 's', 'e', 't', 'df')
  local marker = consumer .. ' ' .. entry_id
  if f[1] then
    local attempts = tonumber(f[5])
    if not (f[3] == 'r' and f[4] == marker) then
      attempts = redis.call('HINCRBY', job, 't', 1)
      redis.call('HSET', job, 's', 'r', 'e', marker)
      redis.call('PERSIST', job)
    end
    out[#out + 1] = {f[1], attempts, f[2], f[6] or ''}
  elseif redis.call('EXISTS', prefix .. 'result:' .. job_id) == 0 then
    out[#out + 1] = 'expired'
  else
    redis.call('XACK', KEYS[1], group, entry_id)
    redis.call('XDEL', KEYS[1], entry_id)
    out[#out + 1] = false
  end
end
return out
"""

COMPLETE = (
    _NOTIFY_WAITERS
    + _STORE_RESULT
    + _PLACE
    + _RELEASE_DEPENDENTS
    + """
-- KEYS: stream, aborts, deferred, failed
-- ARGV: prefix, group, now_ms, then 7-tuples of (entry_id, job_id, result_payload, result_ttl_ms,
--       failure_ttl_ms, callback_id, callback_payload)
-- result_ttl_ms: > 0 keep that long, 0 keep nothing, < 0 keep forever. failure_ttl_ms > 0 marks a failure for
-- good: the result also goes to the failed registry for that long. A callback (on_success / on_failure) is
-- enqueued in the same step, so it is never lost between the two.
-- Records each result and only then acks and deletes the job: one round trip for a whole batch. An entry
-- already acked (a replayed call, or a job another worker took over and finished) is skipped.
local prefix, group, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 4, #ARGV, 7 do
  local entry_id, job_id = ARGV[i], ARGV[i + 1]
  if redis.call('XACK', KEYS[1], group, entry_id) == 1 then
    redis.call('XDEL', KEYS[1], entry_id)
    store_result(prefix, job_id, ARGV[i + 2], ARGV[i + 3])
    redis.call('DEL', prefix .. 'job:' .. job_id)
    redis.call('ZREM', KEYS[2], job_id)
    redis.call('ZREM', KEYS[3], job_id)
    local failure_ttl = tonumber(ARGV[i + 4])
    if failure_ttl > 0 then
      redis.call('SET', prefix .. 'failed:' .. job_id, ARGV[i + 2], 'PX', failure_ttl)
      redis.call('ZADD', KEYS[4], now, job_id)
    end
    release_dependents(prefix, KEYS[1], KEYS[3], job_id, failure_ttl == 0, now)
    local callback_id = ARGV[i + 5]
    if callback_id ~= '' and redis.call('EXISTS', prefix .. 'job:' .. callback_id) == 0 then
      local callback = prefix .. 'job:' .. callback_id
      redis.call('HSET', callback, 'd', ARGV[i + 6], 't', 0, 's', 'q', 'sc', now)
      redis.call('PEXPIRE', callback, 86400000)
      redis.call('XADD', KEYS[1], '*', 'id', callback_id)
    end
  end
end
return 1
"""
)

REQUEUE = """
-- KEYS: stream, deferred
-- ARGV: prefix, group, entry_id, job_id, run_at_ms, now_ms
-- Puts a running job back: deferred until run_at (Retry with a delay) or straight onto the stream (a
-- cancelled job handed back at shutdown), written in the same step that acks the old entry.
-- Returns 1; 0 touching nothing when the job hash is gone (deleted by hand: the entry stays pending, is
-- reclaimed, and START records the job as expired) or the entry was already acked (a replayed call).
local prefix, group, entry_id, job_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job = prefix .. 'job:' .. job_id
if redis.call('EXISTS', job) == 0 then return 0 end
if redis.call('XACK', KEYS[1], group, entry_id) == 0 then return 0 end
redis.call('XDEL', KEYS[1], entry_id)
if tonumber(ARGV[5]) > tonumber(ARGV[6]) then
  redis.call('HSET', job, 's', 'd', 'sc', ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[5], job_id)
else
  redis.call('HSET', job, 's', 'q')
  redis.call('XADD', KEYS[1], '*', 'id', job_id)
end
return 1
"""

PROMOTE = """
-- KEYS: stream, deferred
-- ARGV: prefix, now_ms, limit
-- Moves due deferred jobs onto the stream. Idempotent, so every worker may run it at any time.
-- Returns {moved, next_due_ms or false}.
local prefix = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, job_id in ipairs(due) do
  redis.call('ZREM', KEYS[2], job_id)
  local state = redis.call('HGET', prefix .. 'job:' .. job_id, 's')
  -- only a job still deferred; a missing hash is pushed too, so START records the expiry (no job vanishes
  -- without a result). A stale member of a job now queued or running is just dropped.
  if state == 'd' or not state then
    if state then redis.call('HSET', prefix .. 'job:' .. job_id, 's', 'q') end
    redis.call('XADD', KEYS[1], '*', 'id', job_id)
  end
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or false}
"""

HAND_BACK_CONSUMER = """
-- KEYS: stream
-- ARGV: prefix, group, consumer
-- Puts every job a (dead or retiring) consumer holds back onto the stream at once, then removes the consumer.
-- Used when a worker's identity is known to be gone, so its jobs need not wait for the idle-time reclaim.
-- Returns the number of jobs handed back.
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local count = 0
while true do
  local pending = redis.call('XPENDING', KEYS[1], group, '-', '+', 1000, consumer)
  if #pending == 0 then break end
  for _, item in ipairs(pending) do
    local entry_id = item[1]
    local entry = redis.call('XRANGE', KEYS[1], entry_id, entry_id)
    if entry[1] then
      local job_id = entry[1][2][2]
      local job = prefix .. 'job:' .. job_id
      if redis.call('EXISTS', job) == 1 then
        redis.call('HSET', job, 's', 'q')
        redis.call('XADD', KEYS[1], '*', 'id', job_id)
        count = count + 1
      end
    end
    redis.call('XACK', KEYS[1], group, entry_id)
    redis.call('XDEL', KEYS[1], entry_id)
  end
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], group, consumer)
return count
"""

PRUNE_CONSUMER = """
-- KEYS: stream
-- ARGV: group, consumer
-- Deletes the consumer only if it still holds nothing, checked in the same step (a read in between would
-- otherwise lose its new entries with the consumer).
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
"""

ABORT = (
    _NOTIFY_WAITERS
    + _STORE_RESULT
    + """
-- KEYS: deferred, aborts
-- ARGV: prefix, job_id, now_ms, aborted_result_payload, result_ttl_ms
-- A job not yet started is finished here with the aborted result (its stale stream entry, if any, is dropped
-- by START). A running job is flagged for its worker to cancel. Returns 0 not found, 1 flagged, 2 aborted.
local prefix, job_id = ARGV[1], ARGV[2]
local job = prefix .. 'job:' .. job_id
local state = redis.call('HGET', job, 's')
if not state then return 0 end
if state == 'r' then
  redis.call('ZADD', KEYS[2], ARGV[3], job_id)
  return 1
end
redis.call('ZREM', KEYS[1], job_id)
redis.call('DEL', job)
store_result(prefix, job_id, ARGV[4], ARGV[5])
return 2
"""
)


LOCK_EXTEND = """
-- KEYS: lock
-- ARGV: token, ttl_ms
-- Extends the lock only while we still hold it (compare-and-extend). Returns 1 if extended, 0 if lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

LOCK_RELEASE = """
-- KEYS: lock
-- ARGV: token
-- Deletes the lock only if we hold it (compare-and-delete), so a late release never frees another's lock.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Scripts:
    """The scripts registered on one client; ``redis.register_script`` handles EVALSHA and NOSCRIPT."""

    def __init__(self, redis: Redis) -> None:
        self.enqueue: AsyncScript = redis.register_script(ENQUEUE)
        self.enqueue_many: AsyncScript = redis.register_script(ENQUEUE_MANY)
        self.start: AsyncScript = redis.register_script(START)
        self.complete: AsyncScript = redis.register_script(COMPLETE)
        self.requeue: AsyncScript = redis.register_script(REQUEUE)
        self.promote: AsyncScript = redis.register_script(PROMOTE)
        self.hand_back_consumer: AsyncScript = redis.register_script(HAND_BACK_CONSUMER)
        self.abort: AsyncScript = redis.register_script(ABORT)
        self.prune_consumer: AsyncScript = redis.register_script(PRUNE_CONSUMER)
        self.lock_extend: AsyncScript = redis.register_script(LOCK_EXTEND)
        self.lock_release: AsyncScript = redis.register_script(LOCK_RELEASE)
