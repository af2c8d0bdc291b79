//! The reconcile function against a scripted mock API server: what it applies and deletes for
//! each route kind and each change of an ISVC, and that an ISVC that already matches costs no
//! write. Every request is pinned: method, path, query (`fieldManager=isvc-ingress`,
//! `force=true`), content type and body.

mod reconcile_mock;
mod support;

use isvc_ingress::reconcile::decide::Readiness;
use isvc_ingress::reconcile::metrics::{Outcome, Verb};
use isvc_ingress::reconcile::{ManagedKind, ServedKinds};
use reconcile_mock::*;
use serde_json::{Value, json};
use support::{config_with, predictor_only};

fn standard() -> isvc_ingress::config::KserveConfig {
    config_with(json!({}), "Standard")
}

fn gateway_api() -> isvc_ingress::config::KserveConfig {
    config_with(json!({ "enableGatewayApi": true }), "Standard")
}

fn knative() -> isvc_ingress::config::KserveConfig {
    config_with(json!({}), "Knative")
}

fn model() -> Value {
    isvc_object("m", "ns", predictor_only())
}

fn annotated(mut object: Value, annotations: Value) -> Value {
    object["metadata"]["annotations"] = annotations;
    object
}

fn labelled(mut object: Value, labels: Value) -> Value {
    object["metadata"]["labels"] = labels;
    object
}

#[tokio::test]
async fn first_reconcile_of_an_ingress_applies_it_and_writes_the_status() {
    let config = standard();
    let isvc = model();
    let routes = planned_routes(&isvc, &config);
    assert_eq!(routes.len(), 1);
    let ingress = &routes[0];
    // What the API server receives: the planned Ingress, owned by the ISVC, with our labels.
    assert_eq!(ingress["kind"], "Ingress");
    assert_eq!(
        ingress["metadata"]["ownerReferences"],
        json!([{ "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "m",
                 "uid": UID, "controller": true, "blockOwnerDeletion": true }])
    );
    assert_eq!(
        ingress["metadata"]["labels"],
        json!({ "app.kubernetes.io/managed-by": "isvc-ingress", "isvc-ingress.io/inferenceservice": "m" })
    );
    // The reconciler's watchers select on these; they must be the planner's labels.
    use isvc_ingress::reconcile::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL};
    assert_eq!(
        ingress["metadata"]["labels"][MANAGED_BY_LABEL],
        MANAGED_BY_VALUE
    );
    assert_eq!(ingress["metadata"]["labels"][OWNER_LABEL], "m");
    let mut harness = Harness::new(config, vec![]);
    let status = json!({
        "metadata": { "resourceVersion": RESOURCE_VERSION },
        "status": {
            "url": "http://m-ns.example.com",
            "address": { "url": "http://m-predictor.ns.svc.cluster.local" },
            "components": { "predictor": { "url": "http://m-predictor-ns.example.com",
                                           "restUrl": "http://m-predictor-ns.example.com" } },
            "conditions": [{ "type": "IngressReady", "status": "True", "lastTransitionTime": NOW }],
        },
    });
    harness
        .reconcile(&isvc, vec![apply(ingress), patch_status("ns", "m", status)])
        .await
        .expect("reconciled");
    assert_eq!(harness.metrics.writes_of("Ingress", Verb::Apply), 1);
    assert_eq!(
        harness
            .metrics
            .writes_of("InferenceService", Verb::PatchStatus),
        1
    );
    assert_eq!(harness.metrics.reconciles_with(Outcome::Changed), 1);
    assert_eq!(
        harness.hosts.holder_of("m-ns.example.com"),
        Some(("ns".into(), "m".into())),
        "the reconcile keeps the host index current"
    );
}

#[tokio::test]
async fn first_reconcile_of_httproutes_applies_component_routes_before_the_top_level_one() {
    let config = gateway_api();
    let isvc = isvc_object(
        "m",
        "ns",
        json!({ "predictor": {}, "transformer": { "containers": [] } }),
    );
    let routes = planned_routes(&isvc, &config);
    let names: Vec<_> = routes
        .iter()
        .map(|route| route["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m-predictor", "m-transformer", "m"]);
    let mut harness = Harness::new(config.clone(), vec![]);
    // Just created: no Gateway has accepted the routes yet (§5.5: no parent status).
    let status = first_status(
        &isvc,
        &config,
        Readiness::not_ready("ParentStatusNotAvailable", "Predictor HttpRouteNotReady"),
    );
    let mut steps: Vec<Step> = routes.iter().map(apply).collect();
    steps.push(patch_status("ns", "m", status));
    steps.push(event(
        "ns",
        "m",
        "Warning",
        "ParentStatusNotAvailable",
        "Predictor HttpRouteNotReady",
    ));
    harness.reconcile(&isvc, steps).await.expect("reconciled");
    assert_eq!(harness.metrics.writes_of("HTTPRoute", Verb::Apply), 3);
}

