//! The reconciler caches ISVCs and routes cut to the fields routing reads
//! (`isvc_ingress::reconcile::cached`). These tests prove the cut loses nothing a reader uses:
//! for every ISVC of the repository (examples, fixtures, field cases) and of the synthetic
//! 300-ISVC store, under several configs, with the noise a real cluster adds (managedFields,
//! kubectl's last-applied copy, resources, env, model status, revisions), every reader gives
//! the same answer on the cached object as on the whole one:
//! - the ISVC readers (`InferenceService::from_json`, the typed `from_json_text`), so the plan
//!   and the host index are the same;
//! - the status decisions (`StatusUrls::of`, `status_patch`, `live_readiness`);
//! - the route comparison (`is_subset`, `route_changes`) and the HTTPRoute readiness, on live
//!   routes that match, that drifted, and that carry each kind of parent status.

mod scale_store;
mod support;

use isvc_ingress::config::KserveConfig;
use isvc_ingress::isvc::InferenceService;
use isvc_ingress::plan::status::OwnUrls;
use isvc_ingress::plan::{self, LAST_APPLIED_ANNOTATION, Policy, RouteOwner};
use isvc_ingress::reconcile::decide::{
    self, DesiredStatus, LiveRoute, Readiness, StatusUrls, is_subset,
};
use isvc_ingress::reconcile::{CachedInferenceService, CachedRoute, ManagedKind};
use kube::api::DynamicObject;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use support::config_with;

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every InferenceService document under the repository's input directories (YAML streams,
/// JSON objects and `List`s).
fn repository_isvcs() -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for directory in [
        "examples",
        "tests/fixtures/isvc",
        "tests/fixtures/field-cases",
    ] {
        let mut paths: Vec<_> = std::fs::read_dir(repository().join(directory))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yaml" || extension == "json")
            })
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            let documents: Vec<Value> = if path.extension().is_some_and(|e| e == "json") {
                serde_json::from_str(&text).into_iter().collect()
            } else {
                serde_yaml_ng::Deserializer::from_str(&text)
                    .filter_map(|document| {
                        serde::Deserialize::deserialize(document)
                            .ok()
                            .and_then(|yaml: serde_yaml_ng::Value| serde_json::to_value(yaml).ok())
                    })
                    .collect()
            };
            let name = path
                .strip_prefix(repository())
                .unwrap()
                .display()
                .to_string();
            for document in documents {
                let items = match document.get("items").and_then(Value::as_array) {
                    Some(items) => items.clone(),
                    None => vec![document],
                };
                for item in items {
                    if item["kind"] == "InferenceService" {
                        found.push((name.clone(), item));
                    }
                }
            }
        }
    }
    assert!(found.len() >= 10, "found only {} ISVCs", found.len());
    found
}

/// The synthetic store's settled ISVCs: every mode, route kind, transformer and cluster-local
/// mix (the mix repeats every 100 ISVCs), each with the status a settled reconcile leaves.
fn synthetic_isvcs() -> Vec<(String, Value)> {
    let config = scale_store::base_config();
    (0..100)
        .map(|index| {
            (
                format!("synthetic #{index}"),
                scale_store::settled_isvc(index, 100, 20, &config),
            )
        })
        .collect()
}

