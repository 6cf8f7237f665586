-- KEYS[STANDARD + 1] owner index, + 2 the Celery queue's list, + 3 per-model prediction counts,
-- then (only with an idempotency key) the key's mapping, then (batched versions only) the
-- version's lane of hints for gathering workers.
-- ARGV[6] queue deadline (s),
-- ARGV[7] record ttl (s), ARGV[8] the task message, ARGV[9] the init event's data (JSON) for a
-- streamed prediction ('' for none), ARGV[10] the most tasks the queue may hold (0: no limit),
-- ARGV[11] the channel that hears of pushes onto lanes, ARGV[12] the idempotency mapping's value,
-- '<id> <fingerprint>' ('' for no key), ARGV[13] its ttl (s), ARGV[14] the most unfinished
-- predictions the owner may have (0: no limit), ARGV[15] the owner's weight in turns
-- (schedule.lua), ARGV[16..] field/value pairs of the record.
-- Returns 'full' (and stores nothing) when the queue is full, 'busy' (storing nothing) when the
-- owner has as many unfinished predictions as it may, and {'earlier', <mapping>} (storing
-- nothing) when the idempotency key already names another prediction.
-- Stores the prediction and queues its task in one step, so a stored prediction is always
-- queued. Returns the creation time; repeating the call (a retried request) changes nothing.
local next_key = STANDARD + 4
local mapping = nil
if ARGV[12] ~= '' then
  mapping = KEYS[next_key]
  next_key = next_key + 1
  local earlier = redis.call('GET', mapping)
  if earlier and string.sub(earlier, 1, #id + 1) ~= id .. ' ' then return {'earlier', earlier} end
end
local lane = KEYS[next_key]
if redis.call('EXISTS', record) == 1 then return redis.call('HGET', record, 'created_at') end
local limit = tonumber(ARGV[10])
if limit > 0 and redis.call('LLEN', KEYS[STANDARD + 2]) >= limit then return 'full' end
local owner = nil
for i = 16, #ARGV, 2 do
  if ARGV[i] == 'owner' then owner = ARGV[i + 1]; break end
end
local most = tonumber(ARGV[14])
if most > 0 and tonumber(redis.call('HGET', unfinished, owner) or '0') >= most then return 'busy' end
local now = clock()
local changes = {}
for i = 16, #ARGV do changes[#changes + 1] = ARGV[i] end
for _, value in ipairs({'created_at', fmt(now), 'updated_at', fmt(now), 'claim', ''}) do
  changes[#changes + 1] = value
end
local fields = {}
update(fields, changes)
redis.call('EXPIRE', record, tonumber(ARGV[7]))
if mapping then redis.call('SET', mapping, ARGV[12], 'EX', tonumber(ARGV[13])) end
if ARGV[9] ~= '' then
  redis.call('XADD', events, '*', 'event', 'init', 'data', ARGV[9])
  redis.call('EXPIRE', events, tonumber(ARGV[7]))
end
redis.call('ZADD', KEYS[STANDARD + 1], 0, id)
-- An owner who never lists would grow the index without bound (listing drops what it finds
-- expired): drop its oldest entries whose records expired, a few per create, stopping at the
-- first live one. Ids sort by creation time, so the oldest come first. Their record keys are
-- built as this one's is: the same key with the id swapped.
local INDEX_TRIM = 4
if string.sub(record, -#id) == id then
  local record_prefix = string.sub(record, 1, #record - #id)
  for _, older in ipairs(redis.call('ZRANGE', KEYS[STANDARD + 1], 0, INDEX_TRIM - 1)) do
    if redis.call('EXISTS', record_prefix .. older) == 1 then break end
    redis.call('ZREM', KEYS[STANDARD + 1], older)
  end
end
redis.call('HINCRBY', unfinished, owner, 1)
redis.call('ZADD', pending, now + tonumber(ARGV[6]), id)
enqueue(fields, ARGV[15])
redis.call('LPUSH', KEYS[STANDARD + 2], ARGV[8])
local model = cjson.decode(fields['model'])
redis.call('HINCRBY', KEYS[STANDARD + 3], model['owner'] .. '/' .. model['name'], 1)
if lane then
  redis.call('RPUSH', lane, id .. '\n' .. ARGV[8])
  redis.call('LTRIM', lane, -10000, -1)
  redis.call('EXPIRE', lane, tonumber(ARGV[7]))
  redis.call('PUBLISH', ARGV[11], lane)
end
if has_webhook(fields) then
  notify_webhook(now, fields)
  redis.call('EXPIRE', outbox, tonumber(ARGV[7]))
end
return fmt(now)
