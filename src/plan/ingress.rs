//! `networking.k8s.io/v1` Ingress for Standard mode without Gateway API (reference §3.2).

use super::RoutePlan;
use super::metadata::RouteMetadata;
use super::objects::{
    IngressBackend, IngressHttp, IngressPath, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTls, Object, PortNumber, RouteObject,
};
use crate::config::KserveConfig;
use crate::isvc::{ComponentKind, InferenceService};

/// One Ingress named after the ISVC: the top-level host to the entry component, then each
/// component host to its own Service. KServe sends the transformer host to the predictor and
/// gives the explainer the transformer's host (§10 Q3); here every host reaches its component.
pub(super) fn build(
    plan: &RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
    metadata: &RouteMetadata,
) -> RouteObject {
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
    let settings = &plan.routing.settings;
    let tls = settings
        .tls_secret
        .iter()
        .map(|secret| {
            let mut hosts: Vec<String> = Vec::with_capacity(rules.len());
            for rule in &rules {
                if !hosts.contains(&rule.host) {
                    hosts.push(rule.host.clone());
                }
            }
            IngressTls {
                hosts,
                secret_name: secret.clone(),
            }
        })
        .collect();
    RouteObject::Ingress(Object {
        api_version: "networking.k8s.io/v1",
        kind: "Ingress",
        metadata: metadata.for_route(&isvc.name),
        spec: IngressSpec {
            ingress_class_name: settings
                .ingress_class
                .clone()
                .or_else(|| config.ingress.ingress_class_name.clone()),
            rules,
            tls,
        },
    })
}

fn rule(host: &str, service: &str) -> IngressRule {
    IngressRule {
        host: host.to_string(),
        http: IngressHttp {
            paths: vec![IngressPath {
                path: "/",
                path_type: "Prefix",
                backend: IngressBackend {
                    service: IngressServiceBackend {
                        name: service.to_string(),
                        port: PortNumber { number: 80 },
                    },
                },
            }],
        },
    }
}
