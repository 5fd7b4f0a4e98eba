-- GET /chat/<id> over ids the benchmark put in the hot store beforehand.
local first = tonumber(os.getenv("BENCH_ID_MIN"))
local last = tonumber(os.getenv("BENCH_ID_MAX"))

function init(args)
   math.randomseed(os.time())
end

function request()
   return wrk.format("GET", "/chat/" .. math.random(first, last))
end
