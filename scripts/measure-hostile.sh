#!/usr/bin/env bash
# Measures the server under hostile clients (issue 12), loopback only, and prints Markdown for
# docs/performance.md and docs/security.md: for each attack, 2,000 hostile connections (by
# default) against a fresh release `isvc-ingress serve` with its default limits, the peak
# resident memory of that process (VmHWM) and the p99 and maximum latency of normal traffic
# during the attack: a review every 10 ms on an HTTP/2 connection opened before the attack (as
# kube-apiserver keeps one) and a kubelet-style `GET /livez` on a fresh connection every
# 100 ms. Attackers whose connections are closed connect again after 10 s; the last row
# (churn) has them come back after 1 s instead, a flood of ~2,000 new TLS connections a
# second, to show what connection churn costs.
# Usage: scripts/measure-hostile.sh [seconds per attack, default 10] [attackers, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
attackers="${2:-2000}"
body=tests/fixtures/admission/isvc-create-3kb.json
config=tests/fixtures/config/gateway-api-two-domains.yaml
# The attackers and the server each hold a descriptor per connection.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((attackers * 2 + 1024)) ]; then
  ulimit -n "$(ulimit -Hn)"
fi
cargo build --release --quiet --bin isvc-ingress --bin isvc-ingress-load
load=target/release/isvc-ingress-load

workdir=$(mktemp -d)
server=
trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$workdir"' EXIT
# shellcheck source=scripts/local-server.sh
. scripts/local-server.sh

load_before=$(cut -d' ' -f1 /proc/loadavg)
echo "| attack | port | hostile connections opened | closed by the server | peak RSS | review p99 | review max | probe p99 | probe max | errors |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for case in unfinished-headers:webhook:10s unfinished-headers:admin:10s idle-headers:webhook:10s \
  idle-headers:admin:10s declared-length:webhook:10s declared-chunked:webhook:10s \
  declared-http2:webhook:10s partial-http2:webhook:10s idle-headers:webhook:1s; do
  IFS=: read -r attack port pause <<<"$case"
  start_local_server "$config" "$workdir"
  "$load" --addr 127.0.0.1:18443 --admin-addr 127.0.0.1:18081 --cacert "$workdir/ca.pem" \
    --body "$body" --path '/validate?timeout=10s' --attack "$attack" --attack-port "$port" \
    --attackers "$attackers" --reconnect-pause "$pause" --duration "${seconds}s" --json \
    >"$workdir/report.json"
  peak=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=
  python3 - "$workdir/report.json" "$peak" "$pause" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
peak_mib = int(sys.argv[2]) / 1024
ms = lambda us: "{:.1f} ms".format(us / 1000)
name = r["attack"] + (" (churn: back after {})".format(sys.argv[3]) if sys.argv[3] != "10s" else "")
print("| {} | {} | {:,} | {:,} | {:.1f} MiB | {} | {} | {} | {} | {} |".format(
    name, r["port"], r["hostile_opened"], r["hostile_closed"], peak_mib,
    ms(r["review_latency"]["p99_us"]), ms(r["review_latency"]["max_us"]),
    ms(r["probe_latency"]["p99_us"]), ms(r["probe_latency"]["max_us"]),
    r["review_errors"] + r["probe_errors"]))
EOF
done
echo
echo "scripts/measure-hostile.sh $seconds $attackers on $(nproc) cores (load average before: $load_before); a fresh server per attack, \`serve\` defaults."
