-- Claims this very prediction (a hint of a batch lane, or a test): ARGV[6..10] as take() reads
-- them (claiming.lua), ARGV[9] '1' when the model is already loaded, ARGV[11] the most
-- predictions one owner may run at once (0: no limit). A waiting prediction whose owner runs
-- that many stays waiting: {'held'}. A claim takes the owner's turn, as next.lua's does.
-- ARGV[12], when given, is the prediction's task message in KEYS[STANDARD + 1], the Celery
-- queue's list: a claim removes it, so no worker picks it up for nothing (a gathered hint).
local fields = read_record(true)
if not fields then return {'missing'} end
if TERMINAL[fields['status']] then return {'terminal'} end
if (fields['claim'] or '') == '' and at_limit(fields['owner'], tonumber(ARGV[11])) then return {'held'} end
if (fields['claim'] or '') == '' then take_turn(fields) end
local reply = take(fields, ARGV[9] == '1')
if reply[1] == 'claimed' and (ARGV[12] or '') ~= '' then redis.call('LREM', KEYS[STANDARD + 1], 1, ARGV[12]) end
return reply
