-- ARGV[6] token, ARGV[7] lease ttl (s), ARGV[8] max attempts, ARGV[9] '1' when the model is
-- already loaded (go straight to started), ARGV[10] record ttl while running (s).
-- Returns {outcome} or {'claimed', field, value, ...}.
local status = redis.call('HGET', record, 'status')
if not status then return {'missing'} end
if TERMINAL[status] then return {'terminal'} end
local now = clock()
local claim = redis.call('HGET', record, 'claim')
local function claimed()
  local result = redis.call('HGETALL', record)
  table.insert(result, 1, 'claimed')
  return result
end
if claim == ARGV[6] then return claimed() end  -- a retried call of this very claim
if claim and claim ~= '' then
  local lease = tonumber(redis.call('ZSCORE', leases, id) or '0')
  if lease > now then return {'busy'} end
end
if redis.call('HGET', record, 'cancel_requested') == '1' then
  finish(now, 'cancelled')
  return {'cancelled'}
end
local deadline = tonumber(redis.call('ZSCORE', pending, id) or '0')
if (not claim or claim == '') and deadline > 0 and deadline < now then
  finish(now, 'abandoned', nil, internal_error('The prediction was not started before its queue deadline.'))
  return {'abandoned'}
end
local attempts = redis.call('HINCRBY', record, 'attempts', 1)
if attempts > tonumber(ARGV[8]) then
  finish(now, 'abandoned', nil, internal_error(
    'The worker running this prediction was lost ' .. (attempts - 1) .. ' times; giving up.'))
  return {'abandoned'}
end
local next_status = 'starting'
if ARGV[9] == '1' then next_status = 'started' end
redis.call('HSET', record, 'status', next_status, 'claim', ARGV[6], 'updated_at', fmt(now),
  'started_at', fmt(now))
redis.call('ZREM', pending, id)
redis.call('ZADD', leases, now + tonumber(ARGV[7]), id)
notify_webhook(now)
expire_all(tonumber(ARGV[10]))
redis.call('PUBLISH', progress_channel, id .. ' ' .. next_status)
return claimed()
