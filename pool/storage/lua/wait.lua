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
