-- ARGV[6] owner. Returns 'missing', 'terminal', 'cancelled' (done at once) or 'requested'.
local fields = read_record()
if not fields or fields['owner'] ~= ARGV[6] then return 'missing' end
if TERMINAL[fields['status']] then return 'terminal' end
if (fields['claim'] or '') == '' then
  -- Nobody runs it: cancel now, whether or not a worker is listening; a queued
  -- copy of its message will find it terminal and do nothing.
  finish(clock(), 'cancelled', fields, nil, nil, nil, {'cancel_requested', '1'})
  return 'cancelled'
end
redis.call('HSET', record, 'cancel_requested', '1')
redis.call('PUBLISH', cancel_channel, id)
return 'requested'
