-- POST /api/v1/referrals/{id}/accept, each referral once, by the colleague it was offered to.
local threads = 0
function setup(thread)
  thread:set("index", threads)
  threads = threads + 1
end
local jobs = {}
local n = 0
function init(args)
  for line in io.lines(args[1]) do
    local id, token = line:match("(%S+) (%S+)")
    jobs[#jobs + 1] = { id = id, token = token }
  end
  -- Each wrk thread takes its own half of the list.
  n = index * math.floor(#jobs / 2)
end
function request()
  n = n + 1
  local job = jobs[n] or jobs[#jobs]
  return wrk.format("POST", "/api/v1/referrals/" .. job.id .. "/accept",
    { ["Authorization"] = "Bearer " .. job.token, ["Content-Type"] = "application/json" }, '{"onto":"waitlist"}')
end
