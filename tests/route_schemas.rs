//! Every kind of generated object validates against the real CRD (or k8s-openapi type), and the
//! validator itself refuses what the API server would refuse or prune.

mod support;

use serde_json::json;
use support::*;

#[test]
fn validator_rejects_unknown_and_mistyped_fields() {
    let mut route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": {"hostnames": ["m.example.com"], "rules": [{"backendRefs": [{"name": "m", "port": 80}]}]},
    });
    assert!(crd_errors(&route).is_empty(), "{:?}", crd_errors(&route));
    route["spec"]["hostname"] = json!("typo");
    assert!(
        !crd_errors(&route).is_empty(),
        "an unknown field must be refused"
    );
    route["spec"].as_object_mut().unwrap().remove("hostname");
    route["spec"]["rules"][0]["backendRefs"][0]["port"] = json!("80");
    assert!(
        !crd_errors(&route).is_empty(),
        "a string port must be refused"
    );
}
