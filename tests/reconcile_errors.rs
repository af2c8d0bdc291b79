//! Failures: API errors are returned to the error policy, which retries each ISVC with its own
//! exponential backoff (reset by a success) and never ends the process; a refusal the user must
//! fix gets an Event; a replica that loses the lease stops writing at once.

mod reconcile_mock;
mod support;

use http::StatusCode;
use isvc_ingress::reconcile::decide::Readiness;
use isvc_ingress::reconcile::metrics::Outcome;
use isvc_ingress::reconcile::{Leadership, error_policy, kinds};
use kube::runtime::controller::Action;
use reconcile_mock::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{config_with, predictor_only};

fn standard() -> isvc_ingress::config::KserveConfig {
    config_with(json!({}), "Standard")
}

fn model() -> Value {
    isvc_object("m", "ns", predictor_only())
}

fn policy(harness: &Harness, isvc: &Value, error: &isvc_ingress::reconcile::Error) -> Action {
    error_policy(
        Arc::new(cached(isvc.clone())),
        error,
        harness.context.clone(),
    )
}

#[tokio::test]
async fn a_server_error_is_retried_with_a_growing_backoff_then_reset_by_success() {
    let config = standard();
    let isvc = model();
    let route = planned_routes(&isvc, &config).remove(0);
    let mut harness = Harness::new(config.clone(), vec![]);
    let mut delays = Vec::new();
    for _ in 0..3 {
        let error = harness
            .reconcile(
                &isvc,
                vec![apply(&route).respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    api_error(500, "InternalError"),
                )],
            )
            .await
            .expect_err("a 500 fails the reconcile");
        assert!(!error.is_conflict());
        assert_eq!(error.metric_label(), "apply");
        delays.push(policy(&harness, &isvc, &error));
    }
    assert_eq!(
        delays,
        [
            Action::requeue(Duration::from_secs(1)),
            Action::requeue(Duration::from_secs(2)),
            Action::requeue(Duration::from_secs(4)),
        ]
    );
    assert_eq!(harness.metrics.reconciles_with(Outcome::Error), 3);
    // The retry succeeds; the next failure starts from 1 s again.
    harness
        .reconcile(
            &isvc,
            vec![
                apply(&route),
                patch_status("ns", "m", first_status(&isvc, &config, Readiness::Ready)),
            ],
        )
        .await
        .expect("the retry succeeds");
    // Reconciled again on the same cached copy (the patch's watch event has not arrived):
    // nothing is written, not even the status again (it would be refused with 409).
    harness
        .reconcile(&isvc, vec![])
        .await
        .expect("nothing to write while the cache is behind our own patch");
    // The cache moved on but the status is still not what we wrote (someone reverted it):
    // only the status is left to write (the Ingress is in the cache); that fails with a 503.
    let mut moved = isvc.clone();
    moved["metadata"]["resourceVersion"] = json!("moved-on");
    let error = harness
        .reconcile(
            &moved,
            vec![
                patch_status("ns", "m", {
                    let mut body = first_status(&moved, &config, Readiness::Ready);
                    body["metadata"]["resourceVersion"] = json!("moved-on");
                    body
                })
                .respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    api_error(503, "ServiceUnavailable"),
                ),
            ],
        )
        .await
        .expect_err("fails again");
    assert_eq!(error.metric_label(), "status");
    assert_eq!(
        policy(&harness, &moved, &error),
        Action::requeue(Duration::from_secs(1))
    );
}

#[tokio::test]
async fn a_status_conflict_is_retried_quickly_on_the_fresh_object() {
    let config = standard();
    let isvc = settled(&model(), &config, Readiness::Ready);
    let live = live_routes(&isvc, &config);
    // Someone (KServe) rewrote the conditions; our cached copy is stale.
    let mut stale = isvc.clone();
    stale["status"]["conditions"] = json!([]);
    let mut harness = Harness::new(config, live);
    let expected = json!({
        "metadata": { "resourceVersion": RESOURCE_VERSION },
        "status": { "conditions": [{ "type": "IngressReady", "status": "True", "lastTransitionTime": NOW }] },
    });
    let error = harness
        .reconcile(
            &stale,
            vec![
                patch_status("ns", "m", expected)
                    .respond(StatusCode::CONFLICT, api_error(409, "Conflict")),
            ],
        )
        .await
        .expect_err("a 409 fails this attempt");
    assert!(error.is_conflict());
    assert_eq!(error.metric_label(), "conflict");
    assert_eq!(
        policy(&harness, &isvc, &error),
        Action::requeue(Duration::from_millis(200))
    );
    // The retry reads the fresh object, which already says IngressReady=True: nothing to write.
    harness
        .reconcile(&isvc, vec![])
        .await
        .expect("the retry finds nothing to do");
}