/// `object` as a real cluster stores it: server metadata, kubectl's copy, fields routing never
/// reads, and (when it has none) a status written by KServe.
fn with_cluster_noise(mut object: Value) -> Value {
    let copy = object.to_string();
    let metadata = object["metadata"].as_object_mut().unwrap();
    metadata.entry("namespace").or_insert(json!("team-a"));
    metadata.insert("uid".into(), json!("4b9f5c1e-0000-4000-8000-000000000001"));
    metadata.insert("resourceVersion".into(), json!("12345"));
    metadata.insert("generation".into(), json!(2));
    metadata.insert("creationTimestamp".into(), json!("2024-06-01T00:00:00Z"));
    metadata.insert("finalizers".into(), json!(["inferenceservice.finalizers"]));
    // isvc-ingress alone wrote status.url; KServe wrote the predictor's URL too.
    metadata.insert(
        "managedFields".into(),
        json!([{"manager": "kubectl-client-side-apply", "operation": "Update",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:predictor": {}}}},
               {"manager": "isvc-ingress", "operation": "Update", "subresource": "status",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:url": {},
                    "f:components": {"f:predictor": {"f:url": {}}}}}},
               {"manager": "manager", "operation": "Update", "subresource": "status",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {
                    "f:components": {"f:predictor": {"f:url": {}}}}}}]),
    );
    let annotations = metadata.entry("annotations").or_insert(json!({}));
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            json!(copy),
        );
    }
    if let Some(predictor) = object
        .pointer_mut("/spec/predictor")
        .and_then(Value::as_object_mut)
    {
        predictor.insert("minReplicas".into(), json!(1));
        predictor.insert("serviceAccountName".into(), json!("sa"));
        if let Some(block) = predictor.values_mut().find(|value| value.is_object()) {
            block["resources"] = json!({"limits": {"cpu": "1", "memory": "2Gi"}});
            block["storageUri"] = json!("gs://bucket/model");
            block["env"] = json!([{"name": "A", "value": "B"}]);
        }
    }
    if object.get("status").is_none() {
        object["status"] = json!({
            "url": "http://written.example.com",
            "address": {"url": "http://written.team-a.svc.cluster.local"},
            "components": {"predictor": {"url": "http://predictor.example.com",
                                         "restUrl": "http://predictor.example.com",
                                         "latestCreatedRevision": "m-predictor-00001",
                                         "traffic": [{"percent": 100, "latestRevision": true}]}},
            "conditions": [
                {"type": "IngressReady", "status": "False", "reason": "Old", "message": "m",
                 "lastTransitionTime": "2024-06-01T00:00:00Z"},
                {"type": "PredictorReady", "status": "True", "severity": "Info",
                 "lastTransitionTime": "2024-06-01T00:00:00Z"}],
        });
    }
    object["status"]["observedGeneration"] = json!(2);
    object["status"]["modelStatus"] = json!({
        "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
        "transitionStatus": "UpToDate", "copies": {"failedCopies": 0, "totalCopies": 1}});
    object
}

fn configs() -> Vec<(&'static str, KserveConfig)> {
    vec![
        ("Standard, Ingress", config_with(json!({}), "Standard")),
        (
            "Standard, Gateway API",
            config_with(
                json!({"enableGatewayApi": true,
                       "kserveIngressGateway": "kserve/kserve-ingress-gateway"}),
                "Standard",
            ),
        ),
        ("Serverless", config_with(json!({}), "Serverless")),
    ]
}

/// Both route owners: KServe (we write DomainMappings only) and isvc-ingress (every route).
fn policies() -> Vec<(&'static str, Policy)> {
    vec![
        ("--route-owner kserve", Policy::default()),
        (
            "--route-owner isvc-ingress",
            Policy {
                route_owner: RouteOwner::IsvcIngress,
                ..Policy::default()
            },
        ),
    ]
}

/// The routes the reconciler writes for `plan` (the ones its cache holds).
fn written_routes(
    plan: &plan::RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
    policy: &Policy,
) -> Vec<plan::objects::RouteObject> {
    let mut routes = plan::routes(plan, isvc, config);
    routes.retain(|route| policy.route_owner.writes(route.kind()));
    routes
}

fn every_isvc() -> Vec<(String, Value)> {
    repository_isvcs()
        .into_iter()
        .chain(synthetic_isvcs())
        .map(|(name, object)| (name, with_cluster_noise(object)))
        .collect()
}

fn namespace_of(object: &Value) -> String {
    object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string()
}

