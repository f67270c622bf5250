-- KEYS: deferred, aborts, waiting, releasing, job:<id>, result:<id>, wait:<id>, done:<id>, dependents:<id>, then
--       running:<fn> and parked:<fn> when ARGV names a function (every key it touches)
-- ARGV: prefix, job_id, now_ms, aborted_result_payload, result_ttl_ms, the job's function as the caller read it
--       (its 'f' field; '' for none), so that the keys of its slots are declared
-- A job not yet started is finished here with the aborted result (its stale stream entry, if any, is dropped
-- by START; one waiting for dependencies leaves the 'waiting' set, a parked one its parked list); a concurrency
-- slot reserved for it is passed on (see lib/slots.lua), and the jobs waiting on it are to be released as after
-- a failure: its outcome is kept in 'releasing' and their ids returned, for RELEASE_DEPENDENTS (whose call
-- declares their keys). A running job is flagged for its worker to cancel. Safe to run twice: a replay finds the
-- aborted job gone (0), or flags the running one again (the same ZADD).
-- Returns {code, {function, id, ...} of parked jobs given a slot, {ids of the jobs waiting on it}}; code 0: not
-- found, 1: flagged, 2: aborted, -1: the job's function is not the one named (nothing written: read it again).
--@include lib/store_result.lua
--@include lib/slots.lua

local prefix, job_id = ARGV[1], ARGV[2]
local job = prefix .. 'job:' .. job_id
local f = redis.call('HMGET', job, 's', 'f')
local state, fn = f[1], f[2] or ''
if not state then return {0} end
if state == 'r' then
  redis.call('ZADD', KEYS[2], ARGV[3], job_id)
  return {1}
end
if fn ~= ARGV[6] then return {-1} end
redis.call('ZREM', KEYS[1], job_id)
redis.call('SREM', KEYS[3], job_id)
redis.call('DEL', job)
store_result(prefix, job_id, ARGV[4], ARGV[5])
local passed = {}
free_slot(prefix, job_id, fn, passed)
if state == 'p' and fn ~= '' then redis.call('LREM', prefix .. 'parked:' .. fn, 1, job_id) end  -- after free_slot
local dependents = redis.call('SMEMBERS', prefix .. 'dependents:' .. job_id)
if #dependents > 0 then redis.call('HSET', KEYS[4], job_id, '0') end
return {2, passed, dependents}
