#!/usr/bin/env bash
# Measures the webhook on this machine, loopback only, and prints Markdown for
# docs/performance.md:
#  1. throughput and p50/p99/p99.9 latency of the echo baseline, /mutate, /validate and the
#     status mutator, with the realistic 3 KB ISVC review, at concurrency 1, 16 and 64 over
#     HTTP/1.1 and HTTP/2, each against a fresh in-process server (isvc-ingress-load --matrix),
#     and the plot docs/latency-vs-concurrency.svg drawn by the load tool from those runs;
#  2. resident memory of a separate `isvc-ingress serve` process before and during load.
# Usage: scripts/measure-webhook.sh [seconds per run, default 10] [plot path]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
plot="${2:-docs/latency-vs-concurrency.svg}"
body=tests/fixtures/admission/isvc-create-3kb.json
status_body=tests/fixtures/admission/isvc-status-update.json
config=tests/fixtures/config/gateway-api-two-domains.yaml
cargo build --release --quiet --bin isvc-ingress --bin isvc-ingress-load
load=target/release/isvc-ingress-load

# The rows are kept next to the plot (same name, .jsonl) as the data behind the table.
rows="${plot%.svg}.jsonl"
"$load" --matrix --body "$body" --status-body "$status_body" --config "$config" \
  --levels 1,16,64 --duration "${seconds}s" --plot "$plot" --json | tee "$rows" | python3 -c '
import json, sys
rows = [json.loads(line) for line in sys.stdin if line.strip()]
echo = {(r["protocol"], r["concurrency"]): r["requests_per_second"] for r in rows if r["endpoint"] == "echo"}
print("| protocol | concurrency | endpoint | req/s | of echo | p50 | p99 | p99.9 | errors |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    l = r["latency"]
    share = 100 * r["requests_per_second"] / echo[(r["protocol"], r["concurrency"])]
    print("| {} | {} | {} | {:,.0f} | {:.0f}% | {:,.0f} µs | {:,.0f} µs | {:,.0f} µs | {} |".format(
        r["protocol"], r["concurrency"], r["endpoint"], r["requests_per_second"], share,
        l["p50_us"], l["p99_us"], l["p999_us"], r["errors"]))'
echo
echo "Plot: $plot (rows: $rows)"

# Memory of the real server process (not the in-process one, which shares its heap with the
# load generator).
workdir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$workdir"' EXIT
# shellcheck source=scripts/local-server.sh
. scripts/local-server.sh
start_local_server "$config" "$workdir"
idle=$(rss_kib)
"$load" --addr 127.0.0.1:18443 --cacert "$workdir/ca.pem" --body "$body" \
  --concurrency 16 --duration "${seconds}s" --json >"$workdir/load.json" &
loader=$!
peak=0
while kill -0 "$loader" 2>/dev/null; do
  now=$(rss_kib); [ "$now" -gt "$peak" ] && peak=$now
  sleep 0.2
done
wait "$loader"
rate=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("{:.0f} req/s, {} errors".format(r["requests_per_second"], r["errors"]))' "$workdir/load.json")
echo
echo "Separate serve process, HTTP/1.1, concurrency 16, ${seconds}s: $rate; RSS idle $((idle / 1024)) MiB, peak under load $((peak / 1024)) MiB."