#[tokio::test]
async fn first_reconcile_of_a_virtual_service_applies_it_and_its_external_name_service() {
    let config = knative();
    let isvc = model();
    let routes = planned_routes(&isvc, &config);
    let kinds: Vec<_> = routes
        .iter()
        .map(|route| route["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["VirtualService", "Service"]);
    assert_eq!(routes[1]["spec"]["type"], "ExternalName");
    let mut harness = Harness::new(config.clone(), vec![]);
    let mut steps: Vec<Step> = routes.iter().map(apply).collect();
    steps.push(patch_status(
        "ns",
        "m",
        first_status(&isvc, &config, Readiness::Ready),
    ));
    harness.reconcile(&isvc, steps).await.expect("reconciled");
    assert_eq!(harness.metrics.writes_of("VirtualService", Verb::Apply), 1);
    assert_eq!(harness.metrics.writes_of("Service", Verb::Apply), 1);
}

#[tokio::test]
async fn first_reconcile_of_a_domain_mapping_applies_it() {
    let config = config_with(
        json!({ "disableIstioVirtualHost": true, "additionalIngressDomains": ["models.example.org"] }),
        "Knative",
    );
    let isvc = annotated(
        model(),
        json!({ "isvc-ingress.io/host": "fraud.models.example.org" }),
    );
    let routes = planned_routes(&isvc, &config);
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0]["kind"], "DomainMapping");
    assert_eq!(routes[0]["metadata"]["name"], "fraud.models.example.org");
    let mut harness = Harness::new(config.clone(), vec![]);
    harness
        .reconcile(
            &isvc,
            vec![
                apply(&routes[0]),
                patch_status("ns", "m", first_status(&isvc, &config, Readiness::Ready)),
            ],
        )
        .await
        .expect("reconciled");
}

#[tokio::test]
async fn an_isvc_that_already_matches_costs_no_request() {
    for (config, readiness) in [
        (standard(), Readiness::Ready),
        (gateway_api(), Readiness::Ready),
        (knative(), Readiness::Ready),
    ] {
        let isvc = settled(&model(), &config, readiness);
        let mut harness = Harness::new(config.clone(), live_routes(&isvc, &config));
        harness.reconcile(&isvc, vec![]).await.expect("reconciled");
        assert_eq!(harness.metrics.reconciles_with(Outcome::Unchanged), 1);
        assert_eq!(harness.metrics.reconciles_with(Outcome::Changed), 0);
    }
}

#[tokio::test]
async fn a_drifted_route_is_applied_again_and_nothing_else_is_written() {
    let config = standard();
    let isvc = settled(&model(), &config, Readiness::Ready);
    let mut live = live_routes(&isvc, &config);
    live[0]["spec"]["rules"][0]["host"] = json!("hijacked.example.com");
    let mut harness = Harness::new(config.clone(), live);
    let routes = planned_routes(&isvc, &config);
    harness
        .reconcile(&isvc, vec![apply(&routes[0])])
        .await
        .expect("reconciled");
}

