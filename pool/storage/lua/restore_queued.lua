-- KEYS: the four lanes (priority 0 to 3), then job:<id> of each job in ARGV (every key it touches)
-- ARGV: prefix, priority of the lane, last_id (the lane's last entry when the caller listed it, '0-0' if it
--       was empty), then ids of jobs that were queued before that listing and had no entry in it
-- Puts each such job back on the lane if it is still queued (state q) and no entry for it was appended since
-- the listing: its entry was lost with the stream (DEL, a flush) while it waited. Every step that queues a job
-- appends its entry in the same script, and entries are only appended, so an entry the listing missed has an
-- id above last_id. Idempotent (a replay finds the entries it added). Returns the number put back.
--@include lib/lanes.lua

local prefix = ARGV[1]
local stream = lane_key(ARGV[2])
local listed = {}
for _, entry in ipairs(redis.call('XRANGE', stream, '(' .. ARGV[3], '+')) do listed[entry[2][2]] = true end
local count = 0
for i = 4, #ARGV do
  local job_id = ARGV[i]
  local job = prefix .. 'job:' .. job_id
  if not listed[job_id] and redis.call('HGET', job, 's') == 'q' and lane_of(job) == stream then
    redis.call('XADD', stream, '*', 'id', job_id)
    listed[job_id] = true
    count = count + 1
  end
end
return count
