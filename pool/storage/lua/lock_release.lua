-- KEYS: lock (every key it touches)
-- ARGV: token
-- Deletes the lock only if we hold it (compare-and-delete), so a late release never frees another's lock.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
