#!/usr/bin/env bash
# Measures isvc-ingress at scale on the real control plane and writes the results into
# docs/performance.md ("Scale on the real control plane", between its measure-scale markers),
# with the rows (docs/rss-vs-isvcs.jsonl) and the plot of serve's memory against ISVC count
# (docs/rss-vs-isvcs.svg, drawn by isvc-ingress-load --plot-rss).
#
# What runs: benches/control_plane_scale.rs (release build) starts etcd and kube-apiserver of
# the end-to-end suite (scripts/control-plane.sh builds them on first use), installs
# isvc-ingress from its manifests, runs `isvc-ingress serve --route-owner isvc-ingress` as its
# ServiceAccount, and for each size N (the fleet grows from one size to the next): loads N ISVCs
# of the synthetic mix through the webhooks until every route and status is settled, measures
# the webhook's latency while idle, restarts serve (start-up with every route correct: time to
# ready, to no pending reconcile, RSS, writes), deletes every managed route and restarts serve
# (catch-up: time until all exist, API requests/s, writes), and changes ingressDomain (time until
# every route and status follows, writes against those needed), with admission traffic at a
# steady rate during the last three. Progress goes to stderr, one line per step.
#
# Usage: scripts/measure-scale.sh [sizes]     default 0,1000,10000 (about 85 minutes on 2 cores)
#        scripts/measure-scale.sh 0,200,1000  a quick run (about 10 minutes on 2 cores)
# Environment: CONTROL_PLANE_SCALE_RATE (admission requests/s during the steps, default 10),
#   CONTROL_PLANE_SCALE_QUIET_SECONDS (the idle latency run, default 120),
#   CONTROL_PLANE_SCALE_SERVE_ARGS (flags added to serve's in the measured steps, e.g.
#   '--concurrent-reconciles 8' to compare with the default),
#   SCALE_WRITE_DOCS=0 to print the results without touching docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${1:-0,1000,10000}"
case "$sizes" in
  *[!0-9,]* | "" | ,* | *, | *,,*)
    echo "measure-scale.sh: sizes must be ISVC counts separated by commas (e.g. 0,1000,10000), got '$sizes'" >&2
    exit 2
    ;;
esac
plot=docs/rss-vs-isvcs.svg
rows="${plot%.svg}.jsonl"

echo "measure-scale: etcd and kube-apiserver (scripts/control-plane.sh)" >&2
scripts/control-plane.sh >/dev/null
echo "measure-scale: building the benchmark, serve and the load tool (release)" >&2
cargo bench --quiet --bench control_plane_scale --no-run
cargo build --release --quiet --bin isvc-ingress-load

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
CONTROL_PLANE_SCALE_ISVCS="$sizes" \
  CONTROL_PLANE_SCALE_REPORT="$work/report.md" \
  CONTROL_PLANE_SCALE_ROWS="$work/rows.jsonl" \
  cargo bench --quiet --bench control_plane_scale
elapsed=$(($(date +%s) - started))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

if [ "${SCALE_WRITE_DOCS:-1}" = 0 ]; then
  echo "measure-scale: done in ${elapsed} s (docs/ left alone: SCALE_WRITE_DOCS=0)" >&2
  exit 0
fi
cp "$work/rows.jsonl" "$rows"
target/release/isvc-ingress-load --plot-rss "$rows" --rss-svg "$plot"
{
  cat "$work/report.md"
  echo
  echo "![serve's VmRSS and VmHWM against the ISVCs it caches](rss-vs-isvcs.svg)"
  echo
  echo '```sh'
  if [ -n "${CONTROL_PLANE_SCALE_SERVE_ARGS:-}" ]; then
    echo "CONTROL_PLANE_SCALE_SERVE_ARGS='$CONTROL_PLANE_SCALE_SERVE_ARGS' scripts/measure-scale.sh $sizes"
  else
    echo "scripts/measure-scale.sh $sizes"
  fi
  echo '```'
  echo
  echo "Measured on $(date -u +%Y-%m-%d) at commit \`$(git rev-parse --short HEAD)\`$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes under src/)'), $(nproc) cores, load average $load_before before and $load_after after the run, which took $((elapsed / 60)) min $((elapsed % 60)) s in all."
} >"$work/section.md"
python3 - "$work/section.md" <<'PY'
import sys
path = "docs/performance.md"
begin, end = "<!-- measure-scale:begin -->", "<!-- measure-scale:end -->"
doc = open(path).read()
if begin not in doc or end not in doc:
    sys.exit(f"measure-scale.sh: {path} lacks the markers {begin} and {end}")
section = open(sys.argv[1]).read().strip()
start = doc.index(begin) + len(begin)
doc = doc[:start] + "\n" + section + "\n" + doc[doc.index(end):]
open(path, "w").write(doc)
PY
echo "measure-scale: done in ${elapsed} s; wrote docs/performance.md, $plot and $rows" >&2
