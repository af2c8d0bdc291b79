//! `networking.k8s.io/v1` Ingress for Standard mode without Gateway API (reference §3.2).

use super::RoutePlan;
use super::metadata::RouteMetadata;
use crate::config::KserveConfig;
use crate::isvc::{ComponentKind, InferenceService};
use serde_json::{Value, json};

/// One Ingress named after the ISVC: the top-level host to the entry component, then each
/// component host to its own Service. KServe sends the transformer host to the predictor and
/// gives the explainer the transformer's host (§10 Q3); here every host reaches its component.
pub(super) fn build(
    plan: &RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
    metadata: &RouteMetadata,
) -> Value {
    let top_host = plan
        .routing
        .top_host
        .as_deref()
        .expect("an Ingress plan has a top-level host");
    let mut rules = vec![rule(top_host, &isvc.entry_component().service_name)];
    for kind in [
        ComponentKind::Explainer,
        ComponentKind::Transformer,
        ComponentKind::Predictor,
    ] {
        if let (Some(component), Some(planned)) = (isvc.component(kind), plan.components.get(&kind))
        {
            rules.push(rule(&planned.host, &component.service_name));
        }
    }
    let mut spec = json!({ "rules": rules });
    let class = plan
        .routing
        .settings
        .ingress_class
        .as_ref()
        .or(config.ingress.ingress_class_name.as_ref());
    if let Some(class) = class {
        spec["ingressClassName"] = json!(class);
    }
    if let Some(secret) = &plan.routing.settings.tls_secret {
        let mut hosts: Vec<&str> = Vec::new();
        for rule in spec["rules"].as_array().into_iter().flatten() {
            let host = rule["host"].as_str().unwrap_or_default();
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        spec["tls"] = json!([{ "hosts": hosts, "secretName": secret }]);
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata.for_route(&isvc.name),
        "spec": spec,
    })
}

fn rule(host: &str, service: &str) -> Value {
    json!({
        "host": host,
        "http": { "paths": [{
            "path": "/",
            "pathType": "Prefix",
            "backend": { "service": { "name": service, "port": { "number": 80 } } },
        }]},
    })
}
