-- KEYS[STANDARD + 1] the Celery queue's list. ARGV[6] the task message. ARGV[7] the most copies
-- one prediction may get. Queues a message again for a prediction that is still waiting for a
-- worker (unclaimed, not ended) but whose message was lost. Returns 1 if it did. A second message
-- for it would be harmless (a claim is a compare-and-set), but a message reserved for long by a
-- busy worker looks lost too, so the copies are counted and capped.
local status = redis.call('HGET', record, 'status')
local claim = redis.call('HGET', record, 'claim')
if not status or TERMINAL[status] or (claim and claim ~= '') then return 0 end
if not redis.call('ZSCORE', pending, id) then return 0 end
if tonumber(redis.call('HGET', record, 'requeued') or '0') >= tonumber(ARGV[7]) then return 0 end
redis.call('HINCRBY', record, 'requeued', 1)
redis.call('LPUSH', KEYS[STANDARD + 1], ARGV[6])
return 1
