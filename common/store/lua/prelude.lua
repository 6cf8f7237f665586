-- Shared by every prediction script. Calling convention:
--   KEYS[1] record hash, KEYS[2] pending zset, KEYS[3] leases zset,
--   KEYS[4] logs string, KEYS[5] events stream, KEYS[6] webhook outbox, KEYS[7] webhooks-due zset,
--   KEYS[8] finished counts, KEYS[9] wait histogram, KEYS[10] run histogram, KEYS[11] unfinished
--   counts by owner, KEYS[12] the scheduler's figures, KEYS[13] the queues with parked messages;
--   a script's own keys follow from KEYS[STANDARD + 1].
--   The script is this prelude, then schedule.lua and ending.lua (helpers), then its own file.
--   ARGV[1] prediction id, ARGV[2] updates channel, ARGV[3] cancel channel,
--   ARGV[4] retention seconds, ARGV[5] progress channel; script-specific arguments follow
--   from ARGV[6].
local record, pending, leases, logs, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local outbox, webhooks_due = KEYS[6], KEYS[7]
local finished_counts, wait_histogram, run_histogram = KEYS[8], KEYS[9], KEYS[10]
local unfinished, schedule, parked_queues = KEYS[11], KEYS[12], KEYS[13]
local STANDARD = 13
local BUCKETS = {{{BUCKETS}}}  -- upper bounds, in seconds (common.store.stats.BUCKETS)
local id, updates_channel, cancel_channel = ARGV[1], ARGV[2], ARGV[3]
local retention = tonumber(ARGV[4])
local progress_channel = ARGV[5]
-- The news of an ending carries the record (fields and logs, as JSON) when it is at most this
-- long, so a waiter need not read it back; a longer record is read back by whoever needs it.
local NEWS_RECORD_LIMIT = 16384
local TERMINAL = {succeeded = true, failed = true, cancelled = true, abandoned = true}

-- Points the per-prediction keys and ``id`` at prediction ``other``: each of those keys names its
-- prediction by holding its id once (common.store.keys), so the other's are these with it swapped.
-- The scheduler's claim uses it: the task message names a prediction, the claim picks which runs.
local function rebind(other)
  local function swap(key)
    local first, last = string.find(key, id, 1, true)
    return string.sub(key, 1, first - 1) .. other .. string.sub(key, last + 1)
  end
  record, logs, events, outbox = swap(record), swap(logs), swap(events), swap(outbox)
  id = other
end

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function fmt(x)
  return string.format('%.6f', x)
end

-- The fields a status change reads, for a record too big to copy whole (see read_record).
local STATUS_FIELDS = {'status', 'claim', 'owner', 'model', 'stream', 'webhook', 'cancel_requested',
  'created_at', 'started_at', 'attempts', 'queue', 'priority', 'batch_part'}
-- The tables read_record filled with STATUS_FIELDS alone.
local partial = {}

-- The record as a table of its fields, or nil when there is none. A script reads it once and
-- keeps it current with update(): every redis.call costs microseconds, one per field would add
-- up on every prediction. Unless ``whole`` is asked for, a record whose input is too big for the
-- news is read only as far as STATUS_FIELDS, so it is not copied just to be left out.
local function read_record(whole)
  if not whole and redis.call('HSTRLEN', record, 'input') > NEWS_RECORD_LIMIT then
    local values = redis.call('HMGET', record, unpack(STATUS_FIELDS))
    if not values[1] then return nil end
    local fields = {}
    for i, name in ipairs(STATUS_FIELDS) do
      if values[i] then fields[name] = values[i] end
    end
    partial[fields] = true
    return fields
  end
  local flat = redis.call('HGETALL', record)
  if #flat == 0 then return nil end
  local fields = {}
  for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
  return fields
end

-- Writes the field/value pairs of ``changes`` (a flat list) to the record and to ``fields``.
local function update(fields, changes)
  redis.call('HSET', record, unpack(changes))
  for i = 1, #changes, 2 do fields[changes[i]] = changes[i + 1] end
end

-- ``head`` followed by the field/value pairs of a whole record, as HGETALL lists them.
local function listed(head, fields)
  local result = {head}
  for name, value in pairs(fields) do
    result[#result + 1] = name
    result[#result + 1] = value
  end
  return result
end

-- The record as it stands, with its logs: a JSON object of the fields plus 'logs'. ``logs_size``
-- is the logs' length when the caller has it (no read when 0). ``without_input`` leaves the
-- input out: the outbox's copies, since the record keeps it once for all of them.
local function snapshot(fields, logs_size, without_input)
  if partial[fields] then fields = read_record(true) end
  local text = ''
  if logs_size ~= 0 then text = redis.call('GET', logs) or '' end
  fields['logs'] = text
  local input = fields['input']
  if without_input then fields['input'] = nil end
  local encoded = cjson.encode(fields)
  fields['logs'] = nil
  fields['input'] = input
  return encoded
end

local function has_webhook(fields)
  local webhook = fields['webhook']
  return webhook ~= nil and webhook ~= '' and webhook ~= 'null'
end

-- Moves the record and its companion keys to a new expiry (the outbox exists only with a webhook).
local function expire_all(seconds, fields)
  redis.call('EXPIRE', record, seconds)
  redis.call('EXPIRE', logs, seconds)
  redis.call('EXPIRE', events, seconds)
  if has_webhook(fields) then redis.call('EXPIRE', outbox, seconds) end
end

-- After a status change of a prediction with a webhook: queue a snapshot of the record (with
-- its logs, ``logs_size`` long when the caller knows; without its input, which the deliverer
-- reads from the record) for delivery, in order, and make the prediction due for delivery now.
local function notify_webhook(now, fields, logs_size)
  if not has_webhook(fields) then return end
  redis.call('RPUSH', outbox, snapshot(fields, logs_size, true))
  redis.call('ZADD', webhooks_due, 'LT', now, id)  -- due now, even if a retry was scheduled later
end

-- Counts into a histogram; its count is the sum of its buckets (common.store.stats).
local function observe(histogram, model, seconds)
  if seconds < 0 then seconds = 0 end
  local bound = '+Inf'
  for _, limit in ipairs(BUCKETS) do
    if seconds <= limit then bound = tostring(limit); break end
  end
  redis.call('HINCRBY', histogram, model .. ' ' .. bound, 1)
  redis.call('HINCRBYFLOAT', histogram, model .. ' sum', seconds)
end

-- Counts the ending by model and status, and how long it waited for and ran on a worker.
local function record_stats(now, status, fields)
  local m = cjson.decode(fields['model'])
  local model = m['owner'] .. '/' .. m['name']
  redis.call('HINCRBY', finished_counts, model .. ' ' .. status, 1)
  local started = tonumber(fields['started_at'] or '')
  if started then
    observe(wait_histogram, model, started - tonumber(fields['created_at']))
    observe(run_histogram, model, now - started)
  end
end
