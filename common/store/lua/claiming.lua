-- Claims prediction ``id`` (its ``fields``, not ended) for this worker, under a lease: a
-- compare-and-set on its claim token. Shared by claim.lua and next.lua, whose ARGV[6] is the
-- token, ARGV[7] the lease ttl (s), ARGV[8] the most attempts and ARGV[10] the record's ttl while
-- it runs (s). ``ready``: the model is loaded, so it goes straight to started. Returns the
-- script's reply: {outcome} or {'claimed', field, value, ...}.
local function take(fields, ready)
  local claim = fields['claim']
  if claim == ARGV[6] then return listed('claimed', fields) end  -- a retried call of this very claim
  local now = clock()
  local taken_over = claim and claim ~= ''
  if taken_over then
    local lease = tonumber(redis.call('ZSCORE', leases, id) or '0')
    if lease > now then return {'busy'} end
  end
  if fields['cancel_requested'] == '1' then
    finish(now, 'cancelled', fields)
    return {'cancelled'}
  end
  local deadline = tonumber(redis.call('ZSCORE', pending, id) or '0')
  if not taken_over and deadline > 0 and deadline < now then
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
  if not taken_over then
    dequeue(fields)
    count_running(fields, 1)
  end
  local next_status = 'starting'
  if ready then next_status = 'started' end
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
end
