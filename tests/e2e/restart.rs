//! kube-apiserver stopped and started again under a running `serve`: the process does not crash,
//! `/readyz` drops while the API server is gone and returns after, the watches resume (a new ISVC
//! is annotated and routed), and nothing already in place is written again.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::control_plane::{ControlPlane, eventually};
use crate::install::install;

fn isvc(name: &str) -> String {
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "restart"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
    })
    .to_string()
}

fn resource_version(plane: &ControlPlane, kind: &str, name: &str) -> Option<String> {
    plane.get(kind, Some("restart"), name).map(|object| {
        object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_owned()
    })
}

#[test]
fn the_api_server_restarts_under_a_running_serve() {
    let mut plane = ControlPlane::start();
    let installation = install(&plane, &["--route-owner", "isvc-ingress"]);
    let replica = &installation.replicas[0];
    plane.namespace("restart");
    plane.apply(&isvc("before"));
    assert!(
        eventually(Duration::from_secs(30), || {
            resource_version(&plane, "ingress", "before").is_some()
        }),
        "the Ingress of the first ISVC was never written"
    );
    // Let the status write land before taking the baseline.
    std::thread::sleep(Duration::from_secs(3));
    let isvc_version = resource_version(&plane, "inferenceservice", "before");
    let ingress_version = resource_version(&plane, "ingress", "before");

    let stopped = Instant::now();
    plane.stop_apiserver();
    eprintln!("restart: kube-apiserver stopped in {:?}", stopped.elapsed());
    assert!(
        eventually(Duration::from_secs(40), || replica.admin_status("/readyz")
            == 503),
        "/readyz stayed {} with the API server gone",
        replica.admin_status("/readyz")
    );
    eprintln!(
        "restart: unready {:?} after the API server stopped",
        stopped.elapsed()
    );
    assert!(replica.process.is_running(), "serve crashed");

    plane.start_apiserver();
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(60), || replica.admin_status("/readyz")
            == 200),
        "/readyz did not return:\n{}",
        replica.process.log_tail(30)
    );
    eprintln!(
        "restart: ready again {:?} after the API server answered",
        started.elapsed()
    );
    assert!(replica.process.is_running(), "serve crashed");

    // The watches resumed: a new ISVC is annotated (webhook) and routed (reconciler).
    plane.apply(&isvc("after"));
    let stored = plane
        .get("inferenceservice", Some("restart"), "after")
        .unwrap();
    assert!(stored["metadata"]["annotations"]["isvc-ingress.io/url"].is_string());
    assert!(
        eventually(Duration::from_secs(30), || {
            resource_version(&plane, "ingress", "after").is_some()
        }),
        "the reconciler did not route an ISVC created after the restart:\n{}",
        replica.process.log_tail(200)
    );
    // Nothing in place was written again.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        resource_version(&plane, "inferenceservice", "before"),
        isvc_version
    );
    assert_eq!(
        resource_version(&plane, "ingress", "before"),
        ingress_version
    );
}
