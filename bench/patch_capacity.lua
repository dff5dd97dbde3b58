-- PATCH /api/v1/profiles/me/capacity, each request as one of many clinicians.
local tokens = {}
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
local waitlists = { "none", "short", "medium", "long" }
function request()
  local token = tokens[math.random(#tokens)]
  local body = string.format('{"open_slots": %d, "waitlist": "%s", "accepting_referrals": true}',
    math.random(0, 6), waitlists[math.random(4)])
  return wrk.format("PATCH", "/api/v1/profiles/me/capacity",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
function response(status)
  if status ~= 200 then print("unexpected status " .. status) end
end
