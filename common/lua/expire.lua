-- Abandons an unclaimed prediction whose queue deadline passed. Returns 1 if it did.
local deadline = redis.call('ZSCORE', pending, id)
if not deadline then return 0 end
local now = clock()
if tonumber(deadline) > now then return 0 end
local status = redis.call('HGET', record, 'status')
local claim = redis.call('HGET', record, 'claim')
if not status or TERMINAL[status] or (claim and claim ~= '') then
  redis.call('ZREM', pending, id)
  return 0
end
finish(now, 'abandoned', nil, internal_error('No worker started the prediction before its queue deadline.'))
return 1
