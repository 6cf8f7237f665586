-- ARGV[6] token, ARGV[7] the chunk (JSON), ARGV[8] the event log's ttl while running (s).
-- Appends an output chunk to a streamed prediction's event log, only for the attempt that holds
-- the claim: after a re-claim the lost attempt's chunks are refused, and so is every chunk once
-- the prediction ended (finish clears the claim), so nothing follows its terminal event.
-- Returns the new event's id, or false when ARGV[6] does not hold the claim.
local token = ARGV[6]
if token == '' or redis.call('HGET', record, 'claim') ~= token then return false end
local event_id = redis.call('XADD', events, '*', 'event', 'output', 'data', ARGV[7])
redis.call('EXPIRE', events, tonumber(ARGV[8]))
redis.call('PUBLISH', updates_channel, id .. ' event')  -- common.store.events.EVENT_NOTE
return event_id
