-- KEYS[6] owner index, KEYS[7] the Celery queue's list. ARGV[5] queue deadline (s),
-- ARGV[6] record ttl (s), ARGV[7] the task message, ARGV[8..] field/value pairs of the record.
-- Stores the prediction and queues its task in one step, so a stored prediction is always
-- queued. Returns the creation time; repeating the call (a retried request) changes nothing.
if redis.call('EXISTS', record) == 1 then return redis.call('HGET', record, 'created_at') end
local now = clock()
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', record, unpack(fields))
redis.call('HSET', record, 'created_at', fmt(now), 'updated_at', fmt(now), 'claim', '')
redis.call('EXPIRE', record, tonumber(ARGV[6]))
redis.call('ZADD', KEYS[6], 0, id)
redis.call('ZADD', pending, now + tonumber(ARGV[5]), id)
redis.call('LPUSH', KEYS[7], ARGV[7])
return fmt(now)
