-- KEYS[STANDARD + 1] the Celery queue's list. ARGV[6] queue deadline (s), ARGV[7] record ttl while
-- queued again (s), ARGV[8] the task message to queue. Releases a claim whose lease lapsed
-- (its worker died) and puts the prediction back in line (at its place: by creation time) with a
-- task message, in one step. Returns 1 if it did.
local lease = redis.call('ZSCORE', leases, id)
if not lease then return 0 end
local now = clock()
if tonumber(lease) > now then return 0 end
local fields = read_record()
if not fields or TERMINAL[fields['status']] then
  redis.call('ZREM', leases, id)
  return 0
end
if fields['cancel_requested'] == '1' then
  finish(now, 'cancelled', fields)
  return 0
end
run_ended(fields)
update(fields, {'claim', ''})
enqueue(fields)
redis.call('ZREM', leases, id)
redis.call('ZADD', pending, now + tonumber(ARGV[6]), id)
expire_all(tonumber(ARGV[7]), fields)
redis.call('LPUSH', KEYS[STANDARD + 1], ARGV[8])
return 1
