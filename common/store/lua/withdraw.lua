-- Takes back a create that fewer replicas than INFERQ_REDIS_REPLICAS_ACK confirmed: the API
-- answers it 503, and its client sends it again as a new prediction, so this one must not run as
-- well. Unclaimed, it ends failed, unrun, saying why. Claimed meanwhile (a worker's claim waits
-- for the replicas too, so it most likely does not run), it is cancelled as a cancel would: at
-- once by a worker running it, else when the claim's lease lapses. Returns 'withdrawn',
-- 'cancelling', or 'kept' (it ended or is gone).
local fields = read_record()
if not fields or TERMINAL[fields['status']] then return 'kept' end
if (fields['claim'] or '') ~= '' then
  redis.call('HSET', record, 'cancel_requested', '1')
  redis.call('PUBLISH', cancel_channel, id)
  return 'cancelling'
end
finish(clock(), 'failed', fields, nil, internal_error(
  'Not accepted: fewer replicas than INFERQ_REDIS_REPLICAS_ACK confirmed the create, which was ' ..
  'answered 503.'))
return 'withdrawn'
