"""The queue's Lua scripts, each with its contract.

Each script is one atomic step of a job's life. They are loaded once per client and run by EVALSHA (redis-py's
``Script`` falls back to EVAL after a restart flushed the script cache). Every key a script touches starts with
the queue's hash-tagged prefix, passed as ARGV[1], so a script stays inside one Redis Cluster slot.

A job is a hash ``job:<id>`` with fields d (payload), t (attempts started), s (state: d deferred, q queued,
w waiting for dependencies, p parked for a concurrency slot, r running), sc (score: the ms timestamp it is due),
e (consumer and entry it runs from), n (the enqueue call's nonce), w (dependencies left), df (a dependency that
failed), f (function name) and p (priority, absent for 0). Ready jobs are stream entries ``{id: <job_id>}`` in the
stream of their priority (a "lane": ``stream`` for 0, ``stream:<p>`` above); an entry stays in the consumer
group's pending list while its job runs, and is acked and deleted only in the same script that records the
result, parks the job or puts it back. That is the whole of invariant 1: no step drops a job.

Functions with ``max_concurrency`` keep the ids of the jobs holding a slot in a set ``running:<fn>``; a job read
when the set is full is parked in the list ``parked:<fn>`` (its entry acked in the same step) and put back on
its lane, its slot reserved, when one of that function's jobs stops running (completes, is retried or handed
back); SWEEP_PARKED passes on slots freed any other way.

Every script is safe to run twice: redis-py retries a command whose connection dropped, even if Redis had
already run it. Acks return 0 the second time, START recognises its entry, ENQUEUE its nonce.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

# Wake the callers blocked in Job.result(), if any (WAIT sets wait:<id> while one waits): one entry carrying the
# result payload, added to the stream done:<id>, which every waiter reads without consuming it (XREAD after the
# id WAIT gave it). One copy whatever the number of waiters or of calls (MAXLEN 1), kept 60 s for a waiter
# whose read arrives just after; an entry of an earlier run of the same id (keep_result=0) is older than what
# the waiters of a later run read. Costs one EXISTS when nobody waits. Run twice, it leaves the same one entry.
_NOTIFY_WAITERS = """
local function notify(prefix, job_id, payload)
  local flag = prefix .. 'wait:' .. job_id
  if redis.call('EXISTS', flag) == 1 then
    local key = prefix .. 'done:' .. job_id
    redis.call('XADD', key, 'MAXLEN', '1', '*', 'r', payload)
    redis.call('PEXPIRE', key, 60000)
    redis.call('DEL', flag)
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
  notify(prefix, job_id, payload)
end
"""

# The stream ("lane") of a priority, and of a job (by its 'p' field; a missing hash goes to priority 0).
_LANES = """
local function lane_key(prefix, priority)
  if not priority or priority == '' or tonumber(priority) == 0 then return prefix .. 'stream' end
  return prefix .. 'stream:' .. priority
end
local function lane_of(prefix, job)
  return lane_key(prefix, redis.call('HGET', job, 'p'))
end
"""

# Redis's clock in ms. Scripts may call TIME and then write: Redis 7 replicates scripts' effects (the default
# since 5), not the script. Due times and health expiry use it, because hosts' clocks disagree.
_REDIS_TIME = """
local function redis_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# Put a job on its lane now, or in the deferred set when due later (used when a job is released).
_PLACE = """
local function place(prefix, deferred, job_id, now)
  local job = prefix .. 'job:' .. job_id
  local score = tonumber(redis.call('HGET', job, 'sc') or '0')
  if score > now then
    redis.call('HSET', job, 's', 'd')
    redis.call('ZADD', deferred, score, job_id)
  else
    redis.call('HSET', job, 's', 'q')
    redis.call('XADD', lane_of(prefix, job), '*', 'id', job_id)
  end
end
"""

# Concurrency-limited functions. running:<fn> holds the ids of jobs that hold a slot: running ones, and parked
# ones put back on their lane with a slot reserved for them (state q). A member whose job is gone or in any other
# state holds nothing. release_one puts the oldest parked job back with its slot reserved; ids of parked jobs
# aborted meanwhile are dropped, and one whose hash expired goes to the stream so START records the expiry.
_SLOTS = """
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
"""

