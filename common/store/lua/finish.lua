-- ARGV[6] token, ARGV[7] status, ARGV[8] output json, ARGV[9] error json or '',
-- ARGV[10] metrics json, then field/value pairs of timings. Returns 1 if this call ended it.
local fields = read_record()
if not fields or TERMINAL[fields['status']] or fields['claim'] ~= ARGV[6] then
  return 0
end
local status_out, output, err = ARGV[7], ARGV[8], ARGV[9]
if fields['cancel_requested'] == '1' and status_out ~= 'cancelled' then
  -- A cancellation accepted before this end wins: the prediction ends cancelled, as promised.
  status_out, output, err = 'cancelled', 'null', ''
end
if err == '' then err = nil end
local extra = {}
for i = 11, #ARGV do extra[#extra + 1] = ARGV[i] end
finish(clock(), status_out, fields, output, err, ARGV[10], extra)
return 1
