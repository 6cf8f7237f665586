-- Claims the prediction that should run next on the queue ARGV[11] (schedule.lua's pick), with
-- ARGV[6..10] as take() reads them (claiming.lua), ARGV[9] the model versions already loaded
-- (``owner/name:N``, space-separated) and ARGV[12] the most predictions one owner may run at
-- once (0: no limit). The prediction the task message named (ARGV[1]) is only a hint: it is
-- claimed itself when the queue has nobody in line (a prediction queued before the scheduler,
-- or one whose worker was lost and whose lease lapsed). Returns take()'s reply for the one it
-- claimed, {'held'} when every waiting owner runs as many as it may, or {outcome} of the hint.
local hint, queue, limit = id, ARGV[11], tonumber(ARGV[12])
local loaded = {}
for key in string.gmatch(ARGV[9], '%S+') do loaded[key] = true end

local function ready(fields)
  local m = cjson.decode(fields['model'])
  return loaded[m['owner'] .. '/' .. m['name'] .. ':' .. m['version_number']] == true
end

while true do
  local fields, held = pick(queue, limit)
  if not fields then
    if held then return {'held'} end
    break
  end
  take_turn(fields)
  local reply = take(fields, ready(fields))
  if reply[1] == 'claimed' then return reply end
  -- it ended instead (cancelled, or past its deadline): the next one
end
rebind(hint)
local fields = read_record(true)
if not fields then return {'missing'} end
if TERMINAL[fields['status']] then return {'terminal'} end
return take(fields, ready(fields))
