#!/usr/bin/env bash
# Builds KServe's own controller manager (github.com/kserve/kserve/cmd/manager) for the suite that
# runs it alongside isvc-ingress (tests/kserve_alongside/, scripts/kserve-alongside.sh). The
# wrapper module tests/control-plane/kserve/ pins the release and repeats every replace and
# exclude line of KServe's own go.mod (Go ignores them in a dependency); go.sum is committed.
# Nothing is fetched but Go modules, through the Go module proxy. The binary, KServe's CRDs
# (config/crd/full of the same module) and its ClusterServingRuntimes (config/runtimes) go to a
# cache outside the work tree, keyed by version, and are built only when that cache lacks them:
#
#   ${ISVC_INGRESS_CACHE:-~/.cache/isvc-ingress}/kserve-<v>/bin/manager
#   ${ISVC_INGRESS_CACHE:-~/.cache/isvc-ingress}/kserve-<v>/crd/*.yaml
#   ${ISVC_INGRESS_CACHE:-~/.cache/isvc-ingress}/kserve-<v>/runtimes/*.yaml
#
# Usage: scripts/kserve-manager.sh       build if needed, then print the kserve-<v> directory
# Needs Go 1.26 or newer (https://go.dev/doc/install) and the Go module proxy; a cold build
# takes minutes on 2 cores (docs/testing.md gives the measured times).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
module=$root/tests/control-plane/kserve

kserve_version=$(sed -n 's#^[[:space:]]*github.com/kserve/kserve \(v[^ ]*\).*#\1#p' "$module/go.mod" | head -n 1)
[ -n "$kserve_version" ] || {
  echo "kserve-manager.sh: cannot read the KServe version from $module/go.mod" >&2
  exit 1
}
cache=${ISVC_INGRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isvc-ingress}/kserve-${kserve_version}

complete() {
  [ -x "$cache/bin/manager" ] && [ -s "$cache/crd/serving.kserve.io_inferenceservices.yaml" ] &&
    [ -s "$cache/runtimes/kserve-sklearnserver.yaml" ]
}
if complete; then
  echo "$cache"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
kserve-manager.sh: the KServe-alongside suite needs Go 1.26 or newer to build KServe's manager
from its Go module, and no 'go' is on PATH. Install Go (https://go.dev/doc/install) and make
sure the Go module proxy is reachable (GOPROXY), then run scripts/kserve-alongside.sh again.
MSG
  exit 1
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly"
go_minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [ -z "$go_minor" ] || [ "$go_minor" -lt 26 ]; then
  echo "kserve-manager.sh: Go 1.26 or newer is needed ($module/go.mod says go 1.26), found $(go env GOVERSION)" >&2
  exit 1
fi

mkdir -p "$cache"
# Several test binaries may ask at once: one builds, the others wait for it.
exec 9>"$cache/.lock"
flock 9
if complete; then
  echo "$cache"
  exit 0
fi
staging=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$staging"' EXIT

started=$(date +%s)
echo "kserve-manager.sh: building KServe's manager $kserve_version into $cache/bin (once per version)" >&2
(cd "$module" &&
  go build -ldflags "-s -w" -o "$staging/manager" github.com/kserve/kserve/cmd/manager &&
  source_dir=$(go list -m -f '{{.Dir}}' github.com/kserve/kserve) &&
  mkdir -p "$staging/crd" &&
  find "$source_dir/config/crd/full" -name '*.yaml' ! -name kustomization.yaml ! -name '*_patch.yaml' -exec cp {} "$staging/crd/" \; &&
  mkdir -p "$staging/runtimes" &&
  find "$source_dir/config/runtimes" -maxdepth 1 -name 'kserve-*.yaml' -exec cp {} "$staging/runtimes/" \;)
mkdir -p "$cache/bin"
rm -rf "$cache/crd" "$cache/runtimes"
mv "$staging/crd" "$cache/crd"
mv "$staging/runtimes" "$cache/runtimes"
mv "$staging/manager" "$cache/bin/manager"
echo "kserve-manager.sh: built in $(($(date +%s) - started)) s" >&2
echo "$cache"
