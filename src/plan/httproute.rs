//! Gateway API `gateway.networking.k8s.io/v1` HTTPRoutes for Standard mode (reference §5): one
//! per component, the top-level one, and — for path-based routing — one on the shared
//! `ingressDomain` host.
//!
//! KServe puts the shared host into the top-level route, whose catch-all rule then answers every
//! path of that host for whichever ISVC wins the conflict, and its path rules neither anchor nor
//! rewrite the prefix (§10 Q6). With `--route-owner kserve` that is what is described, since it
//! is what KServe writes. With `--route-owner isvc-ingress` the shared host gets its own route,
//! `<isvc>-path`, whose only rule is a `PathPrefix` match with a `ReplacePrefixMatch` rewrite
//! to `/`.

use super::metadata::RouteMetadata;
use super::objects::{
    BackendReference, HttpHeader, HttpHeaderMatch, HttpHeaderModifier, HttpPathMatch,
    HttpPathModifier, HttpRouteFilter, HttpRouteMatch, HttpRouteRule, HttpRouteSpec,
    HttpRouteTimeouts, HttpUrlRewrite, Object, ParentReference, RouteObject,
};
use super::service::{self, ProtocolPorts, SERVICE_HTTP_PORT};
use super::{RouteOwner, RoutePlan};
use crate::config::KserveConfig;
use crate::isvc::{Component, ComponentKind, InferenceService};

pub const API_VERSION: &str = "gateway.networking.k8s.io/v1";
/// Rule path of explain requests (KServe's `ExplainPrefix`).
pub const EXPLAIN_PATH_REGEX: &str = r"^/v1/models/[\w-]+:explain$";
/// KServe's catch-all rule path.
pub const CATCH_ALL_PATH_REGEX: &str = "^/.*$";
/// Suffix of KServe's path-based explain rule (`PathBasedExplainPrefix`).
pub const PATH_EXPLAIN_SUFFIX_REGEX: &str = r"(/v1/models/[\w-]+:explain)$";
pub const GRPC_PATH_REGEX: &str = r"^/inference\.GRPCInferenceService/.*$";
pub const GRPC_CONTENT_TYPE_REGEX: &str = "^application/grpc.*";
/// Timeout KServe gives a rule when the component sets none (§11.2).
pub const DEFAULT_TIMEOUT: &str = "60s";

/// The builder's view of one ISVC.
struct Builder<'a> {
    plan: &'a RoutePlan,
    isvc: &'a InferenceService,
    config: &'a KserveConfig,
    metadata: &'a RouteMetadata,
    parent: ParentReference,
}

pub(super) fn build(
    plan: &RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
    metadata: &RouteMetadata,
) -> Vec<RouteObject> {
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
        parent: ParentReference {
            group: "gateway.networking.k8s.io",
            kind: "Gateway",
            namespace: namespace.clone(),
            name: name.clone(),
        },
    };
    let mut routes: Vec<RouteObject> = isvc
        .components
        .iter()
        .map(|component| builder.component_route(component))
        .collect();
    let kserve_writes = plan.routing.owner == RouteOwner::Kserve;
    match (&plan.path, kserve_writes) {
        (Some(path), true) => routes.push(builder.top_level_route(Some(path))),
        (Some(path), false) => {
            routes.push(builder.top_level_route(None));
            routes.push(builder.path_route(path));
        }
        (None, _) => routes.push(builder.top_level_route(None)),
    }
    routes
}

fn path_match(match_type: &'static str, value: &str) -> HttpRouteMatch {
    HttpRouteMatch {
        path: HttpPathMatch {
            match_type,
            value: value.to_string(),
        },
        headers: Vec::new(),
    }
}

