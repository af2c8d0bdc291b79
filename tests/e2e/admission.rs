//! Installed as a user installs it (its RBAC checked against docs/security.md), and admission
//! through the real API server: kubectl apply stores our annotations, every refusal the README
//! and the fixtures show is refused with our message, a bad `inferenceservice-config` is refused,
//! a delete is never blocked, `--subresource=status` passes through the status mutator,
//! `--dry-run=server` works, and the API server's own measure of our latency over a burst.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::{Value, json};

use crate::control_plane::{ControlPlane, repository};
use crate::fleet::{percentiles, webhook_latency_histogram};
use crate::inputs::{documents, isvc_inputs, render, render_input};
use crate::install::{NAMESPACE, SERVICE_ACCOUNT, install};

/// The rows of docs/security.md's RBAC table: (API group, resource) → verbs.
fn documented_permissions() -> BTreeMap<(String, String), BTreeSet<String>> {
    let text = std::fs::read_to_string(repository().join("docs/security.md")).unwrap();
    let section = &text[text.find("## RBAC").expect("docs/security.md has ## RBAC")..];
    let mut permissions = BTreeMap::new();
    for line in section
        .lines()
        .skip_while(|line| !line.starts_with("| Scope"))
        .skip(2)
    {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let group = cells[2].trim_matches('`').trim_matches('"').to_owned();
        let resource = cells[3].trim_matches('`').to_owned();
        let verbs = cells[4]
            .split(',')
            .map(|verb| verb.trim().to_owned())
            .collect();
        permissions.insert((group, resource), verbs);
    }
    assert!(
        !permissions.is_empty(),
        "no RBAC rows found in docs/security.md"
    );
    permissions
}

/// `kubectl auth can-i --list` for the ServiceAccount `account` of isvc-ingress's namespace, in
/// `namespace`: (group, resource) → verbs, for resource rules only.
fn granted_permissions(
    plane: &ControlPlane,
    account: &str,
    namespace: &str,
) -> BTreeMap<(String, String), BTreeSet<String>> {
    let user = format!("--as=system:serviceaccount:{NAMESPACE}:{account}");
    let text = plane.kubectl_ok(&["auth", "can-i", "--list", &user, "-n", namespace]);
    let mut permissions: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        // Resources   Non-Resource URLs   Resource Names   Verbs
        let columns: Vec<&str> = line.split_whitespace().collect();
        let Some(resource) = columns.first() else {
            continue;
        };
        if resource.starts_with('[') {
            continue; // a non-resource URL rule (discovery, /version, ...)
        }
        let verbs_start = line
            .find('[')
            .map(|start| &line[start..])
            .unwrap_or_default();
        let verbs_column = verbs_start
            .rsplit('[')
            .next()
            .unwrap_or_default()
            .trim_end_matches(']');
        // `inferenceservices.serving.kserve.io/status`: resource.group/subresource.
        let (resource, subresource) = match resource.split_once('/') {
            Some((resource, subresource)) => (resource, format!("/{subresource}")),
            None => (*resource, String::new()),
        };
        let (name, group) = resource.split_once('.').unwrap_or((resource, ""));
        permissions
            .entry((group.to_owned(), format!("{name}{subresource}")))
            .or_default()
            .extend(verbs_column.split_whitespace().map(str::to_owned));
    }
    permissions
}

/// A ServiceAccount bound to nothing: what it may do, every ServiceAccount may (the API
/// server's default roles for authenticated users).
const UNBOUND_ACCOUNT: &str = "nobody";

