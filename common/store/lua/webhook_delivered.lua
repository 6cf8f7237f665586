-- KEYS[1] the outbox, KEYS[2] its attempts hash, KEYS[3] the webhooks-due zset; ARGV[1] the
-- prediction id. Drops the outbox's first snapshot (delivered, or given up on); the prediction
-- stays due only while snapshots remain, decided atomically with status changes adding more.
redis.call('LPOP', KEYS[1])
redis.call('DEL', KEYS[2])
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return redis.call('LLEN', KEYS[1])
