-- KEYS: health key, index (sorted set member -> expiry ms) (every key it touches)
-- ARGV: member, value, ttl_ms
-- Writes a worker's or supervisor's health entry with its TTL and indexes it by its expiry on Redis's clock,
-- dropping members expired by that clock: a writer whose clock is off is neither hidden nor kept alive.
-- Idempotent. Returns 1.
--@include lib/redis_time.lua

local now, ttl = redis_now_ms(), tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return 1