# Jobs waiting on a finished job: one dependency fewer to wait for; a failed dependency releases them at once
# with 'df' set (the worker fails them, unless they asked to run anyway). A released job leaves the 'waiting' set.
_RELEASE_DEPENDENTS = """
local function release_dependents(prefix, deferred, job_id, ok, now)
  local key = prefix .. 'dependents:' .. job_id
  for _, dependent in ipairs(redis.call('SMEMBERS', key)) do
    local job = prefix .. 'job:' .. dependent
    if redis.call('HGET', job, 's') == 'w' then
      if not ok then redis.call('HSET', job, 'df', job_id) end
      if redis.call('HINCRBY', job, 'w', -1) <= 0 or not ok then
        place(prefix, deferred, dependent, now)
        redis.call('SREM', prefix .. 'waiting', dependent)
      end
    end
  end
  redis.call('DEL', key)
end
"""

# One job's enqueue (ENQUEUE runs it for each job of a call). A call that enqueues a job also leaves a marker
# nonce:<id> holding its nonce for NONCE_TTL_MS, apart from the job hash: redis-py replays a call whose reply was
# lost within its retry window (seconds), when the job may already have finished and its hash be gone; the marker
# still says "this call enqueued it" then. (The hash's 'n' field answers a replay later than that while the job
# is alive.) A minute is far beyond any retry window and keeps the markers few: ~100 bytes per job enqueued in
# the last minute. SET ... GET needs Redis 6.2, pool's minimum.
NONCE_TTL_MS = 60_000
_ENQUEUE_ONE = (
    _LANES
    + f"local NONCE_TTL_MS = {NONCE_TTL_MS}\n"
    + """
-- A refused call leaves the marker as it found it: it belongs to the call that enqueued the job.
local function refused(marker, previous)
  if previous then redis.call('SET', marker, previous, 'PX', NONCE_TTL_MS) else redis.call('DEL', marker) end
  return 0
end

local function enqueue_one(deferred, prefix, job_id, payload, score, now, expires, attempts_before, nonce,
                           fence_key, tick, fn, priority, dependencies)
  local job, marker = prefix .. 'job:' .. job_id, prefix .. 'nonce:' .. job_id
  -- one command reads and writes the marker, so a new job (the common case) pays one call for it
  local previous = redis.call('SET', marker, nonce, 'PX', NONCE_TTL_MS, 'GET')
  if previous == nonce then return 1 end  -- a replay of this very call, whatever the job became since
  if redis.call('EXISTS', job, prefix .. 'result:' .. job_id) > 0 then
    if redis.call('HGET', job, 'n') == nonce then return 1 end  -- a replay later than the marker lives
    return refused(marker, previous)
  end
  if fence_key ~= '' then
    local last = redis.call('GET', fence_key)
    if last and tonumber(last) >= tonumber(tick) then return refused(marker, previous) end
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
  if not failed_dependency and waiting == 0 and tonumber(score) <= tonumber(now) then
    -- the common case, written out: building the field list below costs Redis more than these three calls
    redis.call('HSET', job, 'd', payload, 't', attempts_before, 'sc', score, 'n', nonce, 'f', fn, 's', 'q')
    if tonumber(priority) > 0 then redis.call('HSET', job, 'p', priority) end
    redis.call('XADD', lane_key(prefix, priority), '*', 'id', job_id)
    redis.call('PEXPIRE', job, expires)
    return 1
  end
  -- one HSET with every field
  local fields = {'d', payload, 't', attempts_before, 'sc', score, 'n', nonce, 'f', fn}
  if tonumber(priority) > 0 then
    fields[#fields + 1] = 'p'
    fields[#fields + 1] = priority
  end
  local function hset(...)
    for _, value in ipairs({...}) do fields[#fields + 1] = value end
    redis.call('HSET', job, unpack(fields))
  end
  if failed_dependency then
    hset('df', failed_dependency, 's', 'q')
    redis.call('XADD', lane_key(prefix, priority), '*', 'id', job_id)
  elseif waiting > 0 then
    hset('s', 'w', 'w', waiting)
    redis.call('SADD', prefix .. 'waiting', job_id)
    return 1
  else
    hset('s', 'd')
    redis.call('ZADD', deferred, score, job_id)
  end
  redis.call('PEXPIRE', job, expires)
  return 1
end
"""
)