#[test]
fn the_isvc_readers_read_the_same_from_the_cached_object() {
    for (name, whole) in every_isvc() {
        let cached = CachedInferenceService::from_value(whole.clone()).unwrap();
        let pruned = cached.to_value().unwrap();
        assert!(
            cached.held_bytes() < whole.to_string().len() / 4,
            "{name}: {} of {} bytes kept",
            cached.held_bytes(),
            whole.to_string().len()
        );
        let namespace = namespace_of(&whole);
        // The cache drops kubectl's last-applied copy, which the planner never copies.
        let mut without_copy = whole.clone();
        without_copy["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(LAST_APPLIED_ANNOTATION);
        let from_whole = InferenceService::from_json(&whole, &namespace);
        let from_pruned = InferenceService::from_json(&pruned, &namespace);
        assert_eq!(
            from_pruned,
            InferenceService::from_json(&without_copy, &namespace),
            "{name}"
        );
        let typed = InferenceService::from_json_text(&cached.document().unwrap(), &namespace)
            .map(|(isvc, _)| isvc)
            .ok();
        assert_eq!(typed, from_pruned.clone().ok(), "{name}: typed reader");
        let (Ok(isvc), Ok(pruned_isvc)) = (from_whole, from_pruned) else {
            continue;
        };
        for ((config_name, config), (policy_name, policy)) in
            configs().into_iter().flat_map(|config| {
                policies()
                    .into_iter()
                    .map(move |policy| (config.clone(), policy))
            })
        {
            let plan = plan::plan(&isvc, &config, &policy);
            let pruned_plan = plan::plan(&pruned_isvc, &config, &policy);
            assert_eq!(
                pruned_plan.as_ref().ok(),
                plan.as_ref().ok(),
                "{name} under {config_name}, {policy_name}: the plan"
            );
            let Ok(plan) = plan else { continue };
            let routes = |isvc| {
                written_routes(&plan, isvc, &config, &policy)
                    .iter()
                    .map(|route| route.to_value())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                routes(&pruned_isvc),
                routes(&isvc),
                "{name} under {config_name}, {policy_name}: the routes"
            );
            let (whole_status, pruned_status) = (whole.get("status"), pruned.get("status"));
            assert_eq!(
                StatusUrls::of(&plan, pruned_status, cached.own_urls()),
                StatusUrls::of(&plan, whole_status, OwnUrls::of_object(&whole)),
                "{name} under {config_name}"
            );
            assert_eq!(
                decide::live_readiness(pruned_status),
                decide::live_readiness(whole_status),
                "{name}"
            );
            for readiness in [
                Some(Readiness::Ready),
                Some(Readiness::not_ready("HostConflict", "held by another ISVC")),
                None,
            ] {
                for urls in [
                    Some(StatusUrls::of(&plan, whole_status, OwnUrls::of_object(&whole)).0),
                    None,
                ] {
                    let desired = DesiredStatus {
                        urls,
                        readiness: readiness.clone(),
                    };
                    let patch = |status| {
                        decide::status_patch(
                            status,
                            Some("12345"),
                            &desired,
                            "2025-01-01T00:00:00Z",
                        )
                    };
                    assert_eq!(
                        patch(pruned_status),
                        patch(whole_status),
                        "{name} under {config_name}"
                    );
                }
            }
        }
    }
}

/// A planned route as the API server stores it after our apply: server metadata, defaults in
/// the spec are left out on purpose (the planner writes them), and a status.
fn stored(route: &Value, status: Value) -> Value {
    let mut live = route.clone();
    let metadata = live["metadata"].as_object_mut().unwrap();
    metadata.insert("uid".into(), json!("route-uid"));
    metadata.insert("resourceVersion".into(), json!("99"));
    metadata.insert("generation".into(), json!(1));
    metadata.insert("creationTimestamp".into(), json!("2024-06-01T00:00:00Z"));
    metadata.insert(
        "managedFields".into(),
        json!([{"manager": "isvc-ingress", "operation": "Apply", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {}}}]),
    );
    live["status"] = status;
    live
}

