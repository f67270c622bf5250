-- KEYS: result:<id>, job:<id>, wait:<id>, done:<id> (every key it touches, so a cluster routes the call by them
--       and refuses it whole, rather than half way, while the queue's slot moves)
-- ARGV: registration ttl_ms (0: check only, the caller will not wait)
-- Job.result()'s one round trip before it blocks: the result if there is one ({1, payload}); nothing if there
-- is neither a result nor a job ({0}); else {2, state, since}, where since is the id of the last notification
-- already in done:<id> ('0-0': none). The caller then reads done:<id> after since (XREAD BLOCK), so it sees
-- the first completion after this call, never an earlier run's, and reads the payload with no further call.
-- With ttl_ms > 0, marks that someone waits (wait:<id>, lasting at least ttl_ms: a shorter wait never cuts a
-- longer one's), so the script that records the result notifies (see notify). The mark is one key however
-- many callers wait or poll, and ends with its last caller's wait, not with the job. Atomic, so a result
-- recorded between the check and the registration cannot be missed. Safe to run twice: the mark is set, not
-- counted, and since is read again.
local result_key, job_key, flag, done = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local result = redis.call('GET', result_key)
if result then return {1, result} end
local state = redis.call('HGET', job_key, 's')
if not state then return {0} end
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  if redis.call('PTTL', flag) < ttl then redis.call('SET', flag, '1', 'PX', ttl) end
end
local last = redis.call('XREVRANGE', done, '+', '-', 'COUNT', 1)[1]
return {2, state, last and last[1] or '0-0'}
