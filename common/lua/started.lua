-- ARGV[6] token. Moves a claimed prediction from starting to started once its model is loaded.
if redis.call('HGET', record, 'claim') ~= ARGV[6] then return 0 end
if redis.call('HGET', record, 'status') ~= 'starting' then return 0 end
local now = clock()
redis.call('HSET', record, 'status', 'started', 'updated_at', fmt(now))
notify_webhook(now)
redis.call('PUBLISH', progress_channel, id .. ' started')
return 1
