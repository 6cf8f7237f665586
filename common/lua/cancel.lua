-- ARGV[6] owner. Returns 'missing', 'terminal', 'cancelled' (done at once) or 'requested'.
local status = redis.call('HGET', record, 'status')
if not status or redis.call('HGET', record, 'owner') ~= ARGV[6] then return 'missing' end
if TERMINAL[status] then return 'terminal' end
redis.call('HSET', record, 'cancel_requested', '1')
local claim = redis.call('HGET', record, 'claim')
if not claim or claim == '' then
  -- Nobody runs it: cancel now, whether or not a worker is listening; a queued
  -- copy of its message will find it terminal and do nothing.
  finish(clock(), 'cancelled')
  return 'cancelled'
end
redis.call('PUBLISH', cancel_channel, id)
return 'requested'
