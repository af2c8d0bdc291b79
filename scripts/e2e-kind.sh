#!/usr/bin/env bash
# End-to-end check on a throw-away kind cluster: build the image, install isvc-ingress with the
# self-signed overlay on manifests/dev (no KServe needed), then
#   - a good InferenceService gets the isvc-ingress.io/url annotation, its Ingress and status;
#   - a bad InferenceService and a bad inferenceservice-config are refused by `kubectl apply`
#     with our message.
# Needs kind, docker (with a running engine), kubectl and cargo. Where kind or docker is
# missing it says so and exits 0; CI never runs it.
#
# Usage: scripts/e2e-kind.sh            (from anywhere; KIND_CLUSTER_NAME to rename the cluster)
# Note: it (re)writes certs/ca.crt, certs/tls.crt and certs/tls.key (git-ignored).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in kind docker; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "e2e-kind: $tool is not installed; skipping the end-to-end test"
    exit 0
  fi
done
if ! docker info >/dev/null 2>&1; then
  echo "e2e-kind: no Docker engine is reachable; skipping the end-to-end test"
  exit 0
fi
for tool in kubectl cargo; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "e2e-kind: $tool is required" >&2
    exit 1
  }
done

CLUSTER="${KIND_CLUSTER_NAME:-isvc-ingress-e2e}"
# The tag the Deployment names (imagePullPolicy IfNotPresent: the loaded image is used).
IMAGE="isvc-ingress:latest"
NAMESPACE="isvc-ingress"
ISVC="sklearn-iris"
ISVC_NAMESPACE="default"
kc() { kubectl --context "kind-${CLUSTER}" "$@"; }

log() { printf '\n== %s\n' "$*"; }
fail() {
  echo "e2e-kind: FAIL: $*" >&2
  echo "--- isvc-ingress logs" >&2
  kc -n "$NAMESPACE" logs deployment/isvc-ingress --tail=50 >&2 || true
  exit 1
}

cleanup() {
  log "deleting kind cluster ${CLUSTER}"
  kind delete cluster --name "$CLUSTER" || true
}
trap cleanup EXIT

# Retries a command (the webhook's endpoints can lag the rollout by a moment).
retry() {
  local attempts=$1
  shift
  local n
  for ((n = 1; n <= attempts; n++)); do
    if "$@"; then
      return 0
    fi
    sleep 2
  done
  return 1
}

# Prints a jsonpath of the good ISVC, or nothing.
isvc_field() {
  kc -n "$ISVC_NAMESPACE" get inferenceservice "$ISVC" -o "jsonpath=$1" 2>/dev/null || true
}

# Waits until a jsonpath of the good ISVC equals the expected value.
wait_isvc_field() {
  local path=$1 expected=$2 value n
  for ((n = 0; n < 60; n++)); do
    value=$(isvc_field "$path")
    if [[ "$value" == "$expected" ]]; then
      return 0
    fi
    sleep 2
  done
  fail "InferenceService ${path} is '${value}', expected '${expected}'"
}

# Applies stdin and expects a refusal naming `field` from our webhook.
expect_refusal() {
  local what=$1 field=$2 manifest output
  manifest=$(cat)
  if output=$(kc apply -f - <<<"$manifest" 2>&1); then
    fail "the ${what} was accepted: ${output}"
  fi
  echo "$output"
  grep -q 'denied the request' <<<"$output" || fail "the ${what} was not refused by a webhook"
  grep -qF "$field" <<<"$output" || fail "the refusal of the ${what} does not name ${field}"
}

log "creating kind cluster ${CLUSTER}"
kind create cluster --name "$CLUSTER" --wait 120s

log "building ${IMAGE}"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "applying manifests/dev (InferenceService CRD, kserve namespace, inferenceservice-config)"
# Server-side: the CRD is too large for client-side apply's last-applied annotation.
kc apply --server-side -k manifests/dev
kc wait --for condition=established --timeout=60s crd/inferenceservices.serving.kserve.io

log "generating the webhook certificate into certs/"
cargo run --release --quiet -- certs --service isvc-ingress --namespace "$NAMESPACE" --out certs

log "installing isvc-ingress (manifests/self-signed)"
kc apply -k manifests/self-signed
# No KServe controller here: isvc-ingress writes the routes itself (manifests/dev's config
# turns KServe's route creation off, as --route-owner isvc-ingress requires).
kc -n "$NAMESPACE" set env deployment/isvc-ingress ISVC_INGRESS_ROUTE_OWNER=isvc-ingress
kc -n "$NAMESPACE" rollout status deployment/isvc-ingress --timeout=180s

log "a good InferenceService is admitted and annotated"
retry 15 kc apply -f manifests/dev/inferenceservice.yaml || fail "the good InferenceService was refused"
expected_url="http://${ISVC}-${ISVC_NAMESPACE}.example.com"
url=$(isvc_field '{.metadata.annotations.isvc-ingress\.io/url}')
[[ "$url" == "$expected_url" ]] || fail "isvc-ingress.io/url is '${url}', expected '${expected_url}'"
echo "isvc-ingress.io/url: ${url}"
echo "isvc-ingress.io/route-kind: $(isvc_field '{.metadata.annotations.isvc-ingress\.io/route-kind}')"

log "the reconciler writes its route and status"
# The Ingress API is always served; the Gateway API, Istio and Knative CRDs are not installed.
for ((n = 0; n < 60; n++)); do
  if kc -n "$ISVC_NAMESPACE" get ingress "$ISVC" >/dev/null 2>&1; then
    break
  fi
  sleep 2
done
kc -n "$ISVC_NAMESPACE" get ingress "$ISVC" -o yaml || fail "no Ingress ${ISVC_NAMESPACE}/${ISVC}"
managed_by=$(kc -n "$ISVC_NAMESPACE" get ingress "$ISVC" \
  -o 'jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by}')
[[ "$managed_by" == "isvc-ingress" ]] || fail "the Ingress is not managed by isvc-ingress"
host=$(kc -n "$ISVC_NAMESPACE" get ingress "$ISVC" -o 'jsonpath={.spec.rules[0].host}')
[[ "http://${host}" == "$expected_url" ]] || fail "the Ingress serves '${host}', not the URL's host"
wait_isvc_field '{.status.conditions[?(@.type=="IngressReady")].status}' True
wait_isvc_field '{.status.url}' "$expected_url"

log "a bad InferenceService is refused"
expect_refusal "bad InferenceService" "isvc-ingress.io/route" <<EOF
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: bad-route
  namespace: ${ISVC_NAMESPACE}
  annotations:
    isvc-ingress.io/route: Bogus
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      storageUri: gs://kfserving-examples/models/sklearn/1.0/model
EOF

log "a bad inferenceservice-config is refused"
expect_refusal "bad inferenceservice-config" "config.ingress.urlScheme" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: inferenceservice-config
  namespace: kserve
data:
  ingress: |-
    {
        "ingressGateway": "knative-serving/knative-ingress-gateway",
        "ingressDomain": "example.com",
        "urlScheme": "ftp",
        "disableIstioVirtualHost": true,
        "disableIngressCreation": true
    }
  deploy: |-
    {"defaultDeploymentMode": "Standard"}
EOF

log "e2e-kind: PASS"
