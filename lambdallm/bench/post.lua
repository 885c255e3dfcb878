-- wrk script for the bench: POST one JSON body, count 2xx and generated tokens, print a JSON summary.
-- Usage: wrk -s post.lua URL -- BODY_FILE [REQUESTS_PER_THREAD]
-- With REQUESTS_PER_THREAD, each thread sends exactly that many requests, then prints WRK_THREAD_DONE once all
-- are answered; the caller interrupts wrk (SIGINT) after every thread has, so no request is left queued in the
-- server and wrk's duration is the batch's own wall time.
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
  ok, failed, tokens, sent, answered = 0, 0, 0, 0, 0
  statuses = {} -- each non-2xx status's count, so that a run's failures say what they were
  budget = tonumber(args[2])
  if budget then
    function delay()
      sent = sent + 1
      if sent > budget then
        return 3600000 -- park this connection: the thread's budget is spent
      end
      return 0
    end
  end
end

function response(status, headers, body)
  answered = answered + 1
  if status >= 200 and status < 300 then
    ok = ok + 1
    -- REST and API Gateway answer output_tokens; the Bedrock endpoint Titan's tokenCount; llama-server
    -- tokens_predicted.
    local n = body:match('"output_tokens"%s*:%s*(%d+)') or body:match('"tokenCount"%s*:%s*(%d+)')
      or body:match('"tokens_predicted"%s*:%s*(%d+)')
    if n then tokens = tokens + tonumber(n) end
  else
    failed = failed + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
  if budget and answered == budget then
    io.write("WRK_THREAD_DONE\n")
    io.flush()
  end
end

function done(summary, latency, requests)
  local ok_total, failed_total, tokens_total, status_total = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    failed_total = failed_total + thread:get("failed")
    tokens_total = tokens_total + thread:get("tokens")
    for status, count in pairs(thread:get("statuses")) do
      status_total[status] = (status_total[status] or 0) + count
    end
  end
  local kinds = {}
  for status, count in pairs(status_total) do
    table.insert(kinds, string.format('"%d":%d', status, count))
  end
  for _, kind in ipairs({"connect", "read", "write", "timeout"}) do
    if summary.errors[kind] > 0 then
      table.insert(kinds, string.format('"%s":%d', kind, summary.errors[kind]))
    end
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
  io.write(string.format('"error_kinds":{%s},', table.concat(kinds, ",")))
  io.write(string.format('"percentiles_us":{%s}}\n', table.concat(points, ",")))
end
