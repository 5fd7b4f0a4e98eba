-- GET /chats/<username>, each request a different inbox holding one live message.
local next_inbox = tonumber(os.getenv("BENCH_INBOX_FIRST"))

function request()
   local path = "/chats/inbox-" .. next_inbox
   next_inbox = next_inbox + 1
   return wrk.format("GET", path)
end

function response(status, headers, body)
   if status == 200 then
      local n = 0
      for id in body:gmatch('"id":%s*(%d+)') do
         record("collected", id)
         n = n + 1
      end
      record("inbox_size", n)
   end
end
