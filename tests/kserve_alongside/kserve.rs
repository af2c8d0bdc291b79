//! KServe's own controller manager on the test control plane: its CRDs, its shipped
//! `inferenceservice-config`, its ClusterServingRuntimes, certificates in controller-runtime's
//! webhook directory, its InferenceService webhooks registered by URL, and — with no kubelet —
//! the Deployment and HTTPRoute statuses a cluster's controllers would write.
//!
//! Everything KServe-specific comes from the `github.com/kserve/kserve` module that
//! `scripts/kserve-manager.sh` builds (the version is the one `tests/control-plane/kserve/go.mod`
//! pins), so a KServe upgrade is a one-line change there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::control_plane::{ControlPlane, Supervised, eventually, free_port, repository};
use crate::install::webhook_certificates;

/// KServe's namespace (`POD_NAMESPACE`), where the manager reads `inferenceservice-config`.
pub const KSERVE_NAMESPACE: &str = "kserve";

/// The KServe release the wrapper module pins (`tests/control-plane/kserve/go.mod`).
pub fn kserve_version() -> String {
    let go_mod =
        std::fs::read_to_string(repository().join("tests/control-plane/kserve/go.mod")).unwrap();
    go_mod
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("github.com/kserve/kserve ")
                .and_then(|rest| rest.split_whitespace().next())
        })
        .expect("tests/control-plane/kserve/go.mod requires github.com/kserve/kserve")
        .to_owned()
}

/// The cache directory of `scripts/kserve-manager.sh`: `bin/manager`, `crd/`, `runtimes/`.
/// Built on first use (minutes, once per version and machine), then reused; fails the
/// test, saying what to install, where Go or the module proxy is missing.
pub fn kserve_cache() -> &'static Path {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| {
        let output = Command::new("bash")
            .arg(repository().join("scripts/kserve-manager.sh"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("bash runs scripts/kserve-manager.sh");
        assert!(
            output.status.success(),
            "scripts/kserve-manager.sh could not provide KServe's manager (its messages are above)"
        );
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

/// KServe's shipped `inferenceservice-config` (`config/kserve-inferenceservice-config.yaml`)
/// with `ingress` keys overridden by `ingress` and `deploy` replaced by `deploy` (when given).
pub fn kserve_config(ingress: &Value, deploy: Option<&Value>) -> Value {
    let path = repository().join("config/kserve-inferenceservice-config.yaml");
    let mut config_map: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut ingress_config: Value =
        serde_json::from_str(config_map["data"]["ingress"].as_str().unwrap()).unwrap();
    for (key, value) in ingress.as_object().unwrap() {
        ingress_config[key] = value.clone();
    }
    config_map["data"]["ingress"] = json!(serde_json::to_string_pretty(&ingress_config).unwrap());
    if let Some(deploy) = deploy {
        config_map["data"]["deploy"] = json!(deploy.to_string());
    }
    config_map
}

/// Installs what KServe's manager needs before it starts: its namespace, every CRD of
/// `config/crd/full` (its controllers watch them), its ClusterServingRuntimes (the predictor
/// Deployment is built from the runtime a model format selects) and `config_map`.
pub fn install_kserve(plane: &ControlPlane, config_map: &Value) {
    plane.namespace(KSERVE_NAMESPACE);
    let cache = kserve_cache();
    let output = plane.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &cache.join("crd").display().to_string(),
    ]);
    assert!(
        output.status.success(),
        "KServe's CRDs: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        eventually(Duration::from_secs(60), || plane
            .kubectl(&[
                "wait",
                "--for=condition=Established",
                "crd",
                "--all",
                "--timeout=30s"
            ])
            .status
            .success()),
        "KServe's CRDs never became Established"
    );
    plane.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        &cache.join("runtimes").display().to_string(),
    ]);
    plane.apply(&config_map.to_string());
}

