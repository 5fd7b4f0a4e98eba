-- POST /chat to a different recipient each time; every 201 id is recorded.
local counter = 0
local text = string.rep("a short benchmark message ", 3)
local headers = {["Content-Type"] = "application/json"}

function request()
   counter = counter + 1
   local body = string.format('{"username":"post-%d","text":"%s %d","timeout":600}', counter % 100000, text, counter)
   return wrk.format("POST", "/chat", headers, body)
end

function response(status, headers, body)
   if status == 201 then
      record("created", body:match('"id":%s*(%d+)'))
   end
end
