-- KEYS[1] the outbox's attempts hash, KEYS[2] the outbox's lock; ARGV[1] the caller's lock token,
-- ARGV[2] now (unix seconds), ARGV[3] how long the count is kept (s). Counts a failed attempt at
-- the first snapshot, for the lock's holder only. Returns {count, first failure time as a
-- string}, or false for a caller that no longer holds the lock.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return false
end
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
redis.call('HSETNX', KEYS[1], 'first', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {count, redis.call('HGET', KEYS[1], 'first')}