ENQUEUE = (
    _ENQUEUE_ONE
    + """
-- KEYS: stream, deferred
-- ARGV: prefix, then the jobs as ONE msgpack array of records [job_id, payload, score_ms, now_ms, expires_ms,
--       attempts_before, nonce, fence_key or '', tick_ms, function name, priority, [dependency ids]]
--       (strings only, no bin type: Redis's cmsgpack reads raw strings, binary-safe; one argument rather than
--       twelve per job: packing arguments is most of redis-py's cost of a call)
-- Creates each job unless one with its id is queued, deferred, waiting, running or has a kept result (arq's
-- uniqueness), and, for cron ticks, unless the fence already holds this tick or a later one. A replay of the
-- same call (a retried command whose reply was lost) is recognised by its nonce and answers 1 again, creating
-- nothing: each job enqueued leaves nonce:<job_id> = its nonce for a minute (apart from the job hash, which may
-- be gone by the time the replay comes), and its hash keeps the nonce in field n while it lives.
-- Dependencies: each one still queued/running makes the job wait (state w); one in the failed registry
-- releases it at once marked with that failure. Waiting jobs have no TTL (they wait as long as their
-- dependencies take) and are listed in the set 'waiting'. Returns 1 (enqueued) or 0 (refused) per job, in order.
local out = {}
for _, j in ipairs(cmsgpack.unpack(ARGV[2])) do
  out[#out + 1] = enqueue_one(KEYS[2], ARGV[1], j[1], j[2], j[3], j[4], j[5], j[6], j[7], j[8], j[9], j[10], j[11],
                              j[12])
end
return out
"""
)

# An entry delivered again by a consumer group recreated from id 0 (after XGROUP DESTROY or the loss of the
# group) whose job already runs from that very entry under another consumer (its 'e' mark): the entry goes to
# that consumer, whose heartbeat keeps it and whose COMPLETE acks it; if that consumer is dead, the entry goes
# idle and is reclaimed as usual. Returns true when it was handed over. Shared by START, FETCH and UNREAD.
_HAND_TO_RUNNER = """
local function hand_to_runner(group, stream, entry_id, marker)
  local owner, owned = string.match(marker, '^(.*) ([^ ]+)$')
  if owned ~= entry_id then return false end
  redis.call('XCLAIM', stream, group, owner, 0, entry_id, 'JUSTID')
  return true
end
"""

# Mark one delivered job running (or park it, or report it expired). Shared by START and FETCH.
_START_ONE = (
    _LANES
    + _SLOTS
    + _HAND_TO_RUNNER
    + """
local function admit(prefix, fn, job_id, limit)
  local key = prefix .. 'running:' .. fn
  if redis.call('SISMEMBER', key, job_id) == 1 then return true end  -- its slot was reserved (or a reclaim)
  if redis.call('SCARD', key) >= limit then
    for _, other in ipairs(redis.call('SMEMBERS', key)) do
      if not holds_slot(prefix, other) then redis.call('SREM', key, other) end
    end
    if redis.call('SCARD', key) >= limit then return false end
  end
  redis.call('SADD', key, job_id)
  return true
end

-- fresh: this consumer got the entry by a plain read (delivered once), not by a reclaim
local function start_one(prefix, group, consumer, stream, entry_id, job_id, limits, fresh)
  local job = prefix .. 'job:' .. job_id
  local f = redis.call('HMGET', job, 'd', 'sc', 's', 'e', 't', 'df', 'f')
  local marker = consumer .. ' ' .. entry_id
  if f[1] and fresh and f[3] == 'r' and f[4] and f[4] ~= marker and hand_to_runner(group, stream, entry_id, f[4]) then
    return false
  end
  if f[1] then
    local attempts = tonumber(f[5])
    if not (f[3] == 'r' and f[4] == marker) then
      local limit = f[7] and limits[f[7]]
      if f[3] == 'p' or (limit and not admit(prefix, f[7], job_id, limit)) then
        redis.call('XACK', stream, group, entry_id)
        redis.call('XDEL', stream, entry_id)
        if f[3] ~= 'p' then
          redis.call('HSET', job, 's', 'p')
          redis.call('RPUSH', prefix .. 'parked:' .. f[7], job_id)
          redis.call('SADD', prefix .. 'parked-functions', f[7])
        end
        return 'parked'
      end
      attempts = (attempts or 0) + 1  -- one HSET rather than HINCRBY + HSET: this runs for every job
      redis.call('HSET', job, 's', 'r', 'e', marker, 't', attempts)
      redis.call('PERSIST', job)
    end
    return {f[1], attempts, f[2], f[6] or '', f[7] or ''}
  elseif redis.call('EXISTS', prefix .. 'result:' .. job_id) == 0 then
    return 'expired'
  end
  redis.call('XACK', stream, group, entry_id)
  redis.call('XDEL', stream, entry_id)
  return false
end

local function read_limits(first)
  local limits = {}
  local count = tonumber(ARGV[first])
  for k = 1, count do limits[ARGV[first + 2 * k - 1]] = tonumber(ARGV[first + 2 * k]) end
  return limits, first + 2 * count + 1
end
"""
)