fn statuses_of(kind: &str) -> Vec<Value> {
    match kind {
        "HTTPRoute" => vec![
            json!({}),
            json!({"parents": []}),
            json!({"parents": [{"parentRef": {"name": "gw"}, "controllerName": "x",
                   "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}]}),
            json!({"parents": [{"parentRef": {"name": "gw"}, "controllerName": "x",
                   "conditions": [{"type": "Accepted", "status": "False",
                                   "reason": "NotAllowedByListeners", "message": "no"}]}]}),
        ],
        "Ingress" => vec![json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}})],
        _ => vec![json!({})],
    }
}

/// The same route with a field someone else changed.
fn drifted(live: &Value) -> Value {
    let mut drifted = live.clone();
    drifted["spec"] = json!({"edited": "by someone else"});
    drifted
}

#[test]
fn the_route_comparison_and_readiness_read_the_same_from_the_cached_route() {
    let mut compared = 0;
    for (name, whole) in every_isvc() {
        let Ok(isvc) = InferenceService::from_json(&whole, &namespace_of(&whole)) else {
            continue;
        };
        for ((config_name, config), (_, policy)) in configs().into_iter().flat_map(|config| {
            policies()
                .into_iter()
                .map(move |policy| (config.clone(), policy))
        }) {
            let Ok(plan) = plan::plan(&isvc, &config, &policy) else {
                continue;
            };
            let desired = written_routes(&plan, &isvc, &config, &policy);
            for route in &desired {
                let value = route.to_value();
                let kind = ManagedKind::of(route.api_version(), route.kind()).unwrap();
                for status in statuses_of(route.kind()) {
                    for live in [
                        stored(&value, status.clone()),
                        drifted(&stored(&value, status)),
                    ] {
                        let object: DynamicObject = serde_json::from_value(live.clone()).unwrap();
                        let cached = CachedRoute::new(kind, &object);
                        let pruned = cached.to_value().unwrap();
                        assert_eq!(
                            is_subset(&value, &pruned),
                            is_subset(&value, &live),
                            "{name} under {config_name}: {}",
                            route.kind()
                        );
                        let readiness = |live_route: &Value| {
                            decide::httproute_readiness(&isvc.name, &desired, |wanted| {
                                (wanted == route.metadata().name).then(|| live_route.clone())
                            })
                        };
                        assert_eq!(readiness(&pruned), readiness(&live), "{name}");
                        let changes = decide::route_changes(
                            &desired,
                            &[LiveRoute {
                                kind,
                                object: Arc::new(cached),
                            }],
                            "isvc-uid",
                        );
                        let applies_this_route = changes
                            .apply
                            .iter()
                            .any(|apply| apply.name == route.metadata().name && apply.kind == kind);
                        assert_eq!(applies_this_route, !is_subset(&value, &live), "{name}");
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 1000, "only {compared} routes compared");
}

#[test]
fn a_matching_route_is_unchanged_and_a_drifted_one_is_applied_through_the_cache() {
    // The equivalence above could hold with both sides always true; pin one of each.
    let object = support::isvc_json("m", "ns", support::predictor_only());
    let config = config_with(json!({}), "Standard");
    let isvc = support::isvc(object);
    let policy = &policies()[1].1;
    let plan = plan::plan(&isvc, &config, policy).unwrap();
    let desired = written_routes(&plan, &isvc, &config, policy);
    let route = desired[0].to_value();
    let kind = ManagedKind::of(desired[0].api_version(), desired[0].kind()).unwrap();
    let live = |value: &Value| LiveRoute {
        kind,
        object: Arc::new(CachedRoute::new(
            kind,
            &serde_json::from_value(value.clone()).unwrap(),
        )),
    };
    let matching = stored(&route, json!({}));
    assert!(decide::route_changes(&desired, &[live(&matching)], "u").is_empty());
    // As a list of a built-in kind delivers it: no apiVersion, no kind. Still unchanged.
    let mut listed = matching.clone();
    listed.as_object_mut().unwrap().remove("apiVersion");
    listed.as_object_mut().unwrap().remove("kind");
    assert!(decide::route_changes(&desired, &[live(&listed)], "u").is_empty());
    let changes = decide::route_changes(&desired, &[live(&drifted(&matching))], "u");
    assert_eq!(changes.apply.len(), 1);
}
