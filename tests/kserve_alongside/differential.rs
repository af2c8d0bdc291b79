//! The differential (issue 15, item 4): every ISVC of `examples/` and `tests/fixtures/isvc/`
//! that KServe's Standard mode runs is created on the control plane with KServe's manager
//! running (and its webhooks called); KServe's Ingress / HTTPRoutes and the status URLs it
//! writes are compared, field by field, with `isvc-ingress render` (`--route-owner kserve`,
//! where the plan describes KServe's routes) of the same stored ISVC under the same ConfigMap.
//! Metadata the API server adds is left out, and render's routes pass through the API server
//! (`kubectl create --dry-run=server`) first, so its defaults are on both sides.
//!
//! Every difference must be explained by a row of `docs/kserve-compatibility.md`
//! ([`explanation`]); the test writes the table `docs/kserve-differential.md` before it asserts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::control_plane::{ControlPlane, repository};
use crate::inputs::{documents, render_input};
use crate::kserve::{
    install_kserve, kserve_config, kserve_version, models_namespace, settle, start_manager,
};

/// One KServe configuration the ISVCs run under.
pub struct Setup {
    pub name: &'static str,
    /// Overrides of the shipped `ingress` key.
    pub ingress: Value,
}

/// The `pathTemplate` of `examples/config-path-based.json`.
const PATH_TEMPLATE: &str = "/serving/{{ .Namespace }}/{{ .Name }}";

/// The configurations: KServe's shipped `ingress` (Kubernetes Ingress) and the Gateway API one
/// of `examples/config-gateway-api.yaml`, each also with a `pathTemplate`, all with
/// `defaultDeploymentMode: Standard` so that every ISVC without a mode annotation runs in
/// Standard mode (Knative mode needs Knative).
pub fn setups() -> Vec<Setup> {
    let example: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repository().join("examples/config-gateway-api.yaml")).unwrap(),
    )
    .unwrap();
    let gateway: Value =
        serde_json::from_str(example["data"]["ingress"].as_str().unwrap()).unwrap();
    vec![
        Setup {
            name: "Ingress (shipped ingress config)",
            ingress: json!({}),
        },
        Setup {
            name: "HTTPRoute (examples/config-gateway-api.yaml)",
            ingress: gateway.clone(),
        },
        Setup {
            name: "Ingress + pathTemplate",
            ingress: json!({"pathTemplate": PATH_TEMPLATE}),
        },
        Setup {
            name: "HTTPRoute + pathTemplate",
            ingress: {
                let mut ingress = gateway;
                ingress["pathTemplate"] = json!(PATH_TEMPLATE);
                ingress
            },
        },
    ]
}

/// One field that differs: (object, field path, KServe's value, render's value), values as
/// JSON text or `absent`.
#[derive(Clone)]
pub struct Difference {
    pub object: String,
    pub field: String,
    pub kserve: String,
    pub ours: String,
}

/// What happened to one ISVC under one setup.
pub struct Outcome {
    pub setup: &'static str,
    pub file: String,
    pub isvc: String,
    /// Why it did not run in Standard mode, when it did not.
    pub skipped: Option<String>,
    pub differences: Vec<Difference>,
    /// Fields compared (routes' fields and status URLs).
    pub compared: usize,
}

fn show(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "absent".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// `value` as (path, leaf) pairs: `spec.rules[0].host` -> `"m.example.com"`.
pub fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else if key.contains(['.', '/']) {
                    format!("{prefix}[{key}]")
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, value, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{index}]"), item, out);
            }
        }
        Value::Object(_) | Value::Array(_) | Value::Null => {}
        leaf => {
            out.insert(prefix.to_owned(), leaf.clone());
        }
    }
}

/// The fields of a route that say what it does: labels, annotations, ownerReferences (less
/// the uid, which differs per cluster), spec.
fn route_fields(route: &Value) -> BTreeMap<String, Value> {
    let mut kept = json!({
        "metadata": {
            "labels": route["metadata"]["labels"],
            "annotations": route["metadata"]["annotations"],
            "ownerReferences": route["metadata"]["ownerReferences"],
        },
        "spec": route["spec"],
    });
    if let Some(owners) = kept["metadata"]["ownerReferences"].as_array_mut() {
        for owner in owners {
            owner.as_object_mut().unwrap().remove("uid");
        }
    }
    let mut fields = BTreeMap::new();
    flatten("", &kept, &mut fields);
    fields
}

