#!/usr/bin/env bash
# Run every hooknb benchmark; JSON summaries and logs go to bench/results/<UTC date-time>/.
# Loopback only, bounded; ~28 minutes on 2 cores. Usage: bash bench/run_all.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-python}"
OUT="bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy
for name in ingest resume trigger_runs gc_pauses many_waits upload_memory replay page; do
    echo "== $name" | tee -a "$OUT/run.log"
    "$PY" "bench/$name.py" --out "$OUT/$name.json" 2>>"$OUT/run.log" | tail -n 8 | tee -a "$OUT/run.log"
done
echo "results in $OUT"
