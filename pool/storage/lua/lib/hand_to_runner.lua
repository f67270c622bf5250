-- An entry delivered again by a consumer group recreated from id 0 (after XGROUP DESTROY or the loss of the
-- group) whose job already runs from that very entry under another consumer (its 'e' mark): the entry goes to
-- that consumer, whose heartbeat keeps it and whose COMPLETE acks it; if that consumer is dead, the entry goes
-- idle and is reclaimed as usual. Returns true when it was handed over. Shared by START, FETCH and UNREAD.
local function hand_to_runner(group, stream, entry_id, marker)
  local owner, owned = string.match(marker, '^(.*) ([^ ]+)$')
  if owned ~= entry_id then return false end
  redis.call('XCLAIM', stream, group, owner, 0, entry_id, 'JUSTID')
  return true
end