START = (
    _START_ONE
    + """
-- KEYS: stream
-- ARGV: prefix, group, consumer, limit count, (function, max_concurrency) pairs, then triples of
--       (entry_id, job_id, priority) just delivered to this consumer
-- Marks each job running, counts the attempt, remembers consumer + entry (a replayed call does not count the
-- attempt again; a reclaim by another consumer does) and lifts the hash's TTL (_expires bounds the wait to
-- start, not the run). A job of a function at its max_concurrency is parked instead (entry acked here).
-- An entry no longer pending for this consumer is skipped (false): a replay after the entry was parked.
-- Returns per triple {payload, attempts, score, failed_dependency or '', function name} (the name lets the
-- worker check max_tries before decoding the payload); 'parked'; 'expired' when the hash is gone and no result
-- exists (the worker records that, acking the entry); false when a result exists (aborted before it started):
-- the entry is acked and deleted here. Also false for an entry delivered once whose job runs from it under
-- another consumer (a recreated group delivered it again): it is handed to that consumer rather than run twice.
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local limits, first = read_limits(4)
local out = {}
for i = first, #ARGV, 3 do
  local stream = lane_key(prefix, ARGV[i + 2])
  -- an entry no longer pending for us was dealt with already (a replay of a call that parked or finished it)
  local pending = redis.call('XPENDING', stream, group, ARGV[i], ARGV[i], 1, consumer)
  if #pending == 0 then
    out[#out + 1] = false
  else
    local fresh = tonumber(pending[1][4]) == 1
    out[#out + 1] = start_one(prefix, group, consumer, stream, ARGV[i], ARGV[i + 1], limits, fresh)
  end
end
return out
"""
)

FETCH = (
    _START_ONE
    + """
-- KEYS: stream
-- ARGV: prefix, group, consumer, count, limit count, (function, max_concurrency) pairs, then the priorities
--       to read, in order
-- Reads up to count new entries without blocking, from each priority's lane in the order given until count
-- is reached, and STARTs each one (see START; every entry read here is a first delivery) in the same step:
-- one round trip for a busy worker.
-- Returns {lanes without the group, then per entry {entry_id, job_id, priority, START's item}}.
local prefix, group, consumer, remaining = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local limits, first = read_limits(5)
local out = {0}
for i = first, #ARGV do
  if remaining <= 0 then break end
  local stream = lane_key(prefix, ARGV[i])
  local reply = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', remaining, 'STREAMS', stream, '>')
  if type(reply) == 'table' and reply.err then
    out[1] = out[1] + 1
  elseif reply then
    for _, entry in ipairs(reply[1][2]) do
      local job_id = entry[2][2]
      local item = start_one(prefix, group, consumer, stream, entry[1], job_id, limits, true)
      out[#out + 1] = {entry[1], job_id, ARGV[i], item}
      remaining = remaining - 1
    end
  end
end
return out
"""
)

SWEEP_PARKED = (
    _LANES
    + _SLOTS
    + """
-- KEYS: stream
-- ARGV: prefix, then (function, max_concurrency) pairs
-- For each limited function with parked jobs: forget members that hold no slot (their job was aborted,
-- expired or deleted on its way back), then release parked jobs while there is room. Every worker runs it
-- now and then, so a slot freed where no script passes it on (an abort, an expiry, a worker without the
-- limit) still reaches the parked jobs. Idempotent. Returns the number released.
local prefix = ARGV[1]
local released = 0
for i = 2, #ARGV, 2 do
  local fn, limit = ARGV[i], tonumber(ARGV[i + 1])
  if redis.call('LLEN', prefix .. 'parked:' .. fn) > 0 then
    local running = prefix .. 'running:' .. fn
    for _, other in ipairs(redis.call('SMEMBERS', running)) do
      if not holds_slot(prefix, other) then redis.call('SREM', running, other) end
    end
    local room = limit - redis.call('SCARD', running)
    while room > 0 and release_one(prefix, fn) do
      room = room - 1
      released = released + 1
    end
  end
end
return released
"""
)

