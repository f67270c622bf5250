-- KEYS: the four lanes (priority 0 to 3), fetched (this consumer's last FETCH that read something:
--       pool:{q}:fetched:<consumer>), parked-functions, then running:<fn> and parked:<fn> of each function in
--       ARGV's limits, then on Redis Cluster the slot guard (pool:{q}:slot-guard, a key nothing writes). Not
--       every key it touches: the jobs it starts are named by the entries it reads, so their hashes cannot be
--       declared. On a cluster that is safe thanks to the guard: every key FETCH touches is in its queue's slot
--       (built from the prefix); while that slot migrates, Redis refuses a call that declares a missing key
--       before running any of it (ASK or TRYAGAIN), so a FETCH that runs has its slot wholly on its node, and
--       no command of it can meet a key that moved (nothing else runs during a script, so nothing moves).
-- ARGV: prefix, group, consumer, count, fetch token (random, new for each fetch call, the same when redis-py
--       replays the call), limit count, (function, max_concurrency) pairs, then the priorities to read, in order
-- Reads up to count new entries without blocking, from each priority's lane in the order given until count
-- is reached, and STARTs each one (see START; every entry read here is a first delivery) in the same step:
-- one round trip for a busy worker.
-- Replay safety: a call that read something stores {token, lanes without the group, then per lane read its
-- priority, first and last entry id} in KEYS[5] for a minute (far beyond a retry window). A call whose token
-- is the stored one is a replay of a call whose reply was lost: it reads nothing new and answers the entries of
-- those ranges again, each START item recomputed (START recognises an entry this consumer started and counts
-- no attempt again), so the worker learns of the jobs the first run started. A range holds exactly what was
-- read (XREADGROUP '>' reads consecutive entries, and entries are only appended after the last one), less
-- entries deleted since (a job parked or already finished by the first run: the worker has nothing to run).
-- Costs one GET per call and one small SET per call that read: nothing per entry.
-- Returns {lanes without the group, then per entry {entry_id, job_id, priority, START's item}}.
--@include lib/lanes.lua
--@include lib/start_one.lua

local FETCHED_TTL_MS = 60000
local prefix, group, consumer, remaining, token = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local limits, first = read_limits(6)

local function start_all(out, stream, priority, entries)
  for _, entry in ipairs(entries) do
    local job_id = entry[2][2]
    local item = start_one(prefix, group, consumer, stream, entry[1], job_id, limits, true)
    out[#out + 1] = {entry[1], job_id, priority, item}
  end
end

-- the reply of the call this one replays, or nil when it is not a replay
local function replayed()
  local stored = redis.call('GET', KEYS[5])
  if not stored then return nil end
  local fetched = cmsgpack.unpack(stored)
  if fetched[1] ~= token then return nil end
  local out = {fetched[2]}
  for k = 3, #fetched, 3 do
    local stream = lane_key(fetched[k])
    start_all(out, stream, fetched[k], redis.call('XRANGE', stream, fetched[k + 1], fetched[k + 2]))
  end
  return out
end

local out = replayed()
if out then return out end
out = {0}
local fetched = {token, 0}
for i = first, #ARGV do
  if remaining <= 0 then break end
  local stream = lane_key(ARGV[i])
  local reply = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', remaining, 'STREAMS', stream, '>')
  if type(reply) == 'table' and reply.err then
    out[1] = out[1] + 1
  elseif reply and #reply[1][2] > 0 then
    local entries = reply[1][2]
    start_all(out, stream, ARGV[i], entries)
    remaining = remaining - #entries
    fetched[#fetched + 1] = ARGV[i]
    fetched[#fetched + 1] = entries[1][1]
    fetched[#fetched + 1] = entries[#entries][1]
  end
end
if #fetched > 2 then
  fetched[2] = out[1]
  redis.call('SET', KEYS[5], cmsgpack.pack(fetched), 'PX', FETCHED_TTL_MS)
end
return out