#[test]
fn installed_as_a_user_installs_it_and_admission_goes_through_the_api_server() {
    let plane = ControlPlane::start();
    eprintln!(
        "control plane: start to ready in {:?}",
        plane.start_to_ready
    );
    let installation = install(&plane, &[]);

    // 3a. The ServiceAccount can do what docs/security.md lists, and nothing more.
    let documented = documented_permissions();
    plane.kubectl_ok(&["create", "serviceaccount", UNBOUND_ACCOUNT, "-n", NAMESPACE]);
    for namespace in [NAMESPACE, "default"] {
        let granted = granted_permissions(&plane, SERVICE_ACCOUNT, namespace);
        let everyone = granted_permissions(&plane, UNBOUND_ACCOUNT, namespace);
        for ((group, resource), verbs) in &granted {
            let key = (group.clone(), resource.clone());
            let beyond_everyone: BTreeSet<String> = verbs
                .difference(&everyone.get(&key).cloned().unwrap_or_default())
                .cloned()
                .collect();
            if beyond_everyone.is_empty() {
                continue;
            }
            let allowed = documented.get(&key);
            assert!(
                allowed.is_some_and(|allowed| beyond_everyone.is_subset(allowed)),
                "in {namespace}, the ServiceAccount may {beyond_everyone:?} {resource}.{group}, which docs/security.md does not list"
            );
        }
        for ((group, resource), verbs) in &documented {
            if resource == "leases" && namespace != NAMESPACE {
                continue; // a Role in its own namespace only
            }
            let have = granted.get(&(group.clone(), resource.clone()));
            assert!(
                have.is_some_and(|have| verbs.is_subset(have)),
                "in {namespace}, docs/security.md lists {verbs:?} on {resource}.{group}, which the ServiceAccount lacks (has {have:?})"
            );
        }
    }

    // 3b. Every ISVC of the examples and fixtures: admitted exactly when render says it is
    // valid, with render's annotations; refused with each of render's messages in kubectl's
    // output. Dry runs, so ISVCs do not claim each other's hosts.
    let config = "manifests/dev/inferenceservice-config.yaml";
    let mut admitted = 0;
    let mut refused = 0;
    for (file, render_config) in isvc_inputs() {
        if render_config.is_some() {
            continue; // the cluster runs manifests/dev's config
        }
        for mut object in documents(&file) {
            // The API server gives a created object its own uid, which the routes' owner
            // references (and so plan-hash) carry.
            if let Some(metadata) = object["metadata"].as_object_mut() {
                metadata.remove("uid");
            }
            let namespace = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned();
            plane.namespace(&namespace);
            object["metadata"]["namespace"] = json!(namespace);
            let (_, text) = render_input(&["--config", config, "-"], Some(&object.to_string()));
            let plan = serde_json::from_str::<Vec<Value>>(&text).unwrap().remove(0);
            let output = plane.kubectl_with_input(
                &["create", "--dry-run=server", "-o", "json", "-f", "-"],
                Some(&object.to_string()),
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            let name = format!("{file} {}", object["metadata"]["name"]);
            if plan["ok"] == true {
                assert!(output.status.success(), "{name} was refused: {stderr}");
                let stored: Value = serde_json::from_slice(&output.stdout).unwrap();
                for (key, value) in plan["annotations"].as_object().unwrap() {
                    assert_eq!(
                        &stored["metadata"]["annotations"][key], value,
                        "{name}: annotation {key}"
                    );
                }
                admitted += 1;
            } else {
                assert!(
                    !output.status.success(),
                    "{name} was admitted, render refuses it"
                );
                assert!(
                    stderr.contains(
                        "admission webhook \"inferenceservices.isvc-ingress.io\" denied the request"
                    ),
                    "{name}: {stderr}"
                );
                for error in plan["errors"].as_array().unwrap() {
                    let message = error["message"].as_str().unwrap();
                    assert!(
                        stderr.contains(message),
                        "{name}: kubectl does not print {message:?}: {stderr}"
                    );
                }
                refused += 1;
            }
        }
    }
    assert!(
        admitted > 0 && refused > 0,
        "admitted {admitted}, refused {refused}"
    );

    // kubectl apply of a good ISVC stores our annotations; dry-run=server does not store.
    // Server-side: a client-side apply adds kubectl's last-applied-configuration annotation,
    // which the routes then carry (no `inferenceService` key keeps it off), so the plan differs
    // from render's of the file.
    plane.namespace("models");
    let sklearn = std::fs::read_to_string(repository().join("examples/sklearn-iris.yaml")).unwrap();
    let dry = plane.kubectl_with_input(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            "-",
        ],
        Some(&sklearn),
    );
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        plane
            .get("inferenceservice", Some("models"), "sklearn-iris")
            .is_none(),
        "a dry run stored the ISVC"
    );
    plane.apply(&sklearn);
    let stored = plane
        .get("inferenceservice", Some("models"), "sklearn-iris")
        .expect("the ISVC is stored");
    let (_, text) = render(&["--config", config, "examples/sklearn-iris.yaml"]);
    let plan: Value = serde_json::from_str::<Vec<Value>>(&text).unwrap().remove(0);
    assert_eq!(
        stored["metadata"]["annotations"]["isvc-ingress.io/plan-hash"],
        plan["annotations"]["isvc-ingress.io/plan-hash"]
    );

    // The status subresource passes through the status mutator: a status written without URLs
    // gets the plan's.
    let output = plane.kubectl(&[
        "patch", "inferenceservice", "sklearn-iris", "-n", "models", "--subresource=status", "--type=merge",
        "-p", r#"{"status":{"observedGeneration":1,"conditions":[{"type":"PredictorReady","status":"True"}]}}"#,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stored = plane
        .get("inferenceservice", Some("models"), "sklearn-iris")
        .unwrap();
    assert_eq!(
        stored["status"]["url"], plan["url"],
        "{:#}",
        stored["status"]
    );
    assert_eq!(stored["status"]["address"]["url"], plan["address"]);

    // A bad inferenceservice-config is refused, with our message; the good one stays.
    let bad_review: Value = serde_json::from_str(
        &std::fs::read_to_string(repository().join("tests/fixtures/admission/configmap-bad.json"))
            .unwrap(),
    )
    .unwrap();
    let mut bad_config = bad_review["request"]["object"].clone();
    bad_config["metadata"] = json!({"name": "inferenceservice-config", "namespace": "kserve"});
    let output = plane.kubectl_with_input(&["apply", "-f", "-"], Some(&bad_config.to_string()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a bad inferenceservice-config was admitted"
    );
    assert!(stderr.contains("config.isvc-ingress.io"), "{stderr}");
    assert!(stderr.contains("config.ingress."), "{stderr}");

    // A delete is never blocked.
    plane.kubectl_ok(&[
        "delete",
        "inferenceservice",
        "sklearn-iris",
        "-n",
        "models",
        "--wait=false",
    ]);

    // The API server's own measure of the webhook's latency over a burst of 1,000 creates.
    plane.namespace("burst");
    let items: Vec<Value> = (0..1000)
        .map(|index| {
            json!({
                "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                "metadata": {"name": format!("model-{index}"), "namespace": "burst",
                             "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
                "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
            })
        })
        .collect();
    let before = webhook_latency_histogram(&plane);
    let started = Instant::now();
    let output = plane.kubectl_with_input(
        &["create", "-f", "-", "-o", "name"],
        Some(&json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()),
    );
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = webhook_latency_histogram(&plane);
    let (count, p50, p99) = percentiles(&before, &after);
    assert!(
        count >= 2000.0,
        "the API server counted {count} webhook calls for 1,000 creates (mutating and validating)"
    );
    eprintln!(
        "burst: 1,000 creates through kubectl in {elapsed:?}; the API server measured {count} calls to our webhooks: p50 <= {p50} s, p99 <= {p99} s (apiserver_admission_webhook_admission_duration_seconds)"
    );
    assert_eq!(installation.replicas.len(), 1);
    let metrics = installation.replicas[0].metrics();
    assert!(
        metrics.contains("isvc_ingress_admission_requests_total"),
        "serve's /metrics"
    );
}
