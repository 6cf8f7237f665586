-- Sets the task message ARGV[7] of queue ARGV[6] aside (schedule.lua), unless a waiting
-- prediction of the queue may run now under the limit ARGV[8] (then the claim is tried again).
-- Returns 1 when it parked the message.
local queue = ARGV[6]
if runnable(queue, tonumber(ARGV[8])) then return 0 end
redis.call('RPUSH', parked_key(queue), ARGV[7])
redis.call('SADD', parked_queues, queue)
return 1
