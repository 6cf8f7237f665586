-- The only way a prediction reaches a terminal status; callers check it is not terminal yet and
-- pass its fields (read_record). ``extra`` lists more field/value pairs to write with it.
-- A streamed prediction's event log gets its terminal event (done, or error for failed and
-- abandoned) in the same step, so a stream of a finished prediction always ends with one.
local function finish(now, status, fields, output, err, metrics, extra)
  if (fields['claim'] or '') ~= '' then run_ended(fields) else dequeue(fields) end
  local changes = {'status', status, 'updated_at', fmt(now), 'completed_at', fmt(now), 'claim', '',
    'output', output or 'null', 'error', err or '', 'metrics', metrics or 'null'}
  for _, value in ipairs(extra or {}) do changes[#changes + 1] = value end
  update(fields, changes)
  if fields['stream'] == '1' then
    local kind = 'done'
    if status == 'failed' or status == 'abandoned' then kind = 'error' end
    redis.call('XADD', events, '*', 'event', kind, 'data', '')
  end
  redis.call('ZREM', pending, id)
  redis.call('ZREM', leases, id)
  if redis.call('HINCRBY', unfinished, fields['owner'], -1) <= 0 then
    redis.call('HDEL', unfinished, fields['owner'])  -- (below 0 only for one created before the count)
  end
  record_stats(now, status, fields)
  local ended, logs_size = nil, nil
  if not partial[fields] then
    logs_size = redis.call('STRLEN', logs)
    if #(fields['input'] or '') + #fields['output'] + logs_size <= NEWS_RECORD_LIMIT then
      ended = snapshot(fields, logs_size)
    end
  end
  notify_webhook(now, fields, logs_size)
  expire_all(retention, fields)
  local news = id .. ' ' .. status
  if ended and #ended <= NEWS_RECORD_LIMIT then news = news .. ' ' .. ended end
  redis.call('PUBLISH', updates_channel, news)
end

local function internal_error(message)
  return cjson.encode({source = 'internal', message = message, detail = cjson.null})
end
