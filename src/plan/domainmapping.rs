//! Knative `serving.knative.dev/v1beta1` DomainMapping: a custom host in Knative mode without
//! Istio (Kourier, Contour), where KServe has no route at all.

use super::RoutePlan;
use super::metadata::RouteMetadata;
use crate::isvc::InferenceService;
use serde_json::{Value, json};

/// Named after the host (Knative requires it), pointing at the entry Knative Service.
pub(super) fn build(plan: &RoutePlan, isvc: &InferenceService, metadata: &RouteMetadata) -> Value {
    let host = plan
        .routing
        .top_host
        .as_deref()
        .expect("a DomainMapping plan has a host");
    let mut spec = json!({
        "ref": {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": isvc.entry_component().service_name,
            "namespace": isvc.namespace,
        },
    });
    if let Some(secret) = &plan.routing.settings.tls_secret {
        spec["tls"] = json!({ "secretName": secret });
    }
    json!({
        "apiVersion": "serving.knative.dev/v1beta1",
        "kind": "DomainMapping",
        "metadata": metadata.for_route(host.trim_end_matches('.')),
        "spec": spec,
    })
}
