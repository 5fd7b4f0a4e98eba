-- The realistic mix: 50% POST /chat, 25% GET /chat/<id>, 25% GET /chats/<username>.
-- Recipients come from a pool, so a collect finds whatever was sent to it
-- meanwhile; reads are of ids this run created (or the warmed ones at first).
local pool = tonumber(os.getenv("BENCH_MIX_USERS"))
local first = tonumber(os.getenv("BENCH_ID_MIN"))
local last = tonumber(os.getenv("BENCH_ID_MAX"))
local recent = {}
local recent_size = 4096
local recent_count = 0
local counter = 0
local headers = {["Content-Type"] = "application/json"}

function init(args)
   math.randomseed(os.time())
end

function request()
   local r = math.random()
   if r < 0.5 then
      counter = counter + 1
      local body = string.format('{"username":"mix-%d","text":"mixed load message %d","timeout":600}',
         math.random(1, pool), counter)
      return wrk.format("POST", "/chat", headers, body)
   elseif r < 0.75 then
      local id
      if recent_count > 0 then
         id = recent[math.random(1, math.min(recent_count, recent_size))]
      else
         -- Written whole: Lua would write an id near 2^53 in exponent form.
         id = string.format("%.0f", math.random(first, last))
      end
      return wrk.format("GET", "/chat/" .. id)
   else
      return wrk.format("GET", "/chats/mix-" .. math.random(1, pool))
   end
end

function response(status, headers, body)
   if status == 201 then
      local id = body:match('"id":%s*(%d+)')
      record("created", id)
      recent_count = recent_count + 1
      recent[(recent_count - 1) % recent_size + 1] = id
   elseif status == 200 and body:sub(1, 1) == "[" then
      for id in body:gmatch('"id":%s*(%d+)') do
         record("collected", id)
      end
   end
end
