-- ARGV[6] token, ARGV[7] lease ttl (s). Returns {held (0/1), cancel requested (0/1)}.
local status = redis.call('HGET', record, 'status')
if not status or TERMINAL[status] or redis.call('HGET', record, 'claim') ~= ARGV[6] then
  return {0, 0}
end
redis.call('ZADD', leases, clock() + tonumber(ARGV[7]), id)
local cancel = 0
if redis.call('HGET', record, 'cancel_requested') == '1' then cancel = 1 end
return {1, cancel}
