-- wrk script of the benchmarks: replays the requests of a file, each once, on every
-- connection in turn, and reports statuses and latency percentiles as one JSON line.
--
-- wrk -tT -c32 -d10s -s bench/wrk_requests.lua http://127.0.0.1:PORT -- FILE T [cycle]
--
-- FILE has one request per line: METHOD<TAB>PATH<TAB>HEADERS<TAB>BODY, HEADERS being
-- "name: value" pairs joined by "|". Without "cycle", a thread that has sent every
-- request of its share sends GET /healthz instead and counts it as "exhausted", so
-- that a run which outlasts its prepared requests says so instead of repeating them.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local function split(s, sep)
   local out = {}
   for piece in (s .. sep):gmatch("(.-)" .. sep) do
      table.insert(out, piece)
   end
   return out
end

function init(args)
   requests, statuses, exhausted, i = {}, {}, 0, 0
   local nthreads = tonumber(args[2])
   cycle = args[3] == "cycle"
   local n = 0
   for line in io.lines(args[1]) do
      if n % nthreads == tid then
         local f = split(line, "\t")
         local headers = {}
         if f[3] ~= "" then
            for _, pair in ipairs(split(f[3], "|")) do
               local name, value = pair:match("^([^:]+):%s*(.*)$")
               headers[name] = value
            end
         end
         local body = f[4] ~= "" and f[4] or nil
         table.insert(requests, wrk.format(f[1], f[2], headers, body))
      end
      n = n + 1
   end
   fallback = wrk.format("GET", "/healthz")
end

function request()
   i = i + 1
   if i > #requests then
      if not cycle then
         exhausted = exhausted + 1
         return fallback
      end
      i = 1
   end
   return requests[i]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local merged, exhausted_total = {}, 0
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         merged[status] = (merged[status] or 0) + count
      end
      exhausted_total = exhausted_total + thread:get("exhausted")
   end
   local parts = {}
   for status, count in pairs(merged) do
      table.insert(parts, string.format('"%d": %d', status, count))
   end
   io.write(string.format(
      'WRK {"requests": %d, "duration_s": %.6f, "socket_errors": %d, "exhausted": %d, ' ..
      '"p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "statuses": {%s}}\n',
      summary.requests, summary.duration / 1e6,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      exhausted_total,
      latency:percentile(50) / 1000, latency:percentile(95) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      table.concat(parts, ", ")))
end
