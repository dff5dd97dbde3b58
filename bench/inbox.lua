-- GET /api/v1/referrals?box=inbox as one busy clinician.
function init(args) token = args[1] end
function request()
  return wrk.format("GET", "/api/v1/referrals?box=inbox&per_page=20", { ["Authorization"] = "Bearer " .. token })
end
