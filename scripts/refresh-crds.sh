#!/usr/bin/env bash
# Refreshes the upstream CRDs in tests/crds/ (and the InferenceService CRD and KServe's shipped
# inferenceservice-config that manifests/dev and config/ carry) from the Go module proxy: each
# upstream project publishes its CRDs inside its Go module, so `go mod download` of a pinned
# version is the whole fetch. Versions are pinned below; tests/crds/README.md records them.
#
# Usage: scripts/refresh-crds.sh        (needs Go; reaches only the Go module proxy)
set -euo pipefail
cd "$(dirname "$0")/.."

GATEWAY_API=sigs.k8s.io/gateway-api@v1.6.3
ISTIO_API=istio.io/api@v1.32.0
KNATIVE_SERVING=knative.dev/serving@v0.51.0
KSERVE=github.com/kserve/kserve@v0.19.0

export GOTOOLCHAIN=local GOFLAGS=-mod=mod
module_dir() {
  local dir
  dir=$(cd "$(mktemp -d)" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || { echo "refresh-crds: go mod download $1 gave no directory" >&2; exit 1; }
  echo "$dir"
}
# The YAML document of a multi-document file whose metadata.name is $2.
document_named() {
  awk -v name="$2" '
    # awk runs END after `exit` too: END alone prints the document, once.
    /^---/ { if (found) exit; doc = ""; next }
    { doc = doc $0 "\n" }
    $0 == "  name: " name { found = 1 }
    END { if (found) printf "%s", doc }
  ' "$1"
}

gateway=$(module_dir "$GATEWAY_API")
istio=$(module_dir "$ISTIO_API")
knative=$(module_dir "$KNATIVE_SERVING")
kserve=$(module_dir "$KSERVE")

out=tests/crds
install -m 644 "$gateway/config/crd/standard/gateway.networking.k8s.io_gateways.yaml" "$out/"
install -m 644 "$gateway/config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml" "$out/"
install -m 644 "$gateway/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" "$out/"
document_named "$istio/kubernetes/customresourcedefinitions.gen.yaml" virtualservices.networking.istio.io \
  > "$out/networking.istio.io_virtualservices.yaml"
document_named "$istio/kubernetes/customresourcedefinitions.gen.yaml" gateways.networking.istio.io \
  > "$out/networking.istio.io_gateways.yaml"
install -m 644 "$knative/config/core/300-resources/domain-mapping.yaml" "$out/serving.knative.dev_domainmappings.yaml"
install -m 644 "$kserve/config/crd/full/serving.kserve.io_inferenceservices.yaml" "$out/"
install -m 644 "$kserve/config/crd/full/serving.kserve.io_inferenceservices.yaml" manifests/dev/
install -m 644 "$kserve/config/configmap/inferenceservice.yaml" config/kserve-inferenceservice-config.yaml
for file in "$out"/*.yaml; do
  [ -s "$file" ] || { echo "refresh-crds: $file is empty" >&2; exit 1; }
done
echo "refreshed: $GATEWAY_API $ISTIO_API $KNATIVE_SERVING $KSERVE"
