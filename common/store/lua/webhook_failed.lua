-- KEYS[1] the outbox's attempts hash, KEYS[2] the outbox's lock, KEYS[3] the outbox, KEYS[4] the
-- webhooks-due zset, KEYS[5] the prediction's record, KEYS[6] its delivery log; ARGV[1] the
-- caller's lock token, ARGV[2] now (unix seconds), ARGV[3] how long the count is kept (s),
-- ARGV[4] the prediction id, ARGV[5] the snapshot posted, as stored, ARGV[6] the retry window
-- (s), ARGV[7..12] the attempt (webhook_log.lua). Counts a failed attempt at the first snapshot,
-- for the lock's holder only; once the first failure is the retry window old, gives the snapshot
-- up (drops it as webhook_delivered.lua does), so the log says how it ended. Returns {count,
-- given up (0/1)}, or false for a caller that no longer holds the lock.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return false
end
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HSETNX', KEYS[1], 'first', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
local first = tonumber(redis.call('HGET', KEYS[1], 'first'))
if tonumber(ARGV[2]) - first < tonumber(ARGV[6]) then
  log_attempt(KEYS[5], KEYS[6], 7, count, 'retrying')
  return {count, 0}
end
log_attempt(KEYS[5], KEYS[6], 7, count, 'given_up')
if redis.call('LINDEX', KEYS[3], 0) == ARGV[5] then
  redis.call('LPOP', KEYS[3])
  redis.call('DEL', KEYS[1])
end
if redis.call('LLEN', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[4], ARGV[4])
end
return {count, 1}
