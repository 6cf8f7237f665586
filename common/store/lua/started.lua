-- ARGV[6] token. Moves a claimed prediction from starting to started once its model is loaded.
local fields = read_record()
if not fields or fields['claim'] ~= ARGV[6] or fields['status'] ~= 'starting' then return 0 end
local now = clock()
update(fields, {'status', 'started', 'updated_at', fmt(now)})
notify_webhook(now, fields)
redis.call('PUBLISH', progress_channel, id .. ' started')
return 1
