-- wrk script for the bench: POST one JSON body, count 2xx and generated tokens, print a JSON summary.
-- Usage: wrk -s post.lua URL -- BODY_FILE
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  ok, failed, tokens = 0, 0, 0
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
    -- REST and API Gateway answer output_tokens; the Bedrock endpoint answers Titan's tokenCount.
    local n = body:match('"output_tokens"%s*:%s*(%d+)') or body:match('"tokenCount"%s*:%s*(%d+)')
    if n then tokens = tokens + tonumber(n) end
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local ok_total, failed_total, tokens_total = 0, 0, 0
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    failed_total = failed_total + thread:get("failed")
    tokens_total = tokens_total + thread:get("tokens")
  end
  local points = {}
  for _, pct in ipairs({1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9}) do
    table.insert(points, string.format('"%g":%d', pct, latency:percentile(pct)))
  end
  local e = summary.errors
  io.write("WRK_JSON {")
  io.write(string.format('"requests":%d,"duration_us":%d,', summary.requests, summary.duration))
  io.write(string.format('"ok":%d,"non_2xx":%d,"tokens":%d,', ok_total, failed_total, tokens_total))
  io.write(string.format('"socket_errors":%d,"timeouts":%d,', e.connect + e.read + e.write, e.timeout))
  io.write(string.format('"p50_us":%d,"p99_us":%d,', latency:percentile(50), latency:percentile(99)))
  io.write(string.format('"mean_us":%.1f,"max_us":%d,', latency.mean, latency.max))
  io.write(string.format('"percentiles_us":{%s}}\n', table.concat(points, ",")))
end