impl Builder<'_> {
    fn route(&self, name: &str, hostnames: Vec<String>, rules: Vec<HttpRouteRule>) -> RouteObject {
        RouteObject::HttpRoute(Object {
            api_version: API_VERSION,
            kind: "HTTPRoute",
            metadata: self.metadata.for_route(name),
            spec: HttpRouteSpec {
                hostnames,
                parent_refs: vec![self.parent.clone()],
                rules,
            },
        })
    }

    /// `<isvc>-<component>` on the component's own host.
    fn component_route(&self, component: &Component) -> RouteObject {
        let host = self.plan.components[&component.kind].host.clone();
        let name = format!("{}-{}", self.isvc.name, component.kind.key());
        self.route(&name, vec![host], self.catch_all_rules(component))
    }

    /// `<isvc>` on the top-level host and the additional hosts (§5.4). With `kserve_path`, as
    /// KServe writes it for path-based routing: the shared `ingressDomain` host too, and the
    /// path rules (explain regex, then the unanchored `<path>/` regex, neither rewritten).
    fn top_level_route(&self, kserve_path: Option<&str>) -> RouteObject {
        let routing = &self.plan.routing;
        let top_host = routing
            .top_host
            .as_ref()
            .expect("an HTTPRoute plan has a top-level host");
        let mut hostnames: Vec<String> = std::iter::once(top_host)
            .chain(&routing.additional_hosts)
            .cloned()
            .collect();
        let mut rules = Vec::new();
        if let Some(explainer) = self.isvc.component(ComponentKind::Explainer) {
            rules.push(self.rule(
                vec![path_match("RegularExpression", EXPLAIN_PATH_REGEX)],
                explainer,
                SERVICE_HTTP_PORT,
                None,
            ));
        }
        rules.extend(self.catch_all_rules(self.isvc.entry_component()));
        if let Some(path) = kserve_path {
            hostnames.push(self.config.ingress.ingress_domain.clone());
            if let Some(explainer) = self.isvc.component(ComponentKind::Explainer) {
                rules.push(self.rule(
                    vec![path_match(
                        "RegularExpression",
                        &format!("{path}{PATH_EXPLAIN_SUFFIX_REGEX}"),
                    )],
                    explainer,
                    SERVICE_HTTP_PORT,
                    None,
                ));
            }
            rules.push(self.rule(
                vec![path_match("RegularExpression", &format!("{path}/"))],
                self.isvc.entry_component(),
                SERVICE_HTTP_PORT,
                None,
            ));
        }
        self.route(&self.isvc.name, hostnames, rules)
    }

    /// `<isvc>-path` on the shared `ingressDomain` host: the prefix, rewritten to `/`, to the
    /// entry component.
    fn path_route(&self, path: &str) -> RouteObject {
        let rewrite = HttpRouteFilter::UrlRewrite {
            url_rewrite: HttpUrlRewrite {
                path: HttpPathModifier {
                    modifier_type: "ReplacePrefixMatch",
                    replace_prefix_match: "/",
                },
            },
        };
        let rule = self.rule(
            vec![path_match("PathPrefix", path)],
            self.isvc.entry_component(),
            SERVICE_HTTP_PORT,
            Some(rewrite),
        );
        let name = format!("{}-path", self.isvc.name);
        let hostnames = vec![self.config.ingress.ingress_domain.clone()];
        self.route(&name, hostnames, vec![rule])
    }

    /// The catch-all rule to a component's Service port 80; when that Service has a gRPC port
    /// and a REST port, KServe's dual-protocol pair instead (§5.2): gRPC requests to the gRPC
    /// port, the rest to the REST port, both ports of the Service KServe creates.
    fn catch_all_rules(&self, component: &Component) -> Vec<HttpRouteRule> {
        let catch_all = vec![path_match("RegularExpression", CATCH_ALL_PATH_REGEX)];
        let Some((grpc_port, rest_port)) =
            ProtocolPorts::of(&service::service_ports(component)).split()
        else {
            return vec![self.rule(catch_all, component, SERVICE_HTTP_PORT, None)];
        };
        let grpc_match = HttpRouteMatch {
            headers: vec![HttpHeaderMatch {
                match_type: "RegularExpression",
                name: "content-type",
                value: GRPC_CONTENT_TYPE_REGEX,
            }],
            ..path_match("RegularExpression", GRPC_PATH_REGEX)
        };
        vec![
            self.rule(vec![grpc_match], component, grpc_port, None),
            self.rule(catch_all, component, rest_port, None),
        ]
    }

    fn rule(
        &self,
        matches: Vec<HttpRouteMatch>,
        component: &Component,
        port: u16,
        extra_filter: Option<HttpRouteFilter>,
    ) -> HttpRouteRule {
        let headers = HttpRouteFilter::RequestHeaderModifier {
            request_header_modifier: HttpHeaderModifier {
                set: vec![
                    HttpHeader {
                        name: "KServe-Isvc-Name",
                        value: self.isvc.name.clone(),
                    },
                    HttpHeader {
                        name: "KServe-Isvc-Namespace",
                        value: self.isvc.namespace.clone(),
                    },
                ],
            },
        };
        HttpRouteRule {
            matches,
            filters: std::iter::once(headers).chain(extra_filter).collect(),
            backend_refs: vec![BackendReference {
                kind: "Service",
                name: component.service_name.clone(),
                namespace: self.isvc.namespace.clone(),
                port,
            }],
            timeouts: self
                .timeout(component)
                .map(|request| HttpRouteTimeouts { request }),
        }
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
                // KServe writes `<n>s`, which the CRD refuses beyond 5 digits (refused at
                // admission, see validation); ours spells the same duration in h/m/s.
                (None, Some(seconds)) if self.plan.routing.owner == RouteOwner::Kserve => {
                    format!("{seconds}s")
                }
                (None, Some(seconds)) => gateway_duration_of_seconds(seconds),
                (None, None) => DEFAULT_TIMEOUT.to_string(),
            },
        )
    }
}

/// `seconds` as a Gateway API `Duration` (at most 5 digits per unit): `<n>s` up to 99999,
/// else hours, minutes and seconds (`100000` is `27h46m40s`).
pub fn gateway_duration_of_seconds(seconds: i64) -> String {
    const MAX_NUMBER: i64 = 99_999;
    if seconds <= MAX_NUMBER {
        return format!("{seconds}s");
    }
    let (hours, rest) = (seconds / 3600, seconds % 3600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    let mut text = format!("{hours}h");
    if minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    if seconds > 0 {
        text.push_str(&format!("{seconds}s"));
    }
    text
}
