//! Gateway API `gateway.networking.k8s.io/v1` HTTPRoutes for Standard mode (reference §5): one
//! per component, the top-level one, and — for path-based routing — one on the shared
//! `ingressDomain` host.
//!
//! KServe puts the shared host into the top-level route, whose catch-all rule then answers every
//! path of that host for whichever ISVC wins the conflict, and its path rules neither anchor nor
//! rewrite the prefix (§10 Q6). Here the shared host gets its own route, `<isvc>-path`, whose only
//! rule is a `PathPrefix` match with a `ReplacePrefixMatch` rewrite to `/`.

use super::RoutePlan;
use super::metadata::RouteMetadata;
use crate::config::KserveConfig;
use crate::isvc::{Component, ComponentKind, InferenceService};
use serde_json::{Value, json};

pub const API_VERSION: &str = "gateway.networking.k8s.io/v1";
/// Rule path of explain requests (KServe's `ExplainPrefix`).
pub const EXPLAIN_PATH_REGEX: &str = r"^/v1/models/[\w-]+:explain$";
/// KServe's catch-all rule path.
pub const CATCH_ALL_PATH_REGEX: &str = "^/.*$";
pub const GRPC_PATH_REGEX: &str = r"^/inference\.GRPCInferenceService/.*$";
pub const GRPC_CONTENT_TYPE_REGEX: &str = "^application/grpc.*";
/// Timeout KServe gives a rule when the component sets none (§11.2).
pub const DEFAULT_TIMEOUT: &str = "60s";
/// Port of the Services KServe creates in front of each component.
const SERVICE_PORT: u16 = 80;

/// The builder's view of one ISVC.
struct Builder<'a> {
    plan: &'a RoutePlan,
    isvc: &'a InferenceService,
    config: &'a KserveConfig,
    metadata: &'a RouteMetadata,
    parent_refs: Value,
}

pub(super) fn build(
    plan: &RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
    metadata: &RouteMetadata,
) -> Vec<Value> {
    let (namespace, name) = plan
        .routing
        .gateway
        .as_ref()
        .expect("an HTTPRoute plan has a gateway");
    let builder = Builder {
        plan,
        isvc,
        config,
        metadata,
        parent_refs: json!([{
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "namespace": namespace,
            "name": name,
        }]),
    };
    let mut routes: Vec<Value> = isvc
        .components
        .iter()
        .map(|component| builder.component_route(component))
        .collect();
    routes.push(builder.top_level_route());
    if let Some(path) = &plan.path {
        routes.push(builder.path_route(path));
    }
    routes
}

impl Builder<'_> {
    fn route(&self, name: &str, hostnames: Vec<&str>, rules: Vec<Value>) -> Value {
        json!({
            "apiVersion": API_VERSION,
            "kind": "HTTPRoute",
            "metadata": self.metadata.for_route(name),
            "spec": {
                "hostnames": hostnames,
                "parentRefs": self.parent_refs,
                "rules": rules,
            },
        })
    }

    /// `<isvc>-<component>` on the component's own host.
    fn component_route(&self, component: &Component) -> Value {
        let host = &self.plan.components[&component.kind].host;
        let name = format!("{}-{}", self.isvc.name, component.kind.key());
        self.route(&name, vec![host], self.catch_all_rules(component))
    }

    /// `<isvc>` on the top-level host and the additional hosts (§5.4).
    fn top_level_route(&self) -> Value {
        let routing = &self.plan.routing;
        let top_host = routing
            .top_host
            .as_deref()
            .expect("an HTTPRoute plan has a top-level host");
        let hostnames = std::iter::once(top_host)
            .chain(routing.additional_hosts.iter().map(String::as_str))
            .collect();
        let mut rules = Vec::new();
        if let Some(explainer) = self.isvc.component(ComponentKind::Explainer) {
            rules.push(self.rule(
                json!([{ "path": { "type": "RegularExpression", "value": EXPLAIN_PATH_REGEX } }]),
                explainer,
                SERVICE_PORT,
                Vec::new(),
            ));
        }
        rules.extend(self.catch_all_rules(self.isvc.entry_component()));
        self.route(&self.isvc.name, hostnames, rules)
    }

    /// `<isvc>-path` on the shared `ingressDomain` host: the prefix, rewritten to `/`, to the
    /// entry component.
    fn path_route(&self, path: &str) -> Value {
        let rewrite = json!({
            "type": "URLRewrite",
            "urlRewrite": { "path": { "type": "ReplacePrefixMatch", "replacePrefixMatch": "/" } },
        });
        let rule = self.rule(
            json!([{ "path": { "type": "PathPrefix", "value": path } }]),
            self.isvc.entry_component(),
            SERVICE_PORT,
            vec![rewrite],
        );
        let name = format!("{}-path", self.isvc.name);
        self.route(&name, vec![&self.config.ingress.ingress_domain], vec![rule])
    }

    /// The catch-all rule to a component; when the component declares a named gRPC port beside
    /// REST, a gRPC rule to that port first (KServe's dual-protocol pair, §5.2).
    fn catch_all_rules(&self, component: &Component) -> Vec<Value> {
        let catch_all =
            json!([{ "path": { "type": "RegularExpression", "value": CATCH_ALL_PATH_REGEX } }]);
        let mut rules = Vec::new();
        if let (Some(port), true) = (component.spec.grpc_port, component.spec.grpc_port_named) {
            let grpc_match = json!([{
                "path": { "type": "RegularExpression", "value": GRPC_PATH_REGEX },
                "headers": [{
                    "type": "RegularExpression",
                    "name": "content-type",
                    "value": GRPC_CONTENT_TYPE_REGEX,
                }],
            }]);
            rules.push(self.rule(grpc_match, component, port, Vec::new()));
        }
        rules.push(self.rule(catch_all, component, SERVICE_PORT, Vec::new()));
        rules
    }

    fn rule(
        &self,
        matches: Value,
        component: &Component,
        port: u16,
        extra_filters: Vec<Value>,
    ) -> Value {
        let mut filters = vec![json!({
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": { "set": [
                { "name": "KServe-Isvc-Name", "value": self.isvc.name },
                { "name": "KServe-Isvc-Namespace", "value": self.isvc.namespace },
            ]},
        })];
        filters.extend(extra_filters);
        let mut rule = json!({
            "matches": matches,
            "filters": filters,
            "backendRefs": [{
                "kind": "Service",
                "name": component.service_name,
                "namespace": self.isvc.namespace,
                "port": port,
            }],
        });
        if let Some(timeout) = self.timeout(component) {
            rule["timeouts"] = json!({ "request": timeout });
        }
        rule
    }

    /// §11.2: none when disabled; else the `timeout` annotation, the component's
    /// `timeout` seconds, or 60s.
    fn timeout(&self, component: &Component) -> Option<String> {
        if self.config.ingress.disable_http_route_timeout {
            return None;
        }
        Some(
            match (
                &self.plan.routing.settings.timeout,
                component.spec.timeout_seconds,
            ) {
                (Some(timeout), _) => timeout.clone(),
                (None, Some(seconds)) => format!("{seconds}s"),
                (None, None) => DEFAULT_TIMEOUT.to_string(),
            },
        )
    }
}
