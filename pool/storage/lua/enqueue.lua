-- KEYS: the four lanes (priority 0 to 3), deferred, waiting, then for each job in ARGV's order: job:<id>,
--       result:<id>, nonce:<id>, its cron fence when it has one, and for each of its dependencies <d>: job:<d>,
--       failed:<d>, dependents:<d> (every key it touches: the names it builds from the prefix are these). The
--       jobs' keys are declared where Redis checks them, on Redis Cluster (RedisQueue.declares_job_keys).
-- ARGV: prefix, then the jobs as ONE msgpack array of records [job_id, payload, score_ms, now_ms, expires_ms,
--       attempts_before, nonce, fence_key or '', tick_ms, function name, priority, [dependency ids],
--       '1' when the due time is a delay from now (_defer_by) or '' when it is an instant (_defer_until)]
--       (strings only, no bin type: Redis's cmsgpack reads raw strings, binary-safe; one argument rather than
--       twelve per job: packing arguments is most of redis-py's cost of a call)
-- Creates each job unless one with its id is queued, deferred, waiting, running or has a kept result (arq's
-- uniqueness), and, for cron ticks, unless the fence already holds this tick or a later one. A replay of the
-- same call (a retried command whose reply was lost) is recognised by its nonce and answers 1 again, creating
-- nothing: each job enqueued leaves nonce:<job_id> = its nonce for a minute (apart from the job hash, which may
-- be gone by the time the replay comes), and its hash keeps the nonce in field n while it lives.
-- A job deferred by a delay is due that delay (score_ms - now_ms, by the client's clock) after Redis's clock
-- (TIME, read once per call and only when such a job is in it), so a client whose clock is off defers by the
-- delay it asked for; an instant (_defer_until) is kept as given, and jobs due now cost nothing more.
-- Dependencies: each one still queued/running makes the job wait (state w); one in the failed registry
-- releases it at once marked with that failure. Waiting jobs have no TTL (they wait as long as their
-- dependencies take) and are listed in the set 'waiting'. Returns 1 (enqueued) or 0 (refused) per job, in order.
--@include lib/enqueue_one.lua
--@include lib/redis_time.lua

local out = {}
local redis_now
for _, j in ipairs(cmsgpack.unpack(ARGV[2])) do
  local score, now = j[3], j[4]
  if j[13] == '1' and tonumber(score) > tonumber(now) then
    redis_now = redis_now or redis_now_ms()
    score, now = tonumber(score) - tonumber(now) + redis_now, redis_now
  end
  out[#out + 1] = enqueue_one(KEYS[5], KEYS[6], ARGV[1], j[1], j[2], score, now, j[5], j[6], j[7], j[8], j[9], j[10],
                              j[11], j[12])
end
return out