UNREAD = (
    _LANES
    + _SLOTS
    + _HAND_TO_RUNNER
    + """
-- KEYS: stream
-- ARGV: prefix, group, consumer, then triples of (entry_id, job_id, priority) read but not run
-- Puts entries this consumer read but will not run back at the end of their lane, in the same step that acks
-- them: the extras of a blocking read over several lanes (more entries than free slots), and jobs START marked
-- running just as a stop came. A start made by this consumer for this entry is undone (the attempt is not
-- counted, the slot of a limited function is freed). An entry whose job runs from it under another consumer
-- (a recreated group delivered it again) goes to that consumer instead. Returns how many went back.
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local count = 0
for i = 4, #ARGV, 3 do
  local entry_id, job_id = ARGV[i], ARGV[i + 1]
  local stream = lane_key(prefix, ARGV[i + 2])
  local job = prefix .. 'job:' .. job_id
  local f = redis.call('HMGET', job, 's', 'e', 'f')
  local marker = consumer .. ' ' .. entry_id
  if f[1] == 'r' and f[2] and f[2] ~= marker and hand_to_runner(group, stream, entry_id, f[2]) then
    -- handed to the consumer running it (again on a replay: XCLAIM is idempotent)
  elseif redis.call('XACK', stream, group, entry_id) == 1 then
    redis.call('XDEL', stream, entry_id)
    if f[1] == 'r' and f[2] == marker then
      redis.call('HINCRBY', job, 't', -1)
      redis.call('HSET', job, 's', 'q')
      redis.call('HDEL', job, 'e')
      free_slot(prefix, job_id, f[3])
    end
    redis.call('XADD', stream, '*', 'id', job_id)
    count = count + 1
  end
end
return count
"""
)

# The failed registry (sorted set job_id -> expiry ms of its failed:<id> record) loses members whose record
# expired, at most ``limit`` per call, oldest expiry first, so it stays as large as the live records (plus what
# expired since the last failure) without a reader having to trim it. A member scored by its failure time (the
# registry's form before it was scored by expiry) whose record still lives is re-scored by that record's expiry.
_TRIM_FAILED = """
local function trim_failed(registry, prefix, now, limit)
  for _, job_id in ipairs(redis.call('ZRANGEBYSCORE', registry, '-inf', now, 'LIMIT', 0, limit)) do
    local left = redis.call('PTTL', prefix .. 'failed:' .. job_id)
    if left > 0 then
      redis.call('ZADD', registry, now + left, job_id)
    else
      redis.call('ZREM', registry, job_id)
    end
  end
end
"""

