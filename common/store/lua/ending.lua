-- The keys common.store.keys builds as batch and batch_results, and batches_open and
-- batch_line_counts.
local BATCH_PREFIX, BATCHES_OPEN, BATCH_LINES = '{{BATCH_PREFIX}}', '{{BATCHES_OPEN}}', '{{BATCH_LINES}}'

-- A part of a batch ended (``fields['batch_part']``: '<batch id> <part number> <lines>'): the
-- ended record is kept with the batch, in this same step, so every part's outcome is recorded
-- exactly once however its prediction ended; the lines are counted, and a batch whose last part
-- ended is due for finishing now.
local function part_ended(now, status, fields)
  local batch_id, number, lines = string.match(fields['batch_part'], '^(%S+) (%d+) (%d+)$')
  if not batch_id then return end
  local batch = BATCH_PREFIX .. batch_id
  local batch_status = redis.call('HGET', batch, 'status')
  -- Gone, or ended already (a part made after its batch was cancelled and finished): nothing to keep.
  if not batch_status or batch_status == 'completed' or batch_status == 'cancelled'
      or batch_status == 'expired' or batch_status == 'failed' then return end
  if redis.call('HSETNX', batch .. ':results', number, snapshot(fields)) == 0 then return end
  local counted = nil
  if status == 'succeeded' then counted = 'completed' elseif status ~= 'cancelled' then counted = 'failed' end
  if counted then
    redis.call('HINCRBY', batch, counted, tonumber(lines))
    redis.call('HINCRBY', BATCH_LINES, counted, tonumber(lines))
  end
  if redis.call('HINCRBY', batch, 'ended', 1) >= tonumber(redis.call('HGET', batch, 'parts') or '0') then
    redis.call('ZADD', BATCHES_OPEN, now, batch_id)
  end
end

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
  if (fields['batch_part'] or '') ~= '' then part_ended(now, status, fields) end
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
