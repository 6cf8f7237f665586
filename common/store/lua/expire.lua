-- Abandons an unclaimed prediction whose queue deadline passed. Returns 1 if it did.
local deadline = redis.call('ZSCORE', pending, id)
if not deadline then return 0 end
local now = clock()
if tonumber(deadline) > now then return 0 end
local fields = read_record()
if not fields or TERMINAL[fields['status']] or (fields['claim'] or '') ~= '' then
  redis.call('ZREM', pending, id)
  return 0
end
finish(now, 'abandoned', fields, nil,
  internal_error('No worker started the prediction before its queue deadline.'))
return 1
