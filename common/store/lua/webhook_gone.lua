-- KEYS[1] the outbox, KEYS[2] its attempts hash, KEYS[3] the webhooks-due zset; ARGV[1] the
-- prediction id. A prediction whose outbox is empty or gone (it expired with the record) has
-- nothing left to deliver: it stops being due, decided atomically with status changes adding
-- snapshots. Returns 1 if it was dropped.
if redis.call('LLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[2])
return redis.call('ZREM', KEYS[3], ARGV[1])