#[tokio::test]
async fn a_kind_switch_applies_the_new_route_then_deletes_the_old_one() {
    // Was an Ingress; the user asks for HTTPRoutes (Standard mode allows both).
    let config = config_with(json!({}), "Standard");
    let before = model();
    let old = live_routes(&before, &config);
    let isvc = settled(
        &annotated(model(), json!({ "isvc-ingress.io/route": "HTTPRoute" })),
        &config,
        Readiness::Ready,
    );
    let routes = planned_routes(&isvc, &config);
    assert!(routes.iter().all(|route| route["kind"] == "HTTPRoute"));
    let mut harness = Harness::new(config.clone(), old);
    let mut steps: Vec<Step> = routes.iter().map(apply).collect();
    steps.push(delete(
        "networking.k8s.io/v1",
        "Ingress",
        "ns",
        "m",
        "m-uid",
    ));
    // The freshly applied routes have no parent status yet.
    steps.push(patch_status(
        "ns",
        "m",
        json!({
            "metadata": { "resourceVersion": RESOURCE_VERSION },
            "status": { "conditions": [{ "type": "IngressReady", "status": "False",
                "reason": "ParentStatusNotAvailable", "message": "Predictor HttpRouteNotReady",
                "lastTransitionTime": NOW }] },
        }),
    ));
    steps.push(event(
        "ns",
        "m",
        "Warning",
        "ParentStatusNotAvailable",
        "Predictor",
    ));
    harness.reconcile(&isvc, steps).await.expect("reconciled");
    assert_eq!(harness.metrics.writes_of("Ingress", Verb::Delete), 1);
}

#[tokio::test]
async fn stop_deletes_every_route_and_says_stopped() {
    let config = gateway_api();
    let running = settled(
        &isvc_object(
            "m",
            "ns",
            json!({ "predictor": {}, "transformer": { "containers": [] } }),
        ),
        &config,
        Readiness::Ready,
    );
    let live = live_routes(&running, &config);
    assert_eq!(live.len(), 3);
    let stopped = annotated(running, json!({ "serving.kserve.io/stop": "true" }));
    let mut harness = Harness::new(config, live);
    // Deleted in the cache's order (kind, then name), each preconditioned on its uid.
    let mut steps: Vec<Step> = ["m", "m-predictor", "m-transformer"]
        .iter()
        .map(|name| {
            delete(
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                "ns",
                name,
                &format!("{name}-uid"),
            )
        })
        .collect();
    steps.push(patch_status(
        "ns",
        "m",
        json!({
            "metadata": { "resourceVersion": RESOURCE_VERSION },
            "status": { "conditions": [{ "type": "IngressReady", "status": "False", "reason": "Stopped",
                "message": "serving.kserve.io/stop is true: every route of this InferenceService was removed",
                "lastTransitionTime": NOW }] },
        }),
    ));
    steps.push(event(
        "ns",
        "m",
        "Normal",
        "Stopped",
        "serving.kserve.io/stop",
    ));
    harness
        .reconcile(&stopped, steps)
        .await
        .expect("reconciled");
}

#[tokio::test]
async fn turning_cluster_local_deletes_the_external_route() {
    let config = standard();
    let external = settled(&model(), &config, Readiness::Ready);
    let live = live_routes(&external, &config);
    let local = labelled(
        external,
        json!({ "networking.kserve.io/visibility": "cluster-local" }),
    );
    let routes = planned_routes(&local, &config);
    assert!(routes.is_empty());
    let mut harness = Harness::new(config.clone(), live);
    let steps = vec![
        delete("networking.k8s.io/v1", "Ingress", "ns", "m", "m-uid"),
        // The URLs become the cluster-local ones; IngressReady stays True.
        patch_status(
            "ns",
            "m",
            json!({
                "metadata": { "resourceVersion": RESOURCE_VERSION },
                "status": {
                    "url": "http://m-predictor.ns.svc.cluster.local",
                    "components": { "predictor": {
                        "url": "http://m-predictor.ns.svc.cluster.local",
                        "restUrl": "http://m-predictor.ns.svc.cluster.local" } },
                },
            }),
        ),
    ];
    harness.reconcile(&local, steps).await.expect("reconciled");
    assert_eq!(harness.metrics.writes_of("Ingress", Verb::Delete), 1);
}