COMPLETE = (
    _NOTIFY_WAITERS
    + _STORE_RESULT
    + _LANES
    + _PLACE
    + _SLOTS
    + _RELEASE_DEPENDENTS
    + _TRIM_FAILED
    + """
-- KEYS: stream, aborts, deferred, failed
-- ARGV: prefix, group, now_ms, then ONE msgpack array of 9-tuples (entry_id, job_id, result_payload,
--       result_ttl_ms, failure_ttl_ms, callback_id, callback_payload, priority of the entry's lane,
--       callback_function): one argument rather than 9 per job, which redis-py would encode one by one.
-- result_ttl_ms: > 0 keep that long, 0 keep nothing, < 0 keep forever. failure_ttl_ms: 0 for a success, < 0
-- for a failure not kept in the registry (aborted, or failure_ttl=0), > 0 marks a failure for
-- good: the result also goes to the failed registry for that long (record failed:<id> with that TTL, indexed
-- in KEYS[4] by its expiry time; each call with failures also drops up to max(100, 2 per failure) members whose
-- record expired, so the index stays bounded). A callback (on_success / on_failure) is
-- enqueued in the same step, so it is never lost between the two.
-- ARGV[5]: the consumer (worker) that ran these jobs.
-- Records each result and only then acks and deletes the job: one round trip for a whole batch. An entry
-- already acked (a replayed call, or a job another worker took over and finished) is skipped. An entry that
-- vanished (its stream deleted or trimmed, or the group destroyed) while the job ran is not: its result is
-- recorded when the job hash still names this consumer and entry as its run (marked by START); a replay finds
-- the hash deleted, a takeover finds another consumer's mark, so each is still skipped. Entries are
-- deleted with one XDEL per lane at the end: deleting a stream's first entries one call at a time rescans
-- the tombstones before them each time (9 us per entry against 3.5 in batches of 100, measured).
local prefix, group, now, consumer = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[5] or ''
local function runs_here(job_id, entry_id)
  return consumer ~= '' and redis.call('HGET', prefix .. 'job:' .. job_id, 'e') == consumer .. ' ' .. entry_id
end
local to_delete = {}
local failures = 0
for _, c in ipairs(cmsgpack.unpack(ARGV[4])) do
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
      redis.call('ZADD', KEYS[4], now + failure_ttl, job_id)
      failures = failures + 1
    end
    release_dependents(prefix, KEYS[3], job_id, failure_ttl == 0, now)  -- dependents run only after a success
    if callback_id ~= '' and redis.call('EXISTS', prefix .. 'job:' .. callback_id) == 0 then
      local callback = prefix .. 'job:' .. callback_id
      redis.call('HSET', callback, 'd', callback_payload, 't', 0, 's', 'q', 'sc', now, 'f', callback_fn)
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
if failures > 0 then trim_failed(KEYS[4], prefix, now, math.max(100, 2 * failures)) end
return 1
"""
)

REQUEUE = (
    _LANES
    + _SLOTS
    + _REDIS_TIME
    + """
-- KEYS: stream, deferred
-- ARGV: prefix, group, entry_id, job_id, run_at_ms, now_ms, priority of the entry's lane
-- Puts a running job back: deferred until run_at (Retry with a delay) or straight onto its lane (a
-- cancelled job handed back at shutdown), written in the same step that acks the old entry. The delay
-- (run_at - now, both on the worker's clock) is counted from Redis's clock, which PROMOTE judges by.
-- Returns 1; 0 touching nothing when the job hash is gone (deleted by hand: the entry stays pending, is
-- reclaimed, and START records the job as expired) or the entry was already acked (a replayed call).
local prefix, group, entry_id, job_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job = prefix .. 'job:' .. job_id
local stream = lane_key(prefix, ARGV[7])
if redis.call('EXISTS', job) == 0 then return 0 end
if redis.call('XACK', stream, group, entry_id) == 0 then return 0 end
redis.call('XDEL', stream, entry_id)
local delay = tonumber(ARGV[5]) - tonumber(ARGV[6])
if delay > 0 then
  local run_at = redis_now_ms() + delay
  redis.call('HSET', job, 's', 'd', 'sc', run_at)
  redis.call('ZADD', KEYS[2], run_at, job_id)
else
  redis.call('HSET', job, 's', 'q')
  redis.call('XADD', lane_of(prefix, job), '*', 'id', job_id)
end
free_slot(prefix, job_id, redis.call('HGET', job, 'f'))
return 1
"""
)

PROMOTE = (
    _LANES
    + _REDIS_TIME
    + """
-- KEYS: stream, deferred
-- ARGV: prefix, now_ms ('' for Redis's own clock, TIME: the one all hosts share), limit
-- Moves due deferred jobs onto the stream. Idempotent, so every worker may run it at any time.
-- Returns {moved, ms until the next deferred job is due (<= 0: due already) or false}: a delay, not a time,
-- so the caller's clock never meets Redis's.
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
if not now then now = redis_now_ms() end
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, job_id in ipairs(due) do
  redis.call('ZREM', KEYS[2], job_id)
  local state = redis.call('HGET', prefix .. 'job:' .. job_id, 's')
  -- only a job still deferred; a missing hash is pushed too, so START records the expiry (no job vanishes
  -- without a result). A stale member of a job now queued or running is just dropped.
  if state == 'd' or not state then
    local job = prefix .. 'job:' .. job_id
    if state then redis.call('HSET', job, 's', 'q') end
    redis.call('XADD', lane_of(prefix, job), '*', 'id', job_id)
  end
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if not nxt[2] then return {#due, false} end
return {#due, tonumber(nxt[2]) - now}
"""
)

