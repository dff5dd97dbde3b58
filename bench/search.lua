-- GET /api/v1/search/clinicians over a file of realistic queries, as signed-in users.
local urls, tokens = {}, {}
local n = 0
function init(args)
  for line in io.lines(args[1]) do urls[#urls + 1] = line end
  for line in io.lines(args[2]) do tokens[#tokens + 1] = line end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  n = math.random(#urls)
end
function request()
  n = n % #urls + 1
  return wrk.format("GET", urls[n], { ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)] })
end
function response(status)
  if status ~= 200 then print("unexpected status " .. status) end
end
