#!/usr/bin/env bash
# Measures the webhook on this machine, loopback only, and prints Markdown for
# docs/performance.md:
#  1. throughput and latency of /mutate with the realistic 3 KB ISVC review against the echo
#     baseline on the same TLS stack, in one process and run (isvc-ingress-load --compare),
#     at concurrency 1, 16 and 64, over HTTP/1.1 and HTTP/2;
#  2. resident memory of a separate `isvc-ingress serve` process before and during load.
# Usage: scripts/measure-webhook.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
body=tests/fixtures/admission/isvc-create-3kb.json
config=tests/fixtures/config/gateway-api-two-domains.yaml
cargo build --release --quiet --bin isvc-ingress --bin isvc-ingress-load
load=target/release/isvc-ingress-load

echo "| protocol | concurrency | echo req/s | mutate req/s | mutate/echo | mutate p50 | mutate p99 | mutate p99.9 | errors |"
echo "|---|---|---|---|---|---|---|---|---|"
for protocol in http1 http2; do
  flag=""; [ "$protocol" = http2 ] && flag="--http2"
  for concurrency in 1 16 64; do
    out=$("$load" --compare $flag --body "$body" --config "$config" \
            --concurrency "$concurrency" --duration "${seconds}s" --json)
    echo "$out" | python3 -c '
import json, sys
echo, mutate = [json.loads(line) for line in sys.stdin if line.strip()]
latency = mutate["latency"]
print("| {} | {} | {:.0f} | {:.0f} | {:.0f}% | {:.0f} µs | {:.0f} µs | {:.0f} µs | {} |".format(
    mutate["protocol"], mutate["concurrency"], echo["requests_per_second"],
    mutate["requests_per_second"], 100 * mutate["requests_per_second"] / echo["requests_per_second"],
    latency["p50_us"], latency["p99_us"], latency["p999_us"], echo["errors"] + mutate["errors"]))'
  done
done

# Memory of the real server process (not the in-process one, which shares its heap with the
# load generator).
workdir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$workdir"' EXIT
target/release/isvc-ingress serve --self-signed --standalone --config "$config" \
  --listen 127.0.0.1:18443 --admin-listen 127.0.0.1:18081 --log-format json \
  >"$workdir/ca.pem" 2>"$workdir/server.log" &
server=$!
for _ in $(seq 50); do
  curl -sf http://127.0.0.1:18081/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
idle=$(rss)
"$load" --addr 127.0.0.1:18443 --cacert "$workdir/ca.pem" --body "$body" \
  --concurrency 16 --duration "${seconds}s" --json >"$workdir/load.json" &
loader=$!
peak=0
while kill -0 "$loader" 2>/dev/null; do
  now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
  sleep 0.2
done
wait "$loader"
rate=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("{:.0f} req/s, {} errors".format(r["requests_per_second"], r["errors"]))' "$workdir/load.json")
echo
echo "Separate serve process, HTTP/1.1, concurrency 16, ${seconds}s: $rate; RSS idle $((idle / 1024)) MiB, peak under load $((peak / 1024)) MiB."
