#!/usr/bin/env bash
# Builds the real control plane the end-to-end tests run against: kube-apiserver and kubectl
# from the Go module k8s.io/kubernetes, and etcd from go.etcd.io/etcd/server/v3, each from its
# own wrapper module in tests/control-plane/ (go.mod and go.sum committed). Nothing is fetched
# but Go modules, through the Go module proxy. The binaries go to a cache outside the work tree,
# keyed by version, and are built only when that cache lacks them:
#
#   ${ISVC_INGRESS_CACHE:-~/.cache/isvc-ingress}/control-plane/kubernetes-<v>_etcd-<v>/bin/
#
# Usage: scripts/control-plane.sh        build if needed, then print the bin directory
# Needs Go 1.26 or newer (https://go.dev/doc/install) and the Go module proxy; a cold build
# takes about 10-20 minutes on 2 cores (docs/testing.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
modules=$root/tests/control-plane

module_version() { # module go.mod -> the version it requires
  sed -n "s#^[[:space:]]*$1 \(v[^ ]*\).*#\1#p" "$2" | head -n 1
}
kubernetes_version=$(module_version k8s.io/kubernetes "$modules/kubernetes/go.mod")
etcd_version=$(module_version go.etcd.io/etcd/server/v3 "$modules/etcd/go.mod")
[ -n "$kubernetes_version" ] && [ -n "$etcd_version" ] || {
  echo "control-plane.sh: cannot read the versions from $modules/*/go.mod" >&2
  exit 1
}
cache=${ISVC_INGRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/isvc-ingress}/control-plane/kubernetes-${kubernetes_version}_etcd-${etcd_version}
bin=$cache/bin
binaries=(kube-apiserver kubectl etcd)

complete() {
  local name
  for name in "${binaries[@]}"; do [ -x "$bin/$name" ] || return 1; done
}
if complete; then
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
control-plane.sh: the end-to-end tests need Go 1.26 or newer to build kube-apiserver and etcd
from their Go modules, and no 'go' is on PATH. Install Go (https://go.dev/doc/install) and
make sure the Go module proxy is reachable (GOPROXY), then run the tests again.
MSG
  exit 1
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly"
go_minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [ -z "$go_minor" ] || [ "$go_minor" -lt 26 ]; then
  echo "control-plane.sh: Go 1.26 or newer is needed (k8s.io/kubernetes $kubernetes_version says go 1.26), found $(go env GOVERSION)" >&2
  exit 1
fi

mkdir -p "$cache"
# Several test binaries may ask at once: one builds, the others wait for it.
exec 9>"$cache/.lock"
flock 9
if complete; then
  echo "$bin"
  exit 0
fi
staging=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$staging"' EXIT

started=$(date +%s)
echo "control-plane.sh: building kube-apiserver and kubectl $kubernetes_version, etcd $etcd_version into $bin (once per version)" >&2
# The version upstream's own build stamps (hack/lib/version.sh), so /version and kubectl's
# skew check see a real version.
minor=$(echo "$kubernetes_version" | cut -d. -f2)
stamp=""
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp="$stamp -X $package.gitVersion=$kubernetes_version -X $package.gitMajor=1 -X $package.gitMinor=$minor -X $package.gitTreeState=clean"
done
(cd "$modules/kubernetes" &&
  go build -ldflags "-s -w$stamp" -o "$staging/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver &&
  go build -ldflags "-s -w$stamp" -o "$staging/kubectl" k8s.io/kubernetes/cmd/kubectl)
(cd "$modules/etcd" && go build -ldflags "-s -w" -o "$staging/etcd" go.etcd.io/etcd/server/v3)
mkdir -p "$bin"
for name in "${binaries[@]}"; do mv "$staging/$name" "$bin/$name"; done
echo "control-plane.sh: built in $(($(date +%s) - started)) s" >&2
echo "$bin"
