-- KEYS: lock (every key it touches)
-- ARGV: token, ttl_ms
-- Extends the lock only while we still hold it (compare-and-extend). Returns 1 if extended, 0 if lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
