-- Shared by webhook_delivered.lua and webhook_failed.lua (each begins with this file): the
-- prediction's delivery log, a list of its webhook delivery attempts as JSON, oldest first,
-- written in the same script as the outbox change the attempt led to.
-- ARGV[base ..] describes the attempt: when (unix seconds), the status of the snapshot posted,
-- the receiver's HTTP status code ('' for none), the error ('' for none), how long it took (ms),
-- and how many entries the log keeps.
-- Appends the attempt as its ``attempt``-th at this snapshot, ending so (``outcome``: delivered,
-- retrying or given_up). The log expires with the record (KEYS: ``record``); once the record is
-- gone there is nothing to show it on, and nothing is written.
local function log_attempt(record, log, base, attempt, outcome)
  local ttl = redis.call('PTTL', record)
  if ttl <= 0 then return end
  local entry = {
    attempt = attempt, outcome = outcome, at = ARGV[base], status = ARGV[base + 1],
    duration_ms = tonumber(ARGV[base + 4]),
  }
  if ARGV[base + 2] ~= '' then entry['status_code'] = tonumber(ARGV[base + 2]) end
  if ARGV[base + 3] ~= '' then entry['error'] = ARGV[base + 3] end
  redis.call('RPUSH', log, cjson.encode(entry))
  redis.call('LTRIM', log, -tonumber(ARGV[base + 5]), -1)
  redis.call('PEXPIRE', log, ttl)
end