#[tokio::test]
async fn routes_another_controller_owns_are_never_deleted() {
    let config = standard();
    let local = settled(
        &labelled(
            model(),
            json!({ "networking.kserve.io/visibility": "cluster-local" }),
        ),
        &config,
        Readiness::Ready,
    );
    // An Ingress labelled as ours but controlled by another object (e.g. a copy).
    let mut foreign = live_routes(&model(), &config);
    foreign[0]["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
    let mut harness = Harness::new(config, foreign);
    harness.reconcile(&local, vec![]).await.expect("reconciled");
}

#[tokio::test]
async fn a_missing_crd_sets_the_condition_and_writes_no_route() {
    let config = gateway_api();
    let isvc = model();
    let served = ServedKinds::only(&[ManagedKind::Ingress, ManagedKind::Service]);
    let mut harness = Harness::with(config, vec![], served);
    let message = "the cluster does not serve gateway.networking.k8s.io/v1 HTTPRoute \
                   (httproutes.gateway.networking.k8s.io is not installed): install the Gateway \
                   API CRDs (standard channel); no route was written";
    harness
        .reconcile(
            &isvc,
            vec![
                patch_status(
                    "ns",
                    "m",
                    json!({
                        "metadata": { "resourceVersion": RESOURCE_VERSION },
                        "status": { "conditions": [{ "type": "IngressReady", "status": "False",
                            "reason": "GatewayCRDMissing", "message": message,
                            "lastTransitionTime": NOW }] },
                    }),
                ),
                event(
                    "ns",
                    "m",
                    "Warning",
                    "GatewayCRDMissing",
                    "httproutes.gateway.networking.k8s.io",
                ),
            ],
        )
        .await
        .expect("a missing CRD is a condition, not an error to retry");
    // Reconciled again (any event on the ISVC): the condition is already there, nothing is sent.
    let mut settled_isvc = isvc.clone();
    settled_isvc["status"] = json!({ "conditions": [{ "type": "IngressReady", "status": "False",
        "reason": "GatewayCRDMissing", "message": message, "lastTransitionTime": NOW }] });
    harness
        .reconcile(&settled_isvc, vec![])
        .await
        .expect("reconciled");
}

#[tokio::test]
async fn invalid_routing_sets_the_condition_and_writes_no_route() {
    let config = standard();
    let isvc = annotated(model(), json!({ "isvc-ingress.io/route": "Tunnel" }));
    let live = live_routes(&model(), &config);
    let mut harness = Harness::new(config, live);
    let check_message = |body: &Value| {
        let condition = &body["status"]["conditions"][0];
        assert_eq!(condition["reason"], "InvalidRouting");
        assert!(
            condition["message"]
                .as_str()
                .unwrap()
                .contains("metadata.annotations[isvc-ingress.io/route]"),
            "{body:#}"
        );
        assert!(body["status"].get("url").is_none(), "URLs are left alone");
    };
    let mut status = patch_status("ns", "m", json!(null));
    status.body = None;
    harness
        .reconcile(
            &isvc,
            vec![
                status.checking(check_message),
                event(
                    "ns",
                    "m",
                    "Warning",
                    "InvalidRouting",
                    "isvc-ingress.io/route",
                ),
            ],
        )
        .await
        .expect("reconciled");
}

#[tokio::test]
async fn a_host_held_by_an_older_isvc_is_not_taken() {
    let config = standard();
    let isvc = annotated(
        model(),
        json!({ "isvc-ingress.io/host": "shared.example.com" }),
    );
    let mut harness = Harness::new(config, vec![]);
    harness.hosts.set(
        "team-a",
        "first",
        Some("2020-01-01T00:00:00Z".parse().unwrap()),
        vec!["shared.example.com".into()],
    );
    harness
        .reconcile(
            &isvc,
            vec![
                patch_status("ns", "m", json!({
                    "metadata": { "resourceVersion": RESOURCE_VERSION },
                    "status": { "conditions": [{ "type": "IngressReady", "status": "False",
                        "reason": "HostConflict",
                        "message": "shared.example.com is held by InferenceService team-a/first; no route was written",
                        "lastTransitionTime": NOW }] },
                })),
                event("ns", "m", "Warning", "HostConflict", "team-a/first"),
            ],
        )
        .await
        .expect("reconciled");
}

#[tokio::test]
async fn a_config_change_replans_and_writes_only_the_isvcs_it_changes() {
    // Two ISVCs under the same config: one with an Ingress, one with HTTPRoutes.
    let config = standard();
    let ingress_isvc = settled(&model(), &config, Readiness::Ready);
    let httproute_isvc = settled(
        &annotated(
            isvc_object("h", "ns", predictor_only()),
            json!({ "isvc-ingress.io/route": "HTTPRoute" }),
        ),
        &config,
        Readiness::Ready,
    );
    let mut live = live_routes(&ingress_isvc, &config);
    live.extend(live_routes(&httproute_isvc, &config));
    let mut harness = Harness::new(config, live);
    // The config watcher puts a new ingress class in force: it changes Ingresses only.
    let changed = config_with(json!({ "ingressClassName": "nginx" }), "Standard");
    harness.state.replace_config(changed.clone());
    let routes = planned_routes(&ingress_isvc, &changed);
    assert_eq!(routes[0]["spec"]["ingressClassName"], "nginx");
    harness
        .reconcile(&ingress_isvc, vec![apply(&routes[0])])
        .await
        .expect("the Ingress is re-applied");
    harness
        .reconcile(&httproute_isvc, vec![])
        .await
        .expect("the unchanged ISVC costs no write");
    assert_eq!(harness.metrics.reconciles_with(Outcome::Changed), 1);
    assert_eq!(harness.metrics.reconciles_with(Outcome::Unchanged), 1);
}

/// With KServe owning the routes (`--route-owner kserve`), the reconciler must not write the
/// Ingresses, HTTPRoutes and VirtualServices KServe writes, or the two would fight: it writes
/// only the status. DomainMappings, which KServe never creates, are still written.
#[tokio::test]
async fn with_kserve_as_route_owner_only_the_status_and_domain_mappings_are_written() {
    use isvc_ingress::plan::{Policy, RouteOwner};
    let kserve_owns = Policy {
        route_owner: RouteOwner::Kserve,
        ..Policy::default()
    };
    for config in [standard(), gateway_api(), knative()] {
        let isvc = model();
        let mut harness = Harness::with_policy(
            config.clone(),
            vec![],
            ServedKinds::all(),
            kserve_owns.clone(),
        );
        // The URLs only: KServe writes `IngressReady` for the routes it writes.
        let status = first_status_with(&isvc, &config, None);
        assert!(status["status"].get("conditions").is_none(), "{status}");
        harness
            .reconcile(&isvc, vec![patch_status("ns", "m", status)])
            .await
            .expect("reconciled");
    }
    let config = knative();
    let isvc = annotated(model(), json!({ "isvc-ingress.io/route": "DomainMapping" }));
    let routes = planned_routes(&isvc, &config);
    assert_eq!(routes[0]["kind"], "DomainMapping");
    let mut harness = Harness::with_policy(config.clone(), vec![], ServedKinds::all(), kserve_owns);
    let status = first_status(&isvc, &config, Readiness::Ready);
    harness
        .reconcile(
            &isvc,
            vec![apply(&routes[0]), patch_status("ns", "m", status)],
        )
        .await
        .expect("reconciled");
}

/// With `--route-owner kserve`, `IngressReady` is KServe's for the routes KServe writes: whatever
/// it says (False while an HTTPRoute has no parent status, `Stopped` without our message, True
/// for cluster-local) is left as written. Against KServe v0.19.0 the reconciler's own True
/// (it reads no route KServe writes) and KServe's False undid each other about 100 times a
/// minute (tests/kserve_alongside, `coexistence::..._with_httproutes`).
#[tokio::test]
async fn with_kserve_as_route_owner_ingress_ready_stays_as_kserve_wrote_it() {
    use isvc_ingress::plan::{Policy, RouteOwner};
    let kserve_owns = Policy {
        route_owner: RouteOwner::Kserve,
        ..Policy::default()
    };
    let kserve_says = [
        (
            gateway_api(),
            model(),
            Readiness::not_ready("ParentStatusNotAvailable", "Transformer HttpRouteNotReady"),
        ),
        (
            standard(),
            annotated(model(), json!({ "serving.kserve.io/stop": "true" })),
            Readiness::not_ready("Stopped", ""),
        ),
        (
            gateway_api(),
            labelled(
                model(),
                json!({ "networking.kserve.io/visibility": "cluster-local" }),
            ),
            Readiness::Ready,
        ),
        (
            standard(),
            model(),
            Readiness::not_ready("Anything", "KServe's"),
        ),
    ];
    for (config, isvc, readiness) in kserve_says {
        let mut isvc = settled(&isvc, &config, Readiness::Ready);
        let written = first_status(&model(), &config, readiness);
        isvc["status"]["conditions"] = written["status"]["conditions"].clone();
        let mut harness = Harness::with_policy(
            config.clone(),
            vec![],
            ServedKinds::all(),
            kserve_owns.clone(),
        );
        harness
            .reconcile(&isvc, vec![])
            .await
            .unwrap_or_else(|error| panic!("{isvc}: {error}"));
    }
}
