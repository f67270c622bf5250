-- Redis's clock in ms. Scripts may call TIME and then write: Redis 7 replicates scripts' effects (the default
-- since 5), not the script. Due times and health expiry use it, because hosts' clocks disagree.
local function redis_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
