-- The scheduler (common.store.schedule): which waiting prediction of a queue a worker runs next.
-- A waiting prediction sits in its owner's sorted set for its queue and class (oldest first), and
-- its owner in the class's turn order (lowest pass first); a turn adds 1 / weight to the owner's
-- pass. The task messages on a Celery queue only say "run the next one here": there is one per
-- waiting prediction or more, and one that finds nothing to run is dropped, or parked while
-- every waiting owner runs as many as it may (INFERQ_MAX_RUNNING_PER_KEY).
local SCHEDULE = '{{SCHEDULE}}'  -- common.store.keys.schedule()
local CLASSES = {'interactive', 'default', 'batch'}  -- highest first (common.records.Priority)

-- The keys common.store.keys builds as schedule_turns, schedule_waiting and schedule_parked, and
-- the Celery queue's list (celery_queue).
local function turns_key(queue, class) return SCHEDULE .. ':' .. queue .. ':' .. class end
local function waiting_key(queue, class, owner) return turns_key(queue, class) .. ':' .. owner end
local function parked_key(queue) return SCHEDULE .. ':' .. queue .. ':parked' end
local function queue_list(queue) return queue end

local function class_of(fields)
  return fields['priority'] or 'default'  -- (a record from before classes: the default)
end

-- Adds ``by`` to a count of the figures hash, dropping it at zero (never below).
local function count(name, by)
  if redis.call('HINCRBY', schedule, name, by) <= 0 then redis.call('HDEL', schedule, name) end
end

local function running_of(owner)
  return tonumber(redis.call('HGET', schedule, 'owner ' .. owner) or '0')
end

local function at_limit(owner, limit)
  return limit > 0 and running_of(owner) >= limit
end

-- Puts prediction ``id`` in line; its owner joins the turn order at the class's clock, after
-- those whose turn it is now, unless it is in line already. ``weight`` (a string) is its share.
local function enqueue(fields, weight)
  local queue, class, owner = fields['queue'], class_of(fields), fields['owner']
  local score = tonumber(fields['created_at'])
  if redis.call('ZADD', waiting_key(queue, class, owner), score, id) == 1 then
    count('queued ' .. queue .. ' ' .. class, 1)
  end
  local turns = turns_key(queue, class)
  if not redis.call('ZSCORE', turns, owner) then
    redis.call('ZADD', turns, redis.call('HGET', schedule, 'clock ' .. queue .. ' ' .. class) or '0', owner)
  end
  if weight then
    if weight == '1' then redis.call('HDEL', schedule, 'weight ' .. owner)
    else redis.call('HSET', schedule, 'weight ' .. owner, weight) end
  end
end

-- Takes prediction ``id`` out of line (claimed or ended); returns whether it was in line.
local function dequeue(fields)
  local queue, class, owner = fields['queue'], class_of(fields), fields['owner']
  if not queue then return false end
  local waiting = waiting_key(queue, class, owner)
  if redis.call('ZREM', waiting, id) == 0 then return false end
  count('queued ' .. queue .. ' ' .. class, -1)
  if redis.call('EXISTS', waiting) == 0 then redis.call('ZREM', turns_key(queue, class), owner) end
  return true
end

-- The owner had its turn in the class: its pass moves on by 1 / its weight, and the class's clock
-- to where its turn was.
local function take_turn(fields)
  local queue, class, owner = fields['queue'], class_of(fields), fields['owner']
  local turns = turns_key(queue, class)
  local pass = tonumber(redis.call('ZSCORE', turns, owner) or '')
  if not pass then return end
  local weight = tonumber(redis.call('HGET', schedule, 'weight ' .. owner) or '1')
  redis.call('HSET', schedule, 'clock ' .. queue .. ' ' .. class, string.format('%.17g', pass))
  redis.call('ZADD', turns, string.format('%.17g', pass + 1 / weight), owner)
end

local function count_running(fields, by)
  local line, owner = (fields['queue'] or '') .. ' ' .. class_of(fields), fields['owner']
  count('running ' .. line, by)
  count('owner ' .. owner, by)
  count('owner ' .. owner .. ' ' .. line, by)
end

-- A run ended (or its worker was lost): one parked message of every queue goes back, since this
-- owner may now run one more.
local function run_ended(fields)
  count_running(fields, -1)
  for _, queue in ipairs(redis.call('SMEMBERS', parked_queues)) do
    local message = redis.call('LPOP', parked_key(queue))
    if message then redis.call('RPUSH', queue_list(queue), message) end
    if redis.call('EXISTS', parked_key(queue)) == 0 then redis.call('SREM', parked_queues, queue) end
  end
end

-- Whether ``queue`` has a waiting prediction whose owner may run one more (entries left behind
-- by expired records count too: the claim that finds them drops them).
local function runnable(queue, limit)
  for _, class in ipairs(CLASSES) do
    for _, owner in ipairs(redis.call('ZRANGE', turns_key(queue, class), 0, -1)) do
      if not at_limit(owner, limit) then return true end
    end
  end
  return false
end

-- Rebinds to the prediction that should run next on ``queue`` and returns its fields: the highest
-- class with a waiting prediction whose owner is under ``limit``, in it the owner whose turn it
-- is, and that owner's oldest. Entries whose record expired, ended or was claimed are dropped on
-- the way. Returns nil and whether work was held back by the limit when there is none.
local function pick(queue, limit)
  local held = false
  for _, class in ipairs(CLASSES) do
    local turns = turns_key(queue, class)
    for _, owner in ipairs(redis.call('ZRANGE', turns, 0, -1)) do
      if at_limit(owner, limit) then
        held = true
      else
        local waiting = waiting_key(queue, class, owner)
        local head = redis.call('ZRANGE', waiting, 0, 0)[1]
        while head do
          rebind(head)
          local fields = read_record(true)
          if fields and not TERMINAL[fields['status']] and (fields['claim'] or '') == '' then
            return fields
          end
          redis.call('ZREM', waiting, head)
          count('queued ' .. queue .. ' ' .. class, -1)
          head = redis.call('ZRANGE', waiting, 0, 0)[1]
        end
        redis.call('ZREM', turns, owner)
      end
    end
  end
  return nil, held
end