/// A ServiceAccount `default` in `namespace`: KServe's credential builder reads it for every
/// predictor, and without a controller manager nothing creates it.
pub fn models_namespace(plane: &ControlPlane, namespace: &str) {
    plane.namespace(namespace);
    plane.apply(
        &json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": namespace}})
        .to_string(),
    );
}

/// KServe's manager, running with the admin kubeconfig.
pub struct Manager {
    pub process: Supervised,
    pub webhook_port: u16,
}

/// Starts KServe's manager: certificates for 127.0.0.1 in
/// `$TMPDIR/k8s-webhook-server/serving-certs/` (controller-runtime's default directory; the
/// manager has no flag to turn its webhook server off), metrics and probes off, a free webhook
/// port. Waits until its InferenceService controller runs and its webhook answers, then
/// registers KServe's InferenceService defaulter and validator
/// (`config/webhook/manifests.yaml`) by URL, and waits until the API server calls them (a
/// dry-run probe with `probe_labels`, which the domain template may read).
pub fn start_manager(plane: &ControlPlane, probe_labels: &Value) -> Manager {
    let scratch = plane.directory().join("kserve-manager");
    let certificates = scratch.join("k8s-webhook-server/serving-certs");
    let ca_bundle = webhook_certificates(
        "kserve-webhook-server-service",
        KSERVE_NAMESPACE,
        &certificates,
    );

    let webhook_port = free_port();
    let process = Supervised::spawn(
        &kserve_cache().join("bin/manager"),
        &[
            "--metrics-addr=0".to_owned(),
            "--health-probe-addr=0".to_owned(),
            format!("--webhook-port={webhook_port}"),
        ],
        &[
            ("KUBECONFIG", plane.admin_kubeconfig.display().to_string()),
            ("POD_NAMESPACE", KSERVE_NAMESPACE.to_owned()),
            ("TMPDIR", scratch.display().to_string()),
        ],
        &plane.directory().join("kserve-manager.log"),
    );
    let manager = Manager {
        process,
        webhook_port,
    };
    let started = eventually(Duration::from_secs(120), || {
        let log = std::fs::read_to_string(&manager.process.log).unwrap_or_default();
        log.contains("\"Starting workers\"") && log.contains("\"controller\":\"inferenceservice\"")
            || !manager.process.is_running()
    });
    assert!(
        started && manager.process.is_running(),
        "KServe's manager did not start:\n{}",
        manager.process.log_tail(40)
    );

    let webhook = |kind: &str, name: &str, path: &str| {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": "inferenceservice.serving.kserve.io"},
            "webhooks": [{
                "name": name,
                "clientConfig": {
                    "url": format!("https://127.0.0.1:{webhook_port}{path}"),
                    "caBundle": ca_bundle,
                },
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1beta1"],
                "rules": [{
                    "apiGroups": ["serving.kserve.io"],
                    "apiVersions": ["v1beta1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["inferenceservices"],
                }],
            }],
        })
    };
    plane.apply(
        &json!({"apiVersion": "v1", "kind": "List", "items": [
            webhook(
                "MutatingWebhookConfiguration",
                "inferenceservice.kserve-webhook-server.defaulter",
                "/mutate-serving-kserve-io-v1beta1-inferenceservice",
            ),
            webhook(
                "ValidatingWebhookConfiguration",
                "inferenceservice.kserve-webhook-server.validator",
                "/validate-serving-kserve-io-v1beta1-inferenceservice",
            ),
        ]})
        .to_string(),
    );
    // A new webhook configuration takes effect some time after it is stored
    // (kubernetes#54712): dry-run a probe until KServe's defaulter has set its resources.
    let probe = json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "probe", "namespace": KSERVE_NAMESPACE, "labels": probe_labels},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
    })
    .to_string();
    let called = eventually(Duration::from_secs(60), || {
        let output = plane.kubectl_with_input(
            &["create", "--dry-run=server", "-o", "json", "-f", "-"],
            Some(&probe),
        );
        output.status.success()
            && serde_json::from_slice::<Value>(&output.stdout)
                .is_ok_and(|object| object["spec"]["predictor"]["model"]["resources"].is_object())
    });
    assert!(
        called,
        "the API server never called KServe's defaulter:\n{}",
        manager.process.log_tail(40)
    );
    manager
}

