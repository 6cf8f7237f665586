-- ARGV[6] owner. Returns 'missing', 'terminal', 'cancelled' (done at once), 'requested', or
-- 'repeated' (its cancellation was requested before and it has ended: a retried request).
local fields = read_record()
if not fields or fields['owner'] ~= ARGV[6] then return 'missing' end
if TERMINAL[fields['status']] then
  -- A recorded request makes repeats idempotent whatever the status now: a client retrying its
  -- cancel gets the answer its first request got (the request was accepted), never an error.
  if fields['cancel_requested'] == '1' or fields['status'] == 'cancelled' then return 'repeated' end
  return 'terminal'
end
if (fields['claim'] or '') == '' then
  -- Nobody runs it: cancel now, whether or not a worker is listening; a queued
  -- copy of its message will find it terminal and do nothing.
  finish(clock(), 'cancelled', fields, nil, nil, nil, {'cancel_requested', '1'})
  return 'cancelled'
end
redis.call('HSET', record, 'cancel_requested', '1')
redis.call('PUBLISH', cancel_channel, id)
return 'requested'
