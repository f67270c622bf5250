-- KEYS: the four lanes (priority 0 to 3), parked-functions, then running:<fn> and parked:<fn> of each function
--       in ARGV's limits, then job:<id> and result:<id> of each job in ARGV's triples (every key it touches; the
--       jobs' keys are declared where Redis checks them, on Redis Cluster: RedisQueue.declares_job_keys)
-- ARGV: prefix, group, consumer, limit count, (function, max_concurrency) pairs, then triples of
--       (entry_id, job_id, priority) just delivered to this consumer
-- Marks each job running, counts the attempt, remembers consumer + entry (a replayed call does not count the
-- attempt again; a reclaim by another consumer does) and lifts the hash's TTL (_expires bounds the wait to
-- start, not the run). A job of a function at its max_concurrency is parked instead (entry acked here).
-- An entry no longer pending for this consumer is skipped (false): a replay after the entry was parked.
-- Returns per triple {payload, attempts, score, failed_dependency or '', function name} (the name lets the
-- worker check max_tries before decoding the payload); 'parked'; 'expired' when the hash is gone and no result
-- exists (the worker records that, acking the entry); false when a result exists (aborted before it started):
-- the entry is acked and deleted here. Also false for an entry delivered once whose job runs from it under
-- another consumer (a recreated group delivered it again): it is handed to that consumer rather than run twice.
--@include lib/lanes.lua
--@include lib/start_one.lua

local prefix, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local limits, first = read_limits(4)
local out = {}
for i = first, #ARGV, 3 do
  local stream = lane_key(ARGV[i + 2])
  -- an entry no longer pending for us was dealt with already (a replay of a call that parked or finished it)
  local pending = redis.call('XPENDING', stream, group, ARGV[i], ARGV[i], 1, consumer)
  if #pending == 0 then
    out[#out + 1] = false
  else
    local fresh = tonumber(pending[1][4]) == 1
    out[#out + 1] = start_one(prefix, group, consumer, stream, ARGV[i], ARGV[i + 1], limits, fresh)
  end
end
return out
