-- GET /chat/<id> over ids the benchmark put in the hot store beforehand.
local first = tonumber(os.getenv("BENCH_ID_MIN"))
local last = tonumber(os.getenv("BENCH_ID_MAX"))

function init(args)
   math.randomseed(os.time())
end

-- Ids are up to 2^53: Lua would write such a number as 4.5035996273705e+15, so it is formatted whole.
function request()
   return wrk.format("GET", string.format("/chat/%.0f", math.random(first, last)))
end
