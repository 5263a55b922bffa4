-- wrk script for bench/run.mjs: sets the scenario's header (BENCH_HEADER="name: value", empty for none) and prints one
-- parseable line at the end. Latencies in microseconds. wrk counts answers outside 2xx/3xx in `errors.status`.
local header = os.getenv("BENCH_HEADER") or ""
if #header > 0 then
  local name, value = header:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,'
      .. '"status_errors":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end
