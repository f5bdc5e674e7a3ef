-- wrk script for the ingest benchmarks: JSON POSTs, one RESULT line at the end.
-- The body comes from WRK_BODY (the same body for hooknb and for the no-op baseline).
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY") or '{"id":42,"msg":"hello","tags":["a","b"]}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d non2xx=%d"
      .. " connect_err=%d read_err=%d write_err=%d timeout=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
