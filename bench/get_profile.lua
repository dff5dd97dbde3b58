-- GET /api/v1/profiles/{id} over random seeded clinicians, as a signed-in user.
local ids, tokens = {}, {}
function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  for line in io.lines(args[2]) do tokens[#tokens + 1] = line end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
function request()
  local id = ids[math.random(#ids)]
  local token = tokens[math.random(#tokens)]
  return wrk.format("GET", "/api/v1/profiles/" .. id, { ["Authorization"] = "Bearer " .. token })
end
