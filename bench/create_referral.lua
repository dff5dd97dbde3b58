-- POST /api/v1/referrals: random sender, direct to a random colleague licensed in NY.
local senders, recipients = {}, {}
function init(args)
  for line in io.lines(args[1]) do senders[#senders + 1] = line end
  for line in io.lines(args[2]) do recipients[#recipients + 1] = line end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
function request()
  local body = string.format([[{"mode":"direct","recipients":["%s"],"packet":{"age_band":"adult","state":"NY","concerns":["anxiety"],"urgency":"routine","note":"Benchmark referral."},"contact":{"full_name":"Bench Client","phone":"+1 555 0100"}}]],
    recipients[math.random(#recipients)])
  return wrk.format("POST", "/api/v1/referrals",
    { ["Authorization"] = "Bearer " .. senders[math.random(#senders)], ["Content-Type"] = "application/json" }, body)
end
function response(status)
  if status ~= 201 then print("unexpected status " .. status) end
end
