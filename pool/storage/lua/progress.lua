-- KEYS: job:<id> (every key it touches)
-- ARGV: the run's mark (consumer .. ' ' .. entry id, as START records it in the hash's field e), the encoded
--       progress record (pool/storage/codecs.py encode_progress)
-- Records a running job's progress and metadata in its hash's field pg: one HSET, the last value written wins.
-- Only while the hash says this run holds the job: a finished job (its hash deleted) is not created again with
-- nothing but pg in it, and a job taken over by another worker (a new mark) keeps the new run's progress. The
-- hash's expiry is left as it is. Safe to replay: the same value is written again.
-- Returns 1 when written, 0 when the job is not this run's any more.
if redis.call('HGET', KEYS[1], 'e') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'pg', ARGV[2])
  return 1
end
return 0