RESTORE_QUEUED = (
    _LANES
    + """
-- KEYS: stream
-- ARGV: prefix, priority of the lane, last_id (the lane's last entry when the caller listed it, '0-0' if it
--       was empty), then ids of jobs that were queued before that listing and had no entry in it
-- Puts each such job back on the lane if it is still queued (state q) and no entry for it was appended since
-- the listing: its entry was lost with the stream (DEL, a flush) while it waited. Every step that queues a job
-- appends its entry in the same script, and entries are only appended, so an entry the listing missed has an
-- id above last_id. Idempotent (a replay finds the entries it added). Returns the number put back.
local prefix = ARGV[1]
local stream = lane_key(prefix, ARGV[2])
local listed = {}
for _, entry in ipairs(redis.call('XRANGE', stream, '(' .. ARGV[3], '+')) do listed[entry[2][2]] = true end
local count = 0
for i = 4, #ARGV do
  local job_id = ARGV[i]
  local job = prefix .. 'job:' .. job_id
  if not listed[job_id] and redis.call('HGET', job, 's') == 'q' and lane_of(prefix, job) == stream then
    redis.call('XADD', stream, '*', 'id', job_id)
    listed[job_id] = true
    count = count + 1
  end
end
return count
"""
)

HAND_BACK_CONSUMER = (
    _LANES
    + _SLOTS
    + """
-- KEYS: stream
-- ARGV: prefix, group, consumer, then every priority
-- Puts every job a (dead or retiring) consumer holds back onto its lane at once, then removes the consumer.
-- Used when a worker's identity is known to be gone, so its jobs need not wait for the idle-time reclaim.
-- Returns the number of jobs handed back.
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local count = 0
for p = 4, #ARGV do
  local stream = lane_key(prefix, ARGV[p])
  local has_group = true
  while true do
    local pending = redis.pcall('XPENDING', stream, group, '-', '+', 1000, consumer)
    if pending.err then has_group = false end  -- no such lane, or no group on it: nothing held there
    if not has_group or #pending == 0 then break end
    for _, item in ipairs(pending) do
      local entry_id = item[1]
      local entry = redis.call('XRANGE', stream, entry_id, entry_id)
      if entry[1] then
        local job_id = entry[1][2][2]
        local job = prefix .. 'job:' .. job_id
        if redis.call('EXISTS', job) == 1 then
          redis.call('HSET', job, 's', 'q')
          redis.call('XADD', stream, '*', 'id', job_id)
          free_slot(prefix, job_id, redis.call('HGET', job, 'f'))
          count = count + 1
        end
      end
      redis.call('XACK', stream, group, entry_id)
      redis.call('XDEL', stream, entry_id)
    end
  end
  if has_group then redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer) end
end
return count
"""
)

PRUNE_CONSUMER = (
    _LANES
    + """
-- KEYS: stream
-- ARGV: prefix, group, consumer, then every priority
-- Deletes the consumer (from every lane) only if it still holds nothing, checked in the same step (a read in
-- between would otherwise lose its new entries with the consumer). Returns 1, or -1 when it holds something.
local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local lanes = {}
for p = 4, #ARGV do
  local stream = lane_key(prefix, ARGV[p])
  local pending = redis.pcall('XPENDING', stream, group, '-', '+', 1, consumer)
  if not pending.err then
    if #pending > 0 then return -1 end
    lanes[#lanes + 1] = stream
  end
end
for _, stream in ipairs(lanes) do redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer) end
return 1
"""
)