/// The objects `kubectl get <selection> -o json` lists.
fn items(plane: &ControlPlane, selection: &[&str]) -> Vec<Value> {
    let mut args = vec!["get"];
    args.extend(selection);
    args.extend(["-o", "json"]);
    let list: Value = serde_json::from_str(&plane.kubectl_ok(&args)).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// A merge patch of the status subresource of `object` (of `kind`), as its controller writes it.
fn patch_status(plane: &ControlPlane, kind: &str, object: &Value, patch: &Value) {
    plane.kubectl_ok(&[
        "patch",
        kind,
        object["metadata"]["name"].as_str().unwrap(),
        "-n",
        object["metadata"]["namespace"].as_str().unwrap(),
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
}

/// What the kubelet and the Deployment controller would report for every Deployment of
/// `namespace` KServe made (label `serving.kserve.io/inferenceservice`) that does not say
/// `Available` yet: KServe's `PropagateRawStatus` reads `PredictorReady` (and the other
/// components' conditions) from exactly this status. Returns how many it wrote.
pub fn make_deployments_available(plane: &ControlPlane, namespace: &str) -> usize {
    let deployments = items(
        plane,
        &[
            "deployments",
            "-n",
            namespace,
            "-l",
            "serving.kserve.io/inferenceservice",
        ],
    );
    let mut written = 0;
    for deployment in &deployments {
        let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1);
        let available = deployment["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|condition| condition["type"] == "Available" && condition["status"] == "True");
        if available && deployment["status"]["observedGeneration"].as_i64() == Some(generation) {
            continue;
        }
        let patch = json!({"status": {
            "observedGeneration": generation,
            "replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1,
            "conditions": [{
                "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
                "lastUpdateTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z",
            }],
        }});
        patch_status(plane, "deployment", deployment, &patch);
        written += 1;
    }
    written
}

/// What a Gateway controller would report for every HTTPRoute of `namespace` that has no
/// parent status yet: each parentRef `Accepted` and `ResolvedRefs`, as KServe's
/// `isHTTPRouteReady` and isvc-ingress's readiness read it. Returns how many it wrote.
pub fn accept_httproutes(plane: &ControlPlane, namespace: &str) -> usize {
    let routes = items(
        plane,
        &["httproutes.gateway.networking.k8s.io", "-n", namespace],
    );
    let mut written = 0;
    for route in &routes {
        let generation = route["metadata"]["generation"].as_i64().unwrap_or(1);
        let parents = route["status"]["parents"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let current = !parents.is_empty()
            && parents.iter().all(|parent| {
                parent["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|condition| condition["observedGeneration"].as_i64() == Some(generation))
            });
        if current {
            continue;
        }
        let condition = |kind: &str, reason: &str| {
            json!({"type": kind, "status": "True", "reason": reason, "message": "",
                   "observedGeneration": generation,
                   "lastTransitionTime": "2026-01-01T00:00:00Z"})
        };
        let parents: Vec<Value> = route["spec"]["parentRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parent| {
                json!({
                    "parentRef": parent,
                    "controllerName": "example.com/gateway-controller",
                    "conditions": [condition("Accepted", "Accepted"), condition("ResolvedRefs", "ResolvedRefs")],
                })
            })
            .collect();
        patch_status(
            plane,
            "httproute",
            route,
            &json!({"status": {"parents": parents}}),
        );
        written += 1;
    }
    written
}

/// Plays the kubelet and the Gateway controller for `namespaces` until `condition` holds or
/// `limit` passes: whether it held.
pub fn settle(
    plane: &ControlPlane,
    namespaces: &[&str],
    limit: Duration,
    mut condition: impl FnMut() -> bool,
) -> bool {
    eventually(limit, || {
        for namespace in namespaces {
            make_deployments_available(plane, namespace);
            accept_httproutes(plane, namespace);
        }
        condition()
    })
}
