-- POST /api/v1/auth/login as rotating seeded clinicians (argon2 on every request).
local emails = {}
function init(args)
  for line in io.lines(args[1]) do emails[#emails + 1] = line end
  math.randomseed(os.time())
end
function request()
  local email = emails[math.random(#emails)]
  return wrk.format("POST", "/api/v1/auth/login", { ["Content-Type"] = "application/json" },
    string.format('{"email": "%s", "password": "%s"}', email, os.getenv("KITH_DEMO_PASSWORD")))
end
