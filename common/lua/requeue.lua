-- KEYS[STANDARD + 1] the Celery queue's list. ARGV[5] the task message. Queues a message again
-- for a prediction that is still waiting for a worker (unclaimed, not ended) but whose message
-- was lost. Returns 1 if it did. A second message for it would be harmless: a claim is a
-- compare-and-set.
local status = redis.call('HGET', record, 'status')
local claim = redis.call('HGET', record, 'claim')
if not status or TERMINAL[status] or (claim and claim ~= '') then return 0 end
if not redis.call('ZSCORE', pending, id) then return 0 end
redis.call('LPUSH', KEYS[STANDARD + 1], ARGV[5])
return 1
