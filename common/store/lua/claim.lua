-- Claims this very prediction (a hint of a batch lane, or a test): ARGV[6..10] as take() reads
-- them (claiming.lua), ARGV[9] '1' when the model is already loaded, ARGV[11] the most
-- predictions one owner may run at once (0: no limit). A waiting prediction whose owner runs
-- that many stays waiting: {'held'}. A claim takes the owner's turn, as next.lua's does.
local fields = read_record(true)
if not fields then return {'missing'} end
if TERMINAL[fields['status']] then return {'terminal'} end
if (fields['claim'] or '') == '' and at_limit(fields['owner'], tonumber(ARGV[11])) then return {'held'} end
if (fields['claim'] or '') == '' then take_turn(fields) end
return take(fields, ARGV[9] == '1')