#[tokio::test]
async fn a_refused_write_is_an_event_on_the_first_failure_only() {
    let config = standard();
    let isvc = model();
    let route = planned_routes(&isvc, &config).remove(0);
    let mut harness = Harness::new(config, vec![]);
    let refused =
        || apply(&route).respond(StatusCode::UNPROCESSABLE_ENTITY, api_error(422, "Invalid"));
    let error = harness
        .reconcile(
            &isvc,
            vec![
                refused(),
                event(
                    "ns",
                    "m",
                    "Warning",
                    "RouteWriteFailed",
                    "applying networking.k8s.io/v1 Ingress ns/m",
                ),
            ],
        )
        .await
        .expect_err("refused");
    assert!(error.is_user_visible());
    policy(&harness, &isvc, &error);
    // The retry fails the same way: no second Event (the first one is still in describe).
    harness
        .reconcile(&isvc, vec![refused()])
        .await
        .expect_err("refused again");
}

#[tokio::test]
async fn a_replica_that_is_not_the_leader_writes_nothing_but_keeps_its_host_index() {
    let config = standard();
    let isvc = model();
    let mut harness = Harness::new(config, vec![]);
    harness.leader.send(false).unwrap();
    harness.reconcile(&isvc, vec![]).await.expect("reconciled");
    assert_eq!(harness.metrics.reconciles_with(Outcome::NotLeader), 1);
    assert_eq!(
        harness.hosts.holder_of("m-ns.example.com"),
        Some(("ns".into(), "m".into()))
    );
}

#[tokio::test]
async fn losing_the_lease_mid_reconcile_stops_the_writes_at_once() {
    let config = config_with(json!({ "enableGatewayApi": true }), "Standard");
    let isvc = isvc_object(
        "m",
        "ns",
        json!({ "predictor": {}, "transformer": { "containers": [] } }),
    );
    let routes = planned_routes(&isvc, &config);
    assert_eq!(routes.len(), 3);
    let mut harness = Harness::new(config, vec![]);
    let leader = harness.leader.clone();
    // The lease is lost while the first apply is in flight: no second apply, no status.
    harness
        .reconcile(
            &isvc,
            vec![apply(&routes[0]).then(move || {
                leader.send(false).unwrap();
            })],
        )
        .await
        .expect("losing the lease is not an error");
    assert_eq!(harness.metrics.reconciles_with(Outcome::NotLeader), 1);
}

#[test]
fn leadership_is_always_true_without_election() {
    assert!(Leadership::always().is_leader());
}

#[tokio::test]
async fn discovery_finds_the_served_kinds_and_treats_404_as_absent() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (service, mut handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let client = kube::Client::new(service, "default");
    let discovery = tokio::spawn(async move { kinds::discover(&client).await });
    let list = |group_version: &str, names: &[&str]| {
        let resources: Vec<Value> = names
            .iter()
            .map(|name| json!({ "name": name, "singularName": "", "namespaced": true, "kind": "K", "verbs": [] }))
            .collect();
        json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources })
    };
    let answers = [
        (
            "/apis/networking.k8s.io/v1",
            StatusCode::OK,
            list("networking.k8s.io/v1", &["ingresses", "ingresses/status"]),
        ),
        (
            "/apis/gateway.networking.k8s.io/v1",
            StatusCode::OK,
            list("gateway.networking.k8s.io/v1", &["gateways"]),
        ),
        (
            "/apis/networking.istio.io/v1",
            StatusCode::NOT_FOUND,
            api_error(404, "NotFound"),
        ),
        ("/api/v1", StatusCode::OK, list("v1", &["services", "pods"])),
        (
            "/apis/serving.knative.dev/v1beta1",
            StatusCode::OK,
            list("serving.knative.dev/v1beta1", &["domainmappings"]),
        ),
    ];
    for (path, status, body) in answers {
        let (request, respond) = handle.next_request().await.expect("a discovery request");
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(request.uri().path(), path);
        respond.send_response(
            http::Response::builder()
                .status(status)
                .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }
    let served = discovery.await.unwrap().expect("discovered");
    use isvc_ingress::reconcile::ManagedKind::*;
    assert_eq!(
        served.iter().collect::<Vec<_>>(),
        [Ingress, Service, DomainMapping],
        "HTTPRoute is absent (only gateways served) and the Istio group is not installed"
    );
}
