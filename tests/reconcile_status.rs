//! `IngressReady` from HTTPRoute parent status (reference §5.5), and status writes that keep
//! other writers' conditions — through the reconcile function and the mock API server, and as
//! table tests of the pure readiness function.

mod reconcile_mock;
mod support;

use isvc_ingress::plan;
use isvc_ingress::reconcile::decide::{Readiness, httproute_readiness};
use reconcile_mock::*;
use serde_json::{Value, json};
use support::config_with;

fn gateway_api() -> isvc_ingress::config::KserveConfig {
    config_with(json!({ "enableGatewayApi": true }), "Standard")
}

fn two_components() -> Value {
    isvc_object(
        "m",
        "ns",
        json!({ "predictor": {}, "transformer": { "containers": [] } }),
    )
}

fn parents(conditions: Value) -> Value {
    json!({ "parents": [{ "parentRef": { "name": "gw" }, "controllerName": "c", "conditions": conditions }] })
}

/// Readiness of `isvc`'s planned HTTPRoutes when each live route has the status `status_of(name)`
/// (None: the route does not exist).
fn readiness(isvc: &Value, status_of: impl Fn(&str) -> Option<Value>) -> Readiness {
    let config = gateway_api();
    let isvc_model = support::isvc(isvc.clone());
    let planned = plan::plan(&isvc_model, &config, &Default::default()).unwrap();
    let routes = plan::routes(&planned, &isvc_model, &config);
    httproute_readiness("m", &routes, |name| {
        status_of(name).map(|status| json!({ "status": status }))
    })
}

#[test]
fn httproute_readiness_follows_kserve() {
    let isvc = two_components();
    let accepted = || {
        parents(json!([{ "type": "Accepted", "status": "True" },
                       { "type": "ResolvedRefs", "status": "True" }]))
    };
    assert_eq!(readiness(&isvc, |_| Some(accepted())), Readiness::Ready);
    // Checked in order predictor, transformer, top-level: the first problem wins.
    assert_eq!(
        readiness(&isvc, |name| (name != "m-transformer").then(accepted)),
        Readiness::not_ready(
            "Transformer Deployment NotReady",
            "Transformer HTTPRoute not created"
        )
    );
    assert_eq!(
        readiness(&isvc, |name| Some(if name == "m" {
            json!({ "parents": [] })
        } else {
            accepted()
        })),
        Readiness::not_ready(
            "ParentStatusNotAvailable",
            "InferenceService HttpRouteNotReady"
        )
    );
    assert_eq!(
        readiness(&isvc, |name| Some(if name == "m-predictor" {
            parents(
                json!([{ "type": "Accepted", "status": "False", "reason": "NotAllowedByListeners",
                             "message": "no listener allows this namespace" }]),
            )
        } else {
            accepted()
        })),
        Readiness::not_ready(
            "NotAllowedByListeners",
            "Predictor no listener allows this namespace"
        )
    );
    // Any condition type counts, and across parents the first False one wins.
    let two_parents = json!({ "parents": [
        { "conditions": [{ "type": "Accepted", "status": "True" }] },
        { "conditions": [{ "type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound", "message": "no svc" },
                         { "type": "Accepted", "status": "False", "reason": "NotAccepted", "message": "later" }] },
    ]});
    assert_eq!(
        readiness(&isvc, |_| Some(two_parents.clone())),
        Readiness::not_ready("BackendNotFound", "Predictor no svc")
    );
    // A False condition without a reason still says something.
    assert_eq!(
        readiness(&isvc, |_| Some(parents(
            json!([{ "type": "Accepted", "status": "False" }])
        ))),
        Readiness::not_ready("RouteNotAccepted", "Predictor ")
    );
}

#[tokio::test]
async fn accepted_httproutes_make_ingress_ready_true() {
    let config = gateway_api();
    let isvc = two_components();
    // Routes exist and are accepted; the status still says they were not.
    let live = live_routes(&isvc, &config);
    let mut waiting = isvc.clone();
    waiting["status"] = json!({ "conditions": [
        { "type": "PredictorReady", "status": "True", "lastTransitionTime": "2024-06-01T00:00:00Z" },
        { "type": "IngressReady", "status": "False", "reason": "ParentStatusNotAvailable",
          "message": "Predictor HttpRouteNotReady", "lastTransitionTime": "2024-06-01T00:00:00Z" },
    ]});
    let mut expected = first_status(&isvc, &config, Readiness::Ready);
    // KServe's PredictorReady is kept, in place; IngressReady flips and moves its transition time.
    expected["status"]["conditions"] = json!([
        { "type": "PredictorReady", "status": "True", "lastTransitionTime": "2024-06-01T00:00:00Z" },
        { "type": "IngressReady", "status": "True", "lastTransitionTime": NOW },
    ]);
    let mut harness = Harness::new(config, live);
    harness
        .reconcile(&waiting, vec![patch_status("ns", "m", expected)])
        .await
        .expect("reconciled");
}

#[tokio::test]
async fn a_route_the_gateway_refuses_makes_ingress_ready_false() {
    let config = gateway_api();
    let isvc = settled(&two_components(), &config, Readiness::Ready);
    let mut live = live_routes(&isvc, &config);
    let top = live
        .iter_mut()
        .find(|route| route["metadata"]["name"] == "m")
        .unwrap();
    top["status"] = parents(json!([
        { "type": "Accepted", "status": "False", "reason": "NotAllowedByListeners",
          "message": "no listener for hostname m-ns.example.com" },
    ]));
    let mut harness = Harness::new(config, live);
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
                            "reason": "NotAllowedByListeners",
                            "message": "InferenceService no listener for hostname m-ns.example.com",
                            "lastTransitionTime": NOW }] },
                    }),
                ),
                event(
                    "ns",
                    "m",
                    "Warning",
                    "NotAllowedByListeners",
                    "no listener for hostname",
                ),
            ],
        )
        .await
        .expect("reconciled");
}

/// docs/status-urls.md through the reconciler: a Knative component URL the platform wrote is
/// kept over the planned one (a prediction), its restUrl follows it, and a `PlatformUrlKept`
/// Event names the field.
#[tokio::test]
async fn a_written_knative_url_is_kept_and_reported_by_an_event() {
    let config = config_with(json!({}), "Knative");
    let isvc = isvc_object("m", "ns", json!({ "predictor": {} }));
    let live = live_routes(&isvc, &config);
    let mut written = settled(&isvc, &config, Readiness::Ready);
    let platform_url = "http://m-predictor-ns.example.com";
    written["status"]["components"]["predictor"]["url"] = json!(platform_url);
    let expected = json!({
        "metadata": { "resourceVersion": RESOURCE_VERSION },
        "status": { "components": { "predictor": { "restUrl": platform_url } } },
    });
    let mut harness = Harness::new(config, live);
    harness
        .reconcile(
            &written,
            vec![
                event(
                    "ns",
                    "m",
                    "Warning",
                    "PlatformUrlKept",
                    "status.components.predictor.url keeps \"http://m-predictor-ns.example.com\" as written (planned \"http://m-predictor.ns.example.com\": a prediction)",
                ),
                patch_status("ns", "m", expected),
            ],
        )
        .await
        .expect("reconciled");
}