ABORT = (
    _NOTIFY_WAITERS
    + _STORE_RESULT
    + _LANES
    + _PLACE
    + _SLOTS
    + _RELEASE_DEPENDENTS
    + """
-- KEYS: deferred, aborts
-- ARGV: prefix, job_id, now_ms, aborted_result_payload, result_ttl_ms
-- A job not yet started is finished here with the aborted result (its stale stream entry, if any, is dropped
-- by START; one waiting for dependencies leaves the 'waiting' set); jobs waiting on it are released as after
-- a failure, and a concurrency slot reserved for it is passed on. A running job is flagged for its worker to
-- cancel. Returns 0 not found, 1 flagged, 2 aborted.
local prefix, job_id = ARGV[1], ARGV[2]
local job = prefix .. 'job:' .. job_id
local state = redis.call('HGET', job, 's')
if not state then return 0 end
if state == 'r' then
  redis.call('ZADD', KEYS[2], ARGV[3], job_id)
  return 1
end
redis.call('ZREM', KEYS[1], job_id)
redis.call('SREM', prefix .. 'waiting', job_id)
local fn = redis.call('HGET', job, 'f')
redis.call('DEL', job)
store_result(prefix, job_id, ARGV[4], ARGV[5])
free_slot(prefix, job_id, fn)
release_dependents(prefix, KEYS[1], job_id, false, tonumber(ARGV[3]))
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


WRITE_HEALTH = (
    _REDIS_TIME
    + """
-- KEYS: health key, index (sorted set member -> expiry ms)
-- ARGV: member, value, ttl_ms
-- Writes a worker's or supervisor's health entry with its TTL and indexes it by its expiry on Redis's clock,
-- dropping members expired by that clock: a writer whose clock is off is neither hidden nor kept alive.
-- Idempotent. Returns 1.
local now, ttl = redis_now_ms(), tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return 1
"""
)


WAIT = """
-- KEYS: none (every key is built from the prefix, as in the other scripts)
-- ARGV: prefix, job_id, registration ttl_ms (0: check only, the caller will not wait)
-- Job.result()'s one round trip before it blocks: the result if there is one ({1, payload}); nothing if there
-- is neither a result nor a job ({0}); else {2, state, since}, where since is the id of the last notification
-- already in done:<id> ('0-0': none). The caller then reads done:<id> after since (XREAD BLOCK), so it sees
-- the first completion after this call, never an earlier run's, and reads the payload with no further call.
-- With ttl_ms > 0, marks that someone waits (wait:<id>, lasting at least ttl_ms: a shorter wait never cuts a
-- longer one's), so the script that records the result notifies (see notify). The mark is one key however
-- many callers wait or poll, and ends with its last caller's wait, not with the job. Atomic, so a result
-- recorded between the check and the registration cannot be missed. Safe to run twice: the mark is set, not
-- counted, and since is read again.
local prefix, job_id = ARGV[1], ARGV[2]
local result = redis.call('GET', prefix .. 'result:' .. job_id)
if result then return {1, result} end
local state = redis.call('HGET', prefix .. 'job:' .. job_id, 's')
if not state then return {0} end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  local flag = prefix .. 'wait:' .. job_id
  if redis.call('PTTL', flag) < ttl then redis.call('SET', flag, '1', 'PX', ttl) end
end
local last = redis.call('XREVRANGE', prefix .. 'done:' .. job_id, '+', '-', 'COUNT', 1)[1]
return {2, state, last and last[1] or '0-0'}
"""


class Scripts:
    """The scripts registered on one client; ``redis.register_script`` handles EVALSHA and NOSCRIPT."""

    def __init__(self, redis: Redis) -> None:
        self.enqueue: AsyncScript = redis.register_script(ENQUEUE)
        self.start: AsyncScript = redis.register_script(START)
        self.fetch: AsyncScript = redis.register_script(FETCH)
        self.unread: AsyncScript = redis.register_script(UNREAD)
        self.sweep_parked: AsyncScript = redis.register_script(SWEEP_PARKED)
        self.complete: AsyncScript = redis.register_script(COMPLETE)
        self.requeue: AsyncScript = redis.register_script(REQUEUE)
        self.promote: AsyncScript = redis.register_script(PROMOTE)
        self.hand_back_consumer: AsyncScript = redis.register_script(HAND_BACK_CONSUMER)
        self.abort: AsyncScript = redis.register_script(ABORT)
        self.prune_consumer: AsyncScript = redis.register_script(PRUNE_CONSUMER)
        self.restore_queued: AsyncScript = redis.register_script(RESTORE_QUEUED)
        self.lock_extend: AsyncScript = redis.register_script(LOCK_EXTEND)
        self.lock_release: AsyncScript = redis.register_script(LOCK_RELEASE)
        self.wait: AsyncScript = redis.register_script(WAIT)
        self.write_health: AsyncScript = redis.register_script(WRITE_HEALTH)
