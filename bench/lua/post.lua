-- One wrk script for every form POST the bench sends.
--
-- Arguments (after "--"): PATH FILE MODE STATUS PATTERN THREADS
--   FILE     one request per line: "<Authorization header value>\t<form body>"
--   MODE     "random": each request picks a random line (tokens, clients);
--            "walk":   each thread uses its own lines once, in order, and stops when they run
--                      out (refresh tokens are single-use: reusing one would measure
--                      reuse detection instead of rotation)
--   STATUS   the HTTP status every response must have
--   PATTERN  a Lua pattern every response body must match (so a fast stream of errors can
--            never pass for a fast server)
--   THREADS  wrk's thread count, by which walk mode splits the lines
-- done() prints one JSON line, prefixed with BENCH_RESULT, that bench/wrk.py reads. It carries
-- the latency at a grid of percentiles, finer towards the tail, so that bench/measure.py can
-- merge the distributions of several short runs into one.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

-- Per-thread state. Counters are globals so that done() can read them with thread:get().
ok, unexpected, exhausted = 0, 0, 0
local lines, count, path, mode, expect_status, pattern
local stride, cursor, stopping = 1, 1, false
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function init(args)
  path, mode, expect_status, pattern = args[1], args[3], tonumber(args[4]), args[5]
  stride = tonumber(args[6])
  lines = {}
  local n = 0
  for line in io.lines(args[2]) do
    n = n + 1
    -- In walk mode a thread keeps only its share, so no line is used by two threads.
    if mode ~= "walk" or (n - 1) % stride == id then
      local auth, body = line:match("^([^\t]*)\t(.*)$")
      headers["Authorization"] = auth ~= "" and auth or nil
      -- Formatted once here, not per request: wrk shares the machine with the server it
      -- loads, and every cycle it spends building requests is one the server does not get.
      table.insert(lines, wrk.format("POST", path, headers, body))
    end
  end
  count = #lines
  if count == 0 then
    error("no requests for thread " .. id .. " in " .. args[2])
  end
  -- A fixed seed per thread: every run replays the same sequence of random picks.
  math.randomseed(7919 + id)
end

function request()
  if mode == "walk" then
    if cursor > count then
      -- Out of single-use lines: stop rather than reuse. The run is reported as invalid.
      if not stopping then
        stopping = true
        wrk.thread:stop()
      end
      exhausted = exhausted + 1
      return wrk.format("GET", "/healthz", {}, nil)
    end
    cursor = cursor + 1
    return lines[cursor - 1]
  end
  return lines[math.random(count)]
end

function response(status, resp_headers, body)
  if stopping then
    return
  end
  if status == expect_status and body and body:find(pattern) then
    ok = ok + 1
  else
    unexpected = unexpected + 1
    if unexpected <= 3 then
      io.stderr:write("unexpected response " .. status .. ": " .. (body or ""):sub(1, 300) .. "\n")
    end
  end
end

local function quantiles(latency)
  local points = {}
  local function add(p)
    table.insert(points, string.format("[%.2f, %d]", p, latency:percentile(p)))
  end
  for p = 1, 90 do add(p) end
  for p = 90.2, 99.01, 0.2 do add(p) end
  for p = 99.1, 99.91, 0.1 do add(p) end
  add(100)
  return "[" .. table.concat(points, ", ") .. "]"
end

function done(summary, latency, requests)
  local total_ok, total_unexpected, total_exhausted = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_unexpected = total_unexpected + thread:get("unexpected")
    total_exhausted = total_exhausted + thread:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "ok": %d, "unexpected": %d, ' ..
    '"exhausted": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d}, "latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, ' ..
    '"p99": %d, "p999": %d, "max": %d}, "quantiles_us": %s}\n',
    summary.requests, summary.duration, total_ok, total_unexpected, total_exhausted,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, quantiles(latency)))
end
