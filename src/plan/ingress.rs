//! `networking.k8s.io/v1` Ingress for Standard mode without Gateway API (reference §3.2).

use super::metadata::RouteMetadata;
use super::objects::{
    IngressBackend, IngressHttp, IngressPath, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTls, Object, PortNumber, RouteObject,
};
use super::{RouteOwner, RoutePlan};
use crate::config::KserveConfig;
use crate::isvc::{ComponentKind, InferenceService};

/// One Ingress named after the ISVC. With `--route-owner kserve`, KServe's rules (quirks
/// included, [`kserve_rules`]); with `--route-owner isvc-ingress`, the top-level host to the
/// entry component, then each component host to its own Service.
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
    let rules = if plan.routing.owner == RouteOwner::Kserve {
        kserve_rules(plan, isvc, top_host)
    } else {
        let mut rules = vec![rule(top_host, &isvc.entry_component().service_name)];
        for kind in [
            ComponentKind::Explainer,
            ComponentKind::Transformer,
            ComponentKind::Predictor,
        ] {
            if let (Some(component), Some(planned)) =
                (isvc.component(kind), plan.components.get(&kind))
            {
                rules.push(rule(&planned.host, &component.service_name));
            }
        }
        rules
    };
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

/// The rules as KServe's `createRawIngress` writes them (reference §3.2), quirk §10 Q3
/// included: with a transformer, the transformer host routes to the predictor, and the
/// explainer rule uses the transformer host (so the explainer host has no rule).
fn kserve_rules(plan: &RoutePlan, isvc: &InferenceService, top_host: &str) -> Vec<IngressRule> {
    let host = |kind: ComponentKind| {
        plan.components
            .get(&kind)
            .map(|planned| planned.host.as_str())
    };
    let service = |kind: ComponentKind| {
        isvc.component(kind)
            .map(|component| component.service_name.as_str())
    };
    let predictor = service(ComponentKind::Predictor).unwrap_or_default();
    let mut rules = Vec::new();
    let mut push = |host: Option<&str>, service: Option<&str>| {
        if let (Some(host), Some(service)) = (host, service) {
            rules.push(rule(host, service));
        }
    };
    if let Some(transformer) = service(ComponentKind::Transformer) {
        let transformer_host = host(ComponentKind::Transformer);
        push(transformer_host, service(ComponentKind::Explainer));
        push(Some(top_host), Some(transformer));
        push(transformer_host, Some(predictor));
    } else {
        push(Some(top_host), Some(predictor));
        push(
            host(ComponentKind::Explainer),
            service(ComponentKind::Explainer),
        );
    }
    push(host(ComponentKind::Predictor), Some(predictor));
    rules
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
                        port: PortNumber {
                            number: super::service::SERVICE_HTTP_PORT,
                        },
                    },
                },
            }],
        },
    }
}
