//! Routes as the API server stores them, shared by the mock API server (`reconcile_mock`) and
//! the scale store (`scale_store`, also built into `benches/reconcile_scale.rs`), which both
//! include this file by path.

use serde_json::{Value, json};

/// A generated route as the API server stores it: uid, resourceVersion, generation and
/// managedFields added, and the defaults it fills in on HTTPRoute backends (which must not make
/// the route look changed).
pub fn stored(route: &Value, uid: &str) -> Value {
    let mut object = route.clone();
    object["metadata"]["uid"] = json!(uid);
    object["metadata"]["resourceVersion"] = json!("7");
    object["metadata"]["generation"] = json!(1);
    object["metadata"]["managedFields"] =
        json!([{ "manager": "isvc-ingress", "operation": "Apply" }]);
    if object["kind"] == "HTTPRoute" {
        for rule in object["spec"]["rules"].as_array_mut().into_iter().flatten() {
            for backend in rule["backendRefs"].as_array_mut().into_iter().flatten() {
                backend["weight"] = json!(1);
                backend["group"] = json!("");
            }
        }
    }
    object
}

/// An HTTPRoute status whose one parent, the default Gateway, accepted it.
pub fn accepted() -> Value {
    json!({ "parents": [{
        "parentRef": { "group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "kserve", "name": "kserve-ingress-gateway" },
        "controllerName": "example.com/gateway",
        "conditions": [
            { "type": "Accepted", "status": "True", "reason": "Accepted", "message": "" },
            { "type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "" },
        ],
    }]})
}
