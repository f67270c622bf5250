--@include lib/notify.lua

-- Record a result (or not, when ttl is 0) and wake waiters.
local function store_result(prefix, job_id, payload, ttl)
  ttl = tonumber(ttl)
  if ttl > 0 then
    redis.call('SET', prefix .. 'result:' .. job_id, payload, 'PX', ttl)
  elseif ttl < 0 then
    redis.call('SET', prefix .. 'result:' .. job_id, payload)
  end
  notify(prefix, job_id, payload)
end
