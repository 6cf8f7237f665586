-- Shared by every prediction script. Calling convention:
--   KEYS[1] record hash, KEYS[2] pending zset, KEYS[3] leases zset,
--   KEYS[4] logs string, KEYS[5] events stream, KEYS[6] webhook outbox, KEYS[7] webhooks-due zset,
--   KEYS[8] finished counts, KEYS[9] wait histogram, KEYS[10] run histogram; a script's own keys
--   follow from KEYS[STANDARD + 1].
--   ARGV[1] prediction id, ARGV[2] updates channel, ARGV[3] cancel channel,
--   ARGV[4] retention seconds, ARGV[5] progress channel; script-specific arguments follow
--   from ARGV[6].
local record, pending, leases, logs, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local outbox, webhooks_due = KEYS[6], KEYS[7]
local finished_counts, wait_histogram, run_histogram = KEYS[8], KEYS[9], KEYS[10]
local STANDARD = 10
local BUCKETS = {{{BUCKETS}}}  -- upper bounds, in seconds (common.stats.BUCKETS)
local id, updates_channel, cancel_channel = ARGV[1], ARGV[2], ARGV[3]
local retention = tonumber(ARGV[4])
local progress_channel = ARGV[5]
-- The news of an ending carries the record (fields and logs, as JSON) when it is at most this
-- long, so a waiter need not read it back; a longer record is read back by whoever needs it.
local NEWS_RECORD_LIMIT = 16384
local TERMINAL = {succeeded = true, failed = true, cancelled = true, abandoned = true}

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function fmt(x)
  return string.format('%.6f', x)
end

local function expire_all(seconds)
  redis.call('EXPIRE', record, seconds)
  redis.call('EXPIRE', logs, seconds)
  redis.call('EXPIRE', events, seconds)
  redis.call('EXPIRE', outbox, seconds)
end

-- The record as it stands, with its logs: a JSON object of the hash's fields plus 'logs'.
local function snapshot()
  local flat = redis.call('HGETALL', record)
  local fields = {}
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  fields['logs'] = redis.call('GET', logs) or ''
  return cjson.encode(fields)
end

-- Whether the record and its logs may fit in the news, judged by the fields that grow (input,
-- output, logs) without reading them: a big record is not encoded only to be left out.
local function may_fit_news()
  local size = redis.call('HSTRLEN', record, 'input') + redis.call('HSTRLEN', record, 'output')
    + redis.call('STRLEN', logs)
  return size <= NEWS_RECORD_LIMIT
end

-- After a status change of a prediction with a webhook: queue a snapshot of the record (with
-- its logs; ``taken`` when the caller has just taken it) for delivery, in order, and make the
-- prediction due for delivery now.
local function notify_webhook(now, taken)
  local webhook = redis.call('HGET', record, 'webhook')
  if not webhook or webhook == '' or webhook == 'null' then return end
  redis.call('RPUSH', outbox, taken or snapshot())
  redis.call('ZADD', webhooks_due, 'LT', now, id)  -- due now, even if a retry was scheduled later
end

local function observe(histogram, model, seconds)
  if seconds < 0 then seconds = 0 end
  local bound = '+Inf'
  for _, limit in ipairs(BUCKETS) do
    if seconds <= limit then bound = tostring(limit); break end
  end
  redis.call('HINCRBY', histogram, model .. ' ' .. bound, 1)
  redis.call('HINCRBYFLOAT', histogram, model .. ' sum', seconds)
  redis.call('HINCRBY', histogram, model .. ' count', 1)
end

-- Counts the ending by model and status, and how long it waited for and ran on a worker.
local function record_stats(now, status)
  local m = cjson.decode(redis.call('HGET', record, 'model'))
  local model = m['owner'] .. '/' .. m['name']
  redis.call('HINCRBY', finished_counts, model .. ' ' .. status, 1)
  local started = tonumber(redis.call('HGET', record, 'started_at') or '')
  if started then
    observe(wait_histogram, model, started - tonumber(redis.call('HGET', record, 'created_at')))
    observe(run_histogram, model, now - started)
  end
end

-- The only way a prediction reaches a terminal status; callers check it is not terminal yet.
-- A streamed prediction's event log gets its terminal event (done, or error for failed and
-- abandoned) in the same step, so a stream of a finished prediction always ends with one.
local function finish(now, status, output, err, metrics)
  redis.call('HSET', record, 'status', status, 'updated_at', fmt(now), 'completed_at', fmt(now),
    'claim', '', 'output', output or 'null', 'error', err or '', 'metrics', metrics or 'null')
  if redis.call('HGET', record, 'stream') == '1' then
    local kind = 'done'
    if status == 'failed' or status == 'abandoned' then kind = 'error' end
    redis.call('XADD', events, '*', 'event', kind, 'data', '')
  end
  redis.call('ZREM', pending, id)
  redis.call('ZREM', leases, id)
  record_stats(now, status)
  local ended = nil
  if may_fit_news() then ended = snapshot() end
  notify_webhook(now, ended)
  expire_all(retention)
  local news = id .. ' ' .. status
  if ended and #ended <= NEWS_RECORD_LIMIT then news = news .. ' ' .. ended end
  redis.call('PUBLISH', updates_channel, news)
end

local function internal_error(message)
  return cjson.encode({source = 'internal', message = message, detail = cjson.null})
end
