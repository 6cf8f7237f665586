-- ARGV[6] token, ARGV[7] lease ttl (s), ARGV[8] max attempts, ARGV[9] '1' when the model is
-- already loaded (go straight to started), ARGV[10] record ttl while running (s).
-- Returns {outcome} or {'claimed', field, value, ...}.
local fields = read_record(true)
if not fields then return {'missing'} end
if TERMINAL[fields['status']] then return {'terminal'} end
local claim = fields['claim']
if claim == ARGV[6] then return listed('claimed', fields) end  -- a retried call of this very claim
local now = clock()
if claim and claim ~= '' then
  local lease = tonumber(redis.call('ZSCORE', leases, id) or '0')
  if lease > now then return {'busy'} end
end
if fields['cancel_requested'] == '1' then
  finish(now, 'cancelled', fields)
  return {'cancelled'}
end
local deadline = tonumber(redis.call('ZSCORE', pending, id) or '0')
if (not claim or claim == '') and deadline > 0 and deadline < now then
  finish(now, 'abandoned', fields, nil,
    internal_error('The prediction was not started before its queue deadline.'))
  return {'abandoned'}
end
local attempts = tonumber(fields['attempts'] or '0') + 1
if attempts > tonumber(ARGV[8]) then
  finish(now, 'abandoned', fields, nil, internal_error(
    'The worker running this prediction was lost ' .. (attempts - 1) .. ' times; giving up.'),
    nil, {'attempts', tostring(attempts)})
  return {'abandoned'}
end
local next_status = 'starting'
if ARGV[9] == '1' then next_status = 'started' end
local changes = {'status', next_status, 'claim', ARGV[6], 'updated_at', fmt(now), 'started_at', fmt(now),
  'attempts', tostring(attempts)}
if attempts > 1 and fields['stream'] == '1' then
  -- It runs again after a lost attempt: its event log says so with a restart marker (sent as a
  -- fresh init), and readers start from the latest one; the lost attempt can append no more.
  local marker = redis.call('XADD', events, '*', 'event', 'restart', 'data', '')
  changes[#changes + 1] = 'stream_start'
  changes[#changes + 1] = marker
  redis.call('PUBLISH', updates_channel, id .. ' event')  -- common.store.events.EVENT_NOTE
end
update(fields, changes)
redis.call('ZREM', pending, id)
redis.call('ZADD', leases, now + tonumber(ARGV[7]), id)
notify_webhook(now, fields)
expire_all(tonumber(ARGV[10]), fields)
redis.call('PUBLISH', progress_channel, id .. ' ' .. next_status)
return listed('claimed', fields)
