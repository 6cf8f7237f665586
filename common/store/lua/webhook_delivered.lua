-- KEYS[1] the outbox, KEYS[2] its attempts hash, KEYS[3] the webhooks-due zset, KEYS[4] the
-- outbox's lock, KEYS[5] the prediction's record, KEYS[6] its delivery log; ARGV[1] the
-- prediction id, ARGV[2] the caller's lock token, ARGV[3] the snapshot it posted, as stored,
-- ARGV[4] how the attempt ended ('delivered', or 'given_up' for a refused address), ARGV[5..10]
-- the attempt (webhook_log.lua). Drops the outbox's first snapshot (delivered, or given up on),
-- only for the lock's holder and only if it is the one posted: a deliverer whose lock lapsed must
-- not drop a later snapshot (the terminal one, say) that it never posted. Returns -1 for a caller
-- that no longer holds the lock, else how many snapshots remain. The prediction stays due only
-- while snapshots remain, decided atomically with status changes adding more.
if redis.call('GET', KEYS[4]) ~= ARGV[2] then
  return -1
end
local failures = tonumber(redis.call('HGET', KEYS[2], 'count') or '0')
log_attempt(KEYS[5], KEYS[6], 5, failures + 1, ARGV[4])
if redis.call('LINDEX', KEYS[1], 0) == ARGV[3] then
  redis.call('LPOP', KEYS[1])
  redis.call('DEL', KEYS[2])
end
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return redis.call('LLEN', KEYS[1])
