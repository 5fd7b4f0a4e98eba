-- Shared by every scenario: reads its parameters from the environment and, at
-- the end, prints one JSON line that bench/run.py reads.
-- Each scenario may define on_response(status, body) to record ids.

local out_path = os.getenv("BENCH_OUT")
local outfiles = {}

-- Appends value to the file <BENCH_OUT>.<kind>, one per line.
function record(kind, value)
   local file = outfiles[kind]
   if file == nil then
      file = io.open(out_path .. "." .. kind, "a")
      file:setvbuf("line")
      outfiles[kind] = file
   end
   file:write(value, "\n")
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,'
      .. '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.timeout, e.status))
end