fn compare(
    object: &str,
    kserve: &BTreeMap<String, Value>,
    ours: &BTreeMap<String, Value>,
    out: &mut Vec<Difference>,
) -> usize {
    let mut paths: Vec<&String> = kserve.keys().chain(ours.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in &paths {
        if kserve.get(*path) != ours.get(*path) {
            out.push(Difference {
                object: object.to_owned(),
                field: (*path).clone(),
                kserve: show(kserve.get(*path)),
                ours: show(ours.get(*path)),
            });
        }
    }
    paths.len()
}

/// `route` as the API server stores it (its defaults applied), through a server-side dry-run
/// create in the namespace `scratch`.
fn as_stored(plane: &ControlPlane, route: &Value, scratch: &str) -> Value {
    let mut copy = route.clone();
    copy["metadata"]["namespace"] = json!(scratch);
    let output = plane.kubectl_with_input(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        Some(&copy.to_string()),
    );
    assert!(
        output.status.success(),
        "the API server refused render's route: {}\n{copy:#}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The Ingresses and HTTPRoutes of `namespace` whose controller is the ISVC `uid`.
fn kserve_routes(plane: &ControlPlane, namespace: &str, uid: &str) -> Vec<Value> {
    let list: Value = serde_json::from_str(&plane.kubectl_ok(&[
        "get",
        "ingresses.networking.k8s.io,httproutes.gateway.networking.k8s.io",
        "-n",
        namespace,
        "-o",
        "json",
    ]))
    .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|route| {
            route["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|owner| owner["controller"] == true && owner["uid"] == uid)
        })
        .cloned()
        .collect()
}

fn ingress_ready(isvc: &Value) -> bool {
    isvc["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|condition| condition["type"] == "IngressReady" && condition["status"] == "True")
}

/// The status URL fields KServe writes (and the ones it defines but leaves empty), as
/// (field, value).
fn status_urls(status: &Value) -> BTreeMap<String, Value> {
    let mut fields = BTreeMap::new();
    fields.insert("status.url".to_owned(), status["url"].clone());
    fields.insert(
        "status.address.url".to_owned(),
        status["address"]["url"].clone(),
    );
    for component in ["predictor", "transformer", "explainer"] {
        for key in ["url", "restUrl", "grpcUrl"] {
            fields.insert(
                format!("status.components.{component}.{key}"),
                status["components"][component][key].clone(),
            );
        }
    }
    fields.retain(|_, value| !value.is_null());
    fields
}

/// render's plan as the same status fields.
fn planned_status_urls(plan: &Value) -> BTreeMap<String, Value> {
    let mut status = json!({"url": plan["url"], "address": {"url": plan["address"]}});
    if let Some(components) = plan["components"].as_object() {
        for (component, urls) in components {
            status["components"][component] =
                json!({"url": urls["url"], "restUrl": urls["restUrl"], "grpcUrl": urls["grpcUrl"]});
        }
    }
    status_urls(&status)
}

/// Runs every ISVC input under `setup` on a fresh control plane with KServe's manager.
pub fn run_setup(setup: &Setup) -> Vec<Outcome> {
    let plane = ControlPlane::start();
    let config_map = kserve_config(
        &setup.ingress,
        Some(&json!({"defaultDeploymentMode": "Standard"})),
    );
    install_kserve(&plane, &config_map);
    let config_file = plane.directory().join("inferenceservice-config.json");
    std::fs::write(&config_file, config_map.to_string()).unwrap();
    let config_file = config_file.display().to_string();
    let mut manager = start_manager(&plane, &json!({}));
    let scratch = "differential-scratch";
    plane.namespace(scratch);

    let mut outcomes = Vec::new();
    let mut created: Vec<(usize, String, String)> = Vec::new();
    for directory in ["examples", "tests/fixtures/isvc"] {
        let mut files: Vec<String> = std::fs::read_dir(repository().join(directory))
            .unwrap()
            .map(|entry| {
                format!(
                    "{directory}/{}",
                    entry.unwrap().file_name().to_string_lossy()
                )
            })
            .filter(|file| file.ends_with(".yaml") || file.ends_with(".json"))
            .collect();
        files.sort();
        for file in files {
            for mut isvc in documents(&file) {
                let name = isvc["metadata"]["name"].as_str().unwrap_or("").to_owned();
                let namespace = isvc["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_owned();
                let mut outcome = Outcome {
                    setup: setup.name,
                    file: file.clone(),
                    isvc: format!("{namespace}/{name}"),
                    skipped: None,
                    differences: Vec::new(),
                    compared: 0,
                };
                isvc["metadata"].as_object_mut().unwrap().remove("uid");
                isvc["metadata"]["namespace"] = json!(namespace);
                models_namespace(&plane, &namespace);
                let output =
                    plane.kubectl_with_input(&["create", "-f", "-"], Some(&isvc.to_string()));
                if output.status.success() {
                    created.push((outcomes.len(), namespace, name));
                } else {
                    let message = String::from_utf8_lossy(&output.stderr);
                    outcome.skipped = Some(format!(
                        "refused by the API server: {}",
                        message.trim().lines().next().unwrap_or_default()
                    ));
                }
                outcomes.push(outcome);
            }
        }
    }

    let mut namespaces: Vec<&str> = created
        .iter()
        .map(|(_, namespace, _)| namespace.as_str())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let started = Instant::now();
    // Every created ISVC that render plans in Standard mode ends IngressReady with a URL.
    let mut plans: BTreeMap<usize, Value> = BTreeMap::new();
    for (index, namespace, name) in &created {
        let stored = plane
            .get("inferenceservice", Some(namespace), name)
            .unwrap();
        let (_, text) = render_input(&["--config", &config_file, "-"], Some(&stored.to_string()));
        let plan = serde_json::from_str::<Vec<Value>>(&text).unwrap().remove(0);
        if plan["ok"] != true {
            outcomes[*index].skipped = Some(format!(
                "render refuses it: {}",
                plan["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|error| format!(
                        "{}: {}",
                        show(error.get("field")),
                        show(error.get("message"))
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        } else if plan["mode"] != "Standard" {
            outcomes[*index].skipped = Some(format!("{} mode", show(plan.get("mode"))));
        } else {
            plans.insert(*index, plan);
        }
    }
    let settled = settle(&plane, &namespaces, Duration::from_secs(120), || {
        created
            .iter()
            .filter(|(index, ..)| plans.contains_key(index))
            .all(|(_, namespace, name)| {
                plane
                    .get("inferenceservice", Some(namespace), name)
                    .is_some_and(|isvc| ingress_ready(&isvc) && isvc["status"]["url"].is_string())
            })
    });
    eprintln!(
        "{}: {} ISVCs settled: {settled} after {:?}",
        setup.name,
        plans.len(),
        started.elapsed()
    );

    for (index, namespace, name) in &created {
        let Some(_) = plans.get(index) else { continue };
        let stored = plane
            .get("inferenceservice", Some(namespace), name)
            .unwrap();
        if !ingress_ready(&stored) {
            outcomes[*index].skipped = Some(format!(
                "KServe never made it IngressReady: {}",
                stored["status"]["conditions"]
            ));
            continue;
        }
        // render of the ISVC as stored now (KServe's defaulter and status included).
        let (_, text) = render_input(&["--config", &config_file, "-"], Some(&stored.to_string()));
        let plan = serde_json::from_str::<Vec<Value>>(&text).unwrap().remove(0);
        let uid = stored["metadata"]["uid"].as_str().unwrap();
        let outcome = &mut outcomes[*index];
        let live = kserve_routes(&plane, namespace, uid);
        let planned = plan["routes"].as_array().cloned().unwrap_or_default();
        let key = |route: &Value| {
            format!(
                "{} {}",
                route["kind"].as_str().unwrap_or("?"),
                route["metadata"]["name"].as_str().unwrap_or("?")
            )
        };
        let mut keys: Vec<String> = live.iter().chain(&planned).map(key).collect();
        keys.sort();
        keys.dedup();
        for object in keys {
            let theirs = live.iter().find(|route| key(route) == object);
            let ours = planned.iter().find(|route| key(route) == object);
            match (theirs, ours) {
                (Some(theirs), Some(ours)) => {
                    let ours = as_stored(&plane, ours, scratch);
                    outcome.compared += compare(
                        &object,
                        &route_fields(theirs),
                        &route_fields(&ours),
                        &mut outcome.differences,
                    );
                }
                (theirs, _) => {
                    outcome.compared += 1;
                    outcome.differences.push(Difference {
                        object: object.clone(),
                        field: "(the object)".to_owned(),
                        kserve: if theirs.is_some() {
                            "present"
                        } else {
                            "absent"
                        }
                        .to_owned(),
                        ours: if theirs.is_some() {
                            "absent"
                        } else {
                            "present"
                        }
                        .to_owned(),
                    });
                }
            }
        }
        outcome.compared += compare(
            "InferenceService",
            &status_urls(&stored["status"]),
            &planned_status_urls(&plan),
            &mut outcome.differences,
        );
    }
    manager.process.stop();
    outcomes
}

/// The row of `docs/kserve-compatibility.md` (or its section) that explains `difference`
/// under `setup`, or None for an unexplained difference (a fault to fix).
pub fn explanation(setup: &str, difference: &Difference) -> Option<&'static str> {
    let _ = setup;
    let field = difference.field.as_str();
    let component_url = field.starts_with("status.components.");
    if component_url
        && (field.ends_with(".restUrl") || field.ends_with(".grpcUrl"))
        && difference.kserve == "absent"
    {
        return Some("\"Status fields KServe defines but never fills\"");
    }
    // KServe's Standard mode writes `http` component URLs whatever `urlScheme` says.
    if component_url
        && field.ends_with(".url")
        && difference.kserve.strip_prefix("http://") == difference.ours.strip_prefix("https://")
    {
        return Some("#3 Component URL scheme (Q7)");
    }
    None
}

/// Writes `docs/kserve-differential.md` from `outcomes`.
pub fn write_table(outcomes: &[Outcome]) -> String {
    let version = kserve_version();
    let mut text = String::new();
    writeln!(
        text,
        "# isvc-ingress `render` against KServe {version}'s own controller\n\n\
         Generated by `scripts/kserve-alongside.sh` (the test\n\
         `differential::kserve_routes_and_status_urls_against_render` of `tests/kserve_alongside/`);\n\
         do not edit by hand. KServe's manager ({version}, built from its Go module) runs on a real\n\
         kube-apiserver with its webhooks; each ISVC of `examples/` and `tests/fixtures/isvc/` is\n\
         created, its Deployments are reported Available and its HTTPRoutes Accepted (there is no\n\
         kubelet or Gateway), and the Ingress / HTTPRoutes and status URLs KServe writes are\n\
         compared field by field with `isvc-ingress render --route-owner kserve` of the stored ISVC\n\
         under the same ConfigMap (KServe's shipped one, `defaultDeploymentMode: Standard`, with the\n\
         `ingress` key of the setup). Metadata the API server adds (uid, resourceVersion,\n\
         managedFields, timestamps) and route status are left out; render's routes pass through\n\
         `kubectl create --dry-run=server` first, so both sides carry the API server's defaults.\n"
    )
    .unwrap();
    let compared: usize = outcomes.iter().map(|outcome| outcome.compared).sum();
    let differing: usize = outcomes
        .iter()
        .map(|outcome| outcome.differences.len())
        .sum();
    let ran = outcomes
        .iter()
        .filter(|outcome| outcome.skipped.is_none())
        .count();
    writeln!(
        text,
        "{ran} runs of an ISVC in Standard mode, {compared} fields compared, {differing} differ.\n"
    )
    .unwrap();
    writeln!(text, "## Differences\n").unwrap();
    writeln!(
        text,
        "| setup | ISVC (file) | object | field | KServe {version} | isvc-ingress | explained by `docs/kserve-compatibility.md` |\n|---|---|---|---|---|---|---|"
    )
    .unwrap();
    let cell = |text: &str| text.replace('|', "\\|");
    for outcome in outcomes {
        for difference in &outcome.differences {
            writeln!(
                text,
                "| {} | `{}` ({}) | {} | `{}` | `{}` | `{}` | {} |",
                outcome.setup,
                outcome.isvc,
                outcome.file,
                difference.object,
                cell(&difference.field),
                cell(&difference.kserve),
                cell(&difference.ours),
                explanation(outcome.setup, difference).unwrap_or("**unexplained**"),
            )
            .unwrap();
        }
    }
    writeln!(
        text,
        "\n## Every ISVC\n\n| setup | ISVC (file) | result |\n|---|---|---|"
    )
    .unwrap();
    for outcome in outcomes {
        let result = match &outcome.skipped {
            Some(reason) => format!("not run: {}", cell(reason)),
            None if outcome.differences.is_empty() => {
                format!("{} fields compared, all equal", outcome.compared)
            }
            None => format!(
                "{} fields compared, {} differ",
                outcome.compared,
                outcome.differences.len()
            ),
        };
        writeln!(
            text,
            "| {} | `{}` ({}) | {result} |",
            outcome.setup, outcome.isvc, outcome.file
        )
        .unwrap();
    }
    std::fs::write(repository().join("docs/kserve-differential.md"), &text).unwrap();
    text
}

#[test]
#[ignore = "needs KServe's manager: scripts/kserve-alongside.sh"]
fn kserve_routes_and_status_urls_against_render() {
    let mut outcomes = Vec::new();
    for setup in setups() {
        outcomes.extend(run_setup(&setup));
    }
    let table = write_table(&outcomes);
    eprintln!("{table}");
    let ran = outcomes
        .iter()
        .filter(|outcome| outcome.skipped.is_none())
        .count();
    assert!(ran >= 4, "too few ISVCs ran in Standard mode:\n{table}");
    let unexplained: Vec<String> = outcomes
        .iter()
        .flat_map(|outcome| {
            outcome
                .differences
                .iter()
                .filter(|difference| explanation(outcome.setup, difference).is_none())
                .map(move |difference| {
                    format!(
                        "{} {} {} {}: KServe {} / isvc-ingress {}",
                        outcome.setup,
                        outcome.isvc,
                        difference.object,
                        difference.field,
                        difference.kserve,
                        difference.ours
                    )
                })
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "differences no row of docs/kserve-compatibility.md explains:\n{}",
        unexplained.join("\n")
    );
}

/// The comparison can fail: a changed host, a dropped annotation and an extra rule each show
/// as a difference; the uid of an owner does not (it differs per cluster).
#[test]
fn the_comparison_sees_every_changed_field_but_the_owner_uid() {
    let route = json!({
        "metadata": {"name": "m", "uid": "1", "resourceVersion": "7",
                     "annotations": {"a": "1"},
                     "ownerReferences": [{"kind": "InferenceService", "name": "m", "uid": "u1", "controller": true}]},
        "spec": {"rules": [{"host": "m.example.com"}]},
        "status": {"loadBalancer": {}},
    });
    let mut other = route.clone();
    other["metadata"]["uid"] = json!("2");
    other["metadata"]["ownerReferences"][0]["uid"] = json!("u2");
    other["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}});
    let mut differences = Vec::new();
    compare(
        "Ingress m",
        &route_fields(&route),
        &route_fields(&other),
        &mut differences,
    );
    assert!(differences.is_empty());

    other["spec"]["rules"][0]["host"] = json!("m.example.org");
    other["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"host": "x.example.com"}));
    other["metadata"]["annotations"] = json!({});
    compare(
        "Ingress m",
        &route_fields(&route),
        &route_fields(&other),
        &mut differences,
    );
    let fields: Vec<(&str, &str, &str)> = differences
        .iter()
        .map(|difference| {
            (
                difference.field.as_str(),
                difference.kserve.as_str(),
                difference.ours.as_str(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("metadata.annotations.a", "1", "absent"),
            ("spec.rules[0].host", "m.example.com", "m.example.org"),
            ("spec.rules[1].host", "absent", "x.example.com"),
        ]
    );
}
