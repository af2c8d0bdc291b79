//! Knative `serving.knative.dev/v1beta1` DomainMapping: a custom host in Knative mode without
//! Istio (Kourier, Contour), where KServe has no route at all.

use super::RoutePlan;
use super::metadata::RouteMetadata;
use super::objects::{DomainMappingSpec, DomainMappingTls, KnativeReference, Object, RouteObject};
use crate::isvc::InferenceService;

/// Named after the host (Knative requires it), pointing at the entry Knative Service.
pub(super) fn build(
    plan: &RoutePlan,
    isvc: &InferenceService,
    metadata: &RouteMetadata,
) -> RouteObject {
    let host = plan
        .routing
        .top_host
        .as_deref()
        .expect("a DomainMapping plan has a host");
    RouteObject::DomainMapping(Object {
        api_version: "serving.knative.dev/v1beta1",
        kind: "DomainMapping",
        metadata: metadata.for_route(host.trim_end_matches('.')),
        spec: DomainMappingSpec {
            reference: KnativeReference {
                api_version: "serving.knative.dev/v1",
                kind: "Service",
                name: isvc.entry_component().service_name.clone(),
                namespace: isvc.namespace.clone(),
            },
            tls: plan
                .routing
                .settings
                .tls_secret
                .as_ref()
                .map(|secret| DomainMappingTls {
                    secret_name: secret.clone(),
                }),
        },
    })
}
