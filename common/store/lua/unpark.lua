-- Puts up to ARGV[7] parked task messages of queue ARGV[6] back on it while a waiting prediction
-- may run under the limit ARGV[8] (recovery's backstop: a run's end puts one back itself).
-- Returns how many it put back.
local queue, moved = ARGV[6], 0
while moved < tonumber(ARGV[7]) and runnable(queue, tonumber(ARGV[8])) do
  local message = redis.call('LPOP', parked_key(queue))
  if not message then break end
  redis.call('RPUSH', queue_list(queue), message)
  moved = moved + 1
end
if redis.call('EXISTS', parked_key(queue)) == 0 then redis.call('SREM', parked_queues, queue) end
return moved
