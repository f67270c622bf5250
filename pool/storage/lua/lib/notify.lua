-- Wake the callers blocked in Job.result(), if any (WAIT sets wait:<id> while one waits): one entry carrying the
-- result payload, added to the stream done:<id>, which every waiter reads without consuming it (XREAD after the
-- id WAIT gave it). One copy whatever the number of waiters or of calls (MAXLEN 1), kept 60 s for a waiter
-- whose read arrives just after; an entry of an earlier run of the same id (keep_result=0) is older than what
-- the waiters of a later run read. Costs one EXISTS when nobody waits. Run twice, it leaves the same one entry.
local function notify(prefix, job_id, payload)
  local flag = prefix .. 'wait:' .. job_id
  if redis.call('EXISTS', flag) == 1 then
    local key = prefix .. 'done:' .. job_id
    redis.call('XADD', key, 'MAXLEN', '1', '*', 'r', payload)
    redis.call('PEXPIRE', key, 60000)
    redis.call('DEL', flag)
  end
end
