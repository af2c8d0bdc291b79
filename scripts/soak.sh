#!/usr/bin/env bash
# Soak and burst of a separate `isvc-ingress serve` process on loopback (docs/performance.md):
#  1. the maximum: a closed-loop run of /mutate, HTTP/1.1, concurrency 16, 20 s;
#  2. the soak: /mutate paced at 70% of that maximum for the soak duration, with throughput,
#     errors and latency per minute, and the server's RSS sampled every 5 s;
#  3. the burst: N connections opened at once, one review each; every one must be answered or
#     refused, none left hanging, and the server must still be ready and answering afterwards.
# Prints Markdown; exits non-zero if any request failed, any burst connection hung, or the
# server died.
# Usage: scripts/soak.sh [soak duration, default 10m] [burst connections, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
soak="${1:-10m}"
burst="${2:-2000}"
body=tests/fixtures/admission/isvc-create-3kb.json
config=tests/fixtures/config/gateway-api-two-domains.yaml
cargo build --release --quiet --bin isvc-ingress --bin isvc-ingress-load
load=target/release/isvc-ingress-load

workdir=$(mktemp -d)
server=""
sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT
# shellcheck source=scripts/local-server.sh
. scripts/local-server.sh
start_local_server "$config" "$workdir"
idle=$(rss_kib)
target=(--addr 127.0.0.1:18443 --cacert "$workdir/ca.pem" --body "$body")

"$load" "${target[@]}" --concurrency 16 --duration 20s --json >"$workdir/max.json"
max=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_per_second"])' "$workdir/max.json")
rate=$(python3 -c "print(round(0.7 * $max))")
after_max=$(rss_kib)

# RSS every 5 s during the soak: "seconds rss_kib" lines.
(
  started=$(date +%s)
  while kill -0 "$server" 2>/dev/null; do
    echo "$(($(date +%s) - started)) $(rss_kib)"
    sleep 5
  done
) >"$workdir/rss.txt" &
sampler=$!
"$load" "${target[@]}" --concurrency 16 --rate "$rate" --duration "$soak" --interval 60s \
  --json >"$workdir/soak.json"
kill "$sampler" 2>/dev/null || true
sampler=""

"$load" "${target[@]}" --burst "$burst" --json >"$workdir/burst.json"
after_burst=$(rss_kib)
ready=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18081/readyz || echo 000)
"$load" "${target[@]}" --concurrency 1 --duration 1s --json >"$workdir/after.json"

python3 - "$workdir" "$idle" "$after_max" "$after_burst" "$ready" "$soak" <<'PY'
import json, sys
workdir, idle, after_max, after_burst, ready, soak = sys.argv[1:]
load = lambda name: json.load(open(f"{workdir}/{name}.json"))
maximum, run, burst, after = load("max"), load("soak"), load("burst"), load("after")
mib = lambda kib: f"{int(kib) / 1024:.1f} MiB"
samples = [tuple(map(int, line.split())) for line in open(f"{workdir}/rss.txt") if line.strip()]
print(f"Maximum (closed loop, HTTP/1.1, concurrency 16, 20 s): {maximum['requests_per_second']:,.0f} req/s, "
      f"{maximum['errors']} errors, p99 {maximum['latency']['p99_us']:,.0f} µs.")
print()
print(f"Soak: {soak} at {run['target_rate']:,.0f} req/s (70% of the maximum), concurrency 16, HTTP/1.1: "
      f"{run['requests']:,} requests, {run['requests_per_second']:,.0f} req/s, **{run['errors']} failed**; "
      f"whole run p50 {run['latency']['p50_us']:,.0f} µs, p99 {run['latency']['p99_us']:,.0f} µs, "
      f"p99.9 {run['latency']['p999_us']:,.0f} µs, max {run['latency']['max_us']:,.0f} µs.")
print()
print("| minute | req/s | errors | p50 | p99 | p99.9 | server RSS at the end of the minute |")
print("|---|---|---|---|---|---|---|")
for interval in run["intervals"]:
    end = interval["start_s"] + 60
    rss = min(samples, key=lambda sample: abs(sample[0] - end))[1] if samples else 0
    latency = interval["latency"]
    print(f"| {interval['start_s'] / 60 + 1:.0f} | {interval['requests_per_second']:,.0f} | {interval['errors']} | "
          f"{latency['p50_us']:,.0f} µs | {latency['p99_us']:,.0f} µs | {latency['p999_us']:,.0f} µs | {mib(rss)} |")
print()
first, last = (samples[0][1], samples[-1][1]) if samples else (0, 0)
print(f"Server RSS: {mib(idle)} idle; {mib(after_max)} after the maximum run; soak start {mib(first)}, "
      f"soak end {mib(last)}, soak peak {mib(max(s[1] for s in samples) if samples else 0)}.")
print()
print(f"Burst: {burst['connections']:,} connections at once: {burst['answered']:,} answered "
      f"({burst['answered_ok']:,} with 200), {burst['refused']} refused, **{burst['hung']} hung**; "
      f"latency p50 {burst['latency']['p50_us'] / 1000:,.0f} ms, p99 {burst['latency']['p99_us'] / 1000:,.0f} ms, "
      f"max {burst['latency']['max_us'] / 1000:,.0f} ms. Afterwards: /readyz {ready}, "
      f"{after['requests']:,} reviews answered in 1 s with {after['errors']} errors; RSS {mib(after_burst)}.")
failed = run["errors"] > 0 or burst["hung"] > 0 or ready != "200" or after["errors"] > 0 or after["requests"] == 0
sys.exit(1 if failed else 0)
PY
