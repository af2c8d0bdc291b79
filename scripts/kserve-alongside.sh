#!/usr/bin/env bash
# Runs KServe's own controller manager next to isvc-ingress on the real control plane
# (tests/kserve_alongside/, docs/testing.md): builds what is missing (kube-apiserver, kubectl and
# etcd with scripts/control-plane.sh, KServe's manager with scripts/kserve-manager.sh; both
# cached outside the work tree), runs the suite's tests, which plain `cargo test` and .ci/run
# skip (#[ignore]), and regenerates docs/kserve-differential.md.
#
# Usage: scripts/kserve-alongside.sh [TEST-NAME-FILTER]
#   e.g. scripts/kserve-alongside.sh differential     only the differential (and its table)
# Needs Rust, and Go 1.26 or newer with the Go module proxy for a first build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

started=$(date +%s)
scripts/control-plane.sh >/dev/null
scripts/kserve-manager.sh >/dev/null
echo "kserve-alongside.sh: binaries ready after $(($(date +%s) - started)) s" >&2

# Each test starts its own control plane, KServe's manager and isvc-ingress; two at a time keep
# a 2-core machine responsive.
cargo test --test kserve_alongside -- --ignored --test-threads="${KSERVE_ALONGSIDE_THREADS:-2}" "$@"
echo "kserve-alongside.sh: done in $(($(date +%s) - started)) s; docs/kserve-differential.md is regenerated when the differential ran" >&2
