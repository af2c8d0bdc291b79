//! The API server's own validation of every object a plan describes, applied at admission:
//! what the API server (or the CRD's schema and CEL rules, or Istio's and Knative's webhooks)
//! would refuse when the object is written is refused here first, naming the field of the
//! InferenceService (or of the config) the offending value came from.
//!
//! Each rule names its upstream source; docs/route-validation.md lists them with their tests.
//! Most rules can only fail through user input (an annotation, a config value, a component
//! timeout); the structural ones (rule and match counts, filter shapes) hold by construction and
//! are checked anyway, so a change of the builders that breaks them fails here and in the tests
//! rather than at the API server.

use super::annotations::{self, annotation_field};
use super::objects::{
    DomainMappingSpec, ExternalNameServiceSpec, HttpRouteFilter, HttpRouteSpec, IngressSpec,
    IstioRewrite, IstioStringMatch, Object, RouteObject, VirtualServiceSpec,
};
use super::{CLUSTER_DOMAIN, RoutePlan};
use crate::dns;
use crate::isvc::{ComponentKind, InferenceService};
use crate::violation::Violation;

/// The legacy class annotation an Ingress may carry beside `spec.ingressClassName`.
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Gateway API `HTTPRouteSpec.hostnames` `maxItems`.
const MAX_HOSTNAMES: usize = 16;
/// Gateway API `HTTPRouteSpec.rules` `maxItems`, and the CEL limit on matches across rules.
const MAX_RULES: usize = 16;
const MAX_MATCHES_PER_ROUTE: usize = 128;
/// Gateway API `HTTPPathMatch.value` `maxLength`.
const MAX_PATH_LENGTH: usize = 1024;
/// Gateway API `Duration` (`^([0-9]{1,5}(h|m|s|ms)){1,4}$`): at most 5 digits per unit.
const MAX_DURATION_NUMBER: i64 = 99_999;
/// Istio's and the VirtualService CRD's smallest timeout (`duration(self) >= duration('1ms')`).
const MIN_ISTIO_TIMEOUT_MS: u64 = 1;

/// Where a value of a route came from, for the field of a violation.
struct Sources<'a> {
    plan: &'a RoutePlan,
    isvc: &'a InferenceService,
}

impl Sources<'_> {
    /// The field that decided `host`: the host annotation, an additional domain, or the name.
    fn host_field(&self, host: &str) -> String {
        let settings = &self.plan.routing.settings;
        if settings.host.as_deref() == Some(host) {
            annotation_field(annotations::HOST)
        } else if self
            .plan
            .routing
            .additional_hosts
            .iter()
            .any(|extra| extra == host)
        {
            "config.ingress.additionalIngressDomains".to_string()
        } else {
            "metadata.name".to_string()
        }
    }

    /// The field that decided the path of the shared host.
    fn path_field(&self) -> String {
        if self.plan.routing.settings.path.is_some() {
            annotation_field(annotations::PATH)
        } else {
            "config.ingress.pathTemplate".to_string()
        }
    }

    /// The field that decided a route's timeout for the component behind `service`.
    fn timeout_field(&self, service: &str) -> String {
        if self.plan.routing.settings.timeout.is_some() {
            return annotation_field(annotations::TIMEOUT);
        }
        let kind = self
            .isvc
            .components
            .iter()
            .find(|component| component.service_name == service)
            .map_or(ComponentKind::Predictor, |component| component.kind);
        format!("spec.{}.timeout", kind.key())
    }
}

/// Every rule the API server would enforce on `routes`, as violations of the ISVC or config
/// field each offending value came from.
pub fn check(routes: &[RouteObject], plan: &RoutePlan, isvc: &InferenceService) -> Vec<Violation> {
    let sources = Sources { plan, isvc };
    let mut violations = Vec::new();
    for route in routes {
        let mut reject = |field: String, message: String| {
            let message = format!(
                "the {} {} would be refused by the API server: {message}",
                route.kind(),
                route.metadata().name
            );
            let violation = Violation::new(field, message);
            if !violations.contains(&violation) {
                violations.push(violation);
            }
        };
        match route {
            RouteObject::Ingress(object) => check_ingress(object, &sources, &mut reject),
            RouteObject::HttpRoute(object) => check_http_route(object, &sources, &mut reject),
            RouteObject::VirtualService(object) => {
                check_virtual_service(object, &sources, &mut reject)
            }
            RouteObject::Service(object) => check_external_name(object, &mut reject),
            RouteObject::DomainMapping(object) => {
                check_domain_mapping(object, &sources, &mut reject)
            }
        }
    }
    violations
}

/// Kubernetes `pkg/apis/networking/validation` (`ValidateIngressCreate`, `ValidateIngressSpec`,
/// `validateIngressRules`, `validateHTTPIngressPath`, `validateIngressBackend`,
/// `validateIngressTLS`).
fn check_ingress(
    object: &Object<IngressSpec>,
    sources: &Sources<'_>,
    reject: &mut impl FnMut(String, String),
) {
    let spec = &object.spec;
    if let (Some(class), Some(annotated)) = (
        &spec.ingress_class_name,
        object.metadata.annotations.get(INGRESS_CLASS_ANNOTATION),
    ) && class != annotated
    {
        reject(
            annotation_field(INGRESS_CLASS_ANNOTATION),
            format!(
                "its annotation {INGRESS_CLASS_ANNOTATION}: {annotated} (copied from the \
                 InferenceService) must match `ingressClassName` ({class}) when both are \
                 specified; remove the annotation (the class comes from ingressClassName)"
            ),
        );
    }
    if let Some(class) = &spec.ingress_class_name
        && let Some(problem) = dns::subdomain_problem(class)
    {
        let field = if sources.plan.routing.settings.ingress_class.is_some() {
            annotation_field(annotations::INGRESS_CLASS)
        } else {
            "config.ingress.ingressClassName".to_string()
        };
        reject(
            field,
            format!("spec.ingressClassName \"{class}\" {problem}"),
        );
    }
    for rule in &spec.rules {
        if let Some(problem) = ingress_host_problem(&rule.host) {
            reject(
                sources.host_field(&rule.host),
                format!("rule host \"{}\" {problem}", rule.host),
            );
        }
        for path in &rule.http.paths {
            if let Some(problem) = absolute_path_problem(path.path) {
                reject(
                    "metadata.name".to_string(),
                    format!("path \"{}\" {problem}", path.path),
                );
            }
            let service = &path.backend.service;
            if let Some(problem) = dns::dns1035_label_problem(&service.name) {
                reject(
                    "metadata.name".to_string(),
                    format!("backend service name \"{}\" {problem}", service.name),
                );
            }
            if service.port.number == 0 {
                reject(
                    "metadata.name".to_string(),
                    "backend service port must be between 1 and 65535".to_string(),
                );
            }
        }
    }
    for tls in &spec.tls {
        for host in &tls.hosts {
            if let Some(problem) = ingress_host_problem(host) {
                reject(
                    sources.host_field(host),
                    format!("TLS host \"{host}\" {problem}"),
                );
            }
        }
        if let Some(problem) = dns::subdomain_problem(&tls.secret_name) {
            reject(
                annotation_field(annotations::TLS_SECRET),
                format!("TLS secretName \"{}\" {problem}", tls.secret_name),
            );
        }
    }
}

/// An Ingress host: a DNS-1123 subdomain, optionally a `*.` wildcard, never an IP address
/// (`validateIngressRules`: "must be a DNS name, not an IP address").
fn ingress_host_problem(host: &str) -> Option<String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Some("must be a DNS name, not an IP address".to_string());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    dns::subdomain_problem(name).map(|problem| format!("is not a valid DNS name: {problem}"))
}

/// Kubernetes `validateHTTPIngressPath` for `Prefix`/`Exact` and Gateway API's CEL rules on
/// `PathPrefix`/`Exact` values (the same list): absolute, without `//`, `/./`, `/../`,
/// encoded slashes or `#`, not ending in `/.` or `/..`.
fn absolute_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some("must be an absolute path".to_string());
    }
    for sequence in ["//", "/./", "/../", "%2f", "%2F", "#"] {
        if path.contains(sequence) {
            return Some(format!("must not contain '{sequence}'"));
        }
    }
    for suffix in ["/..", "/."] {
        if path.ends_with(suffix) {
            return Some(format!("must not end with '{suffix}'"));
        }
    }
    None
}

/// The HTTPRoute CRD of Gateway API v1 (`gateway.networking.k8s.io_httproutes.yaml`): its
/// OpenAPI schema (hostname pattern, list and length limits, duration pattern) and its CEL
/// rules (path values, Service backends need a port, one URLRewrite with one PathPrefix match).
fn check_http_route(
    object: &Object<HttpRouteSpec>,
    sources: &Sources<'_>,
    reject: &mut impl FnMut(String, String),
) {
    let spec = &object.spec;
    if spec.hostnames.len() > MAX_HOSTNAMES {
        reject(
            "config.ingress.additionalIngressDomains".to_string(),
            format!(
                "spec.hostnames has {} entries; an HTTPRoute holds at most {MAX_HOSTNAMES} (the \
                 top-level host and the additional domains)",
                spec.hostnames.len()
            ),
        );
    }
    for hostname in &spec.hostnames {
        if let Some(problem) = gateway_hostname_problem(hostname) {
            reject(
                sources.host_field(hostname),
                format!("hostname \"{hostname}\" {problem}"),
            );
        }
    }
    if spec.rules.len() > MAX_RULES {
        reject(
            "metadata.name".to_string(),
            format!("it has {} rules; at most {MAX_RULES}", spec.rules.len()),
        );
    }
    let matches: usize = spec.rules.iter().map(|rule| rule.matches.len()).sum();
    if matches > MAX_MATCHES_PER_ROUTE {
        reject(
            "metadata.name".to_string(),
            format!("it has {matches} matches; at most {MAX_MATCHES_PER_ROUTE} across its rules"),
        );
    }
    for rule in &spec.rules {
        for route_match in &rule.matches {
            let path = &route_match.path;
            if path.value.len() > MAX_PATH_LENGTH {
                reject(
                    sources.path_field(),
                    format!(
                        "a path match is {} characters; at most {MAX_PATH_LENGTH}",
                        path.value.len()
                    ),
                );
            }
            if matches!(path.match_type, "PathPrefix" | "Exact")
                && let Some(problem) = absolute_path_problem(&path.value)
            {
                reject(
                    sources.path_field(),
                    format!("path \"{}\" {problem}", path.value),
                );
            }
        }
        let rewrites = rule
            .filters
            .iter()
            .filter(|filter| matches!(filter, HttpRouteFilter::UrlRewrite { .. }))
            .count();
        let prefix_matches = rule
            .matches
            .iter()
            .filter(|route_match| route_match.path.match_type == "PathPrefix")
            .count();
        if rewrites > 0 && (rewrites > 1 || prefix_matches != 1 || rule.matches.len() != 1) {
            reject(
                sources.path_field(),
                "a ReplacePrefixMatch rewrite needs exactly one PathPrefix match".to_string(),
            );
        }
        for backend in &rule.backend_refs {
            if backend.port == 0 {
                reject(
                    "metadata.name".to_string(),
                    format!(
                        "backend {} needs a port (Must have port for Service reference)",
                        backend.name
                    ),
                );
            }
            if let Some(timeouts) = &rule.timeouts
                && !super::annotations::is_gateway_duration(&timeouts.request)
            {
                reject(
                    sources.timeout_field(&backend.name),
                    format!(
                        "timeouts.request \"{}\" is not a Gateway API duration (at most \
                         {MAX_DURATION_NUMBER} per unit: h, m, s or ms)",
                        timeouts.request
                    ),
                );
            }
        }
    }
}

/// Gateway API `Hostname`: lowercase DNS labels, optionally a leading `*.`, at most 253
/// characters, no trailing dot (`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`).
fn gateway_hostname_problem(hostname: &str) -> Option<String> {
    if hostname.ends_with('.') {
        return Some("must not end with a dot (Gateway API hostnames are not absolute)".into());
    }
    let name = hostname.strip_prefix("*.").unwrap_or(hostname);
    dns::subdomain_problem(name).map(|problem| format!("is not a valid hostname: {problem}"))
}

/// Istio's `ValidateVirtualService` (`pkg/config/validation`) and the VirtualService CRD's
/// CEL rule on `timeout`: hosts are domains (no trailing dot, no all-numeric top-level label),
/// every route has a destination, `uri` and `uriRegexRewrite` are exclusive, timeouts are
/// durations of at least 1ms.
fn check_virtual_service(
    object: &Object<VirtualServiceSpec>,
    sources: &Sources<'_>,
    reject: &mut impl FnMut(String, String),
) {
    let spec = &object.spec;
    if spec.hosts.is_empty() {
        reject(
            "metadata.name".to_string(),
            "it has no hosts (virtual service must have at least one host)".to_string(),
        );
    }
    for host in &spec.hosts {
        if let Some(problem) = istio_host_problem(host) {
            reject(
                sources.host_field(host),
                format!("host \"{host}\" {problem}"),
            );
        }
    }
    for route in &spec.http {
        if route.route.is_empty() {
            reject(
                "metadata.name".to_string(),
                "an HTTP route has no destination".to_string(),
            );
        }
        for route_match in &route.matches {
            if let Some(IstioStringMatch::Prefix(path) | IstioStringMatch::Exact(path)) =
                &route_match.uri
                && !path.starts_with('/')
            {
                reject(
                    sources.path_field(),
                    format!("uri match \"{path}\" must start with /"),
                );
            }
        }
        if let Some(IstioRewrite::UriRegex { pattern, .. }) = &route.rewrite
            && pattern.is_empty()
        {
            reject(
                sources.path_field(),
                "uriRegexRewrite needs a match".to_string(),
            );
        }
        if let Some(timeout) = &route.timeout {
            let too_short =
                istio_timeout_millis(timeout).is_none_or(|ms| ms < MIN_ISTIO_TIMEOUT_MS);
            if too_short {
                reject(
                    annotation_field(annotations::TIMEOUT),
                    format!("timeout \"{timeout}\" must be a valid duration greater than 1ms"),
                );
            }
        }
    }
}

/// Istio's `ValidateWildcardDomain`: at most 255 characters, DNS-1123 labels (a leading `*`
/// allowed), and a top-level label that is not all digits (no IP addresses).
fn istio_host_problem(host: &str) -> Option<String> {
    if host.ends_with('.') {
        return Some("must not end with a dot".to_string());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if let Some(problem) = dns::subdomain_problem(name) {
        return Some(format!("is not a valid domain: {problem}"));
    }
    let top = name.rsplit('.').next().unwrap_or_default();
    if !top.is_empty() && top.bytes().all(|byte| byte.is_ascii_digit()) {
        return Some(format!("has an all-numeric top-level domain \"{top}\""));
    }
    None
}

/// Milliseconds of a VirtualService timeout as [`super::virtualservice`] writes it (seconds
/// with up to three decimals and an `s`), None when it is not one.
fn istio_timeout_millis(timeout: &str) -> Option<u64> {
    crate::duration::parse_duration(timeout)
        .ok()
        .map(|duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// Kubernetes `ValidateService` for `type: ExternalName`: `externalName` is a DNS-1123
/// subdomain (one trailing dot allowed).
fn check_external_name(
    object: &Object<ExternalNameServiceSpec>,
    reject: &mut impl FnMut(String, String),
) {
    let name = &object.spec.external_name;
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if let Some(problem) = dns::subdomain_problem(trimmed) {
        reject(
            "config.ingress.localGatewayService".to_string(),
            format!("externalName \"{name}\" must be a valid DNS name: {problem}"),
        );
    }
}

/// Knative Serving's DomainMapping webhook (`domainmapping_validation.go`): the name is a
/// fully qualified domain name, not below the cluster-local domain, and the reference is in
/// the DomainMapping's namespace.
fn check_domain_mapping(
    object: &Object<DomainMappingSpec>,
    sources: &Sources<'_>,
    reject: &mut impl FnMut(String, String),
) {
    let name = &object.metadata.name;
    let field = sources.host_field(
        sources
            .plan
            .routing
            .top_host
            .as_deref()
            .unwrap_or(name.as_str()),
    );
    if let Some(problem) = dns::host_problem(name) {
        reject(field.clone(), format!("name \"{name}\" {problem}"));
    }
    if dns::is_within_domain(name, &format!("svc.{CLUSTER_DOMAIN}")) {
        reject(
            field,
            format!(
                "name \"{name}\" must not be a subdomain of the cluster-local domain \
                 svc.{CLUSTER_DOMAIN}"
            ),
        );
    }
    if object.spec.reference.namespace != object.metadata.namespace {
        reject(
            "metadata.namespace".to_string(),
            "spec.ref.namespace must be the DomainMapping's namespace".to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KserveConfig;
    use crate::plan::{Policy, RouteOwner, plan, routes};
    use serde_json::json;

    /// The routes of a predictor-only ISVC `m` in `ns` under the shipped config with this
    /// ingress override and mode, planned with isvc-ingress as the route owner.
    fn planned(
        ingress: serde_json::Value,
        mode: &str,
    ) -> (RoutePlan, InferenceService, Vec<RouteObject>) {
        let data = [
            ("ingress".to_string(), ingress.to_string()),
            (
                "deploy".to_string(),
                json!({ "defaultDeploymentMode": mode }).to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let config = KserveConfig::from_config_map_data(&data).expect("valid config");
        let isvc = InferenceService::from_json(
            &json!({"metadata": {"name": "m", "namespace": "ns"}, "spec": {"predictor": {}}}),
            "ns",
        )
        .unwrap();
        let policy = Policy {
            route_owner: RouteOwner::IsvcIngress,
            ..Policy::default()
        };
        let planned = plan(&isvc, &config, &policy).expect("plans");
        let objects = routes(&planned, &isvc, &config);
        (planned, isvc, objects)
    }

    fn messages(objects: &[RouteObject], plan: &RoutePlan, isvc: &InferenceService) -> Vec<String> {
        check(objects, plan, isvc)
            .into_iter()
            .map(|violation| format!("{}: {}", violation.field, violation.message))
            .collect()
    }

    const GATEWAYS: &str = "knative-serving/knative-ingress-gateway";

    /// Rules that hold by construction, each broken on purpose: the check must catch it.
    #[test]
    fn structural_rules_are_checked() {
        let ingress = json!({"ingressGateway": GATEWAYS, "ingressDomain": "example.com",
                             "localGateway": "knative-serving/knative-local-gateway",
                             "localGatewayService": "knative-local-gateway.istio-system.svc.cluster.local",
                             "kserveIngressGateway": "kserve/kserve-ingress-gateway"});
        // HTTPRoute: rule and match counts, a rewrite without its PathPrefix match, a backend
        // without port, a path match that is not absolute.
        let mut gateway_api = ingress.clone();
        gateway_api["enableGatewayApi"] = json!(true);
        let (plan, isvc, mut objects) = planned(gateway_api, "Standard");
        let RouteObject::HttpRoute(route) = &mut objects[0] else {
            panic!()
        };
        let rule = route.spec.rules[0].clone();
        route.spec.rules = vec![rule.clone(); MAX_RULES + 1];
        route.spec.rules[0].matches = vec![rule.matches[0].clone(); MAX_MATCHES_PER_ROUTE + 1];
        route.spec.rules[1]
            .filters
            .push(HttpRouteFilter::UrlRewrite {
                url_rewrite: crate::plan::objects::HttpUrlRewrite {
                    path: crate::plan::objects::HttpPathModifier {
                        modifier_type: "ReplacePrefixMatch",
                        replace_prefix_match: "/",
                    },
                },
            });
        route.spec.rules[2].backend_refs[0].port = 0;
        route.spec.rules[3].matches[0].path.match_type = "PathPrefix";
        route.spec.rules[3].matches[0].path.value = "serving//x".into();
        let found = messages(&objects, &plan, &isvc).join("\n");
        for expected in [
            "rules; at most 16",
            "matches; at most 128",
            "exactly one PathPrefix match",
            "Must have port for Service reference",
            "must be an absolute path",
        ] {
            assert!(found.contains(expected), "{expected} not in\n{found}");
        }
        // Ingress: an invalid class name, an invalid backend name, a wildcard TLS host (fine),
        // an invalid TLS secret name, a path with a /../ segment.
        let (plan, isvc, mut objects) = planned(ingress.clone(), "Standard");
        let RouteObject::Ingress(route) = &mut objects[0] else {
            panic!()
        };
        route.spec.ingress_class_name = Some("Nginx_Class".into());
        route.spec.rules[0].http.paths[0].backend.service.name = "9-service".into();
        route.spec.rules[0].http.paths[0]
            .backend
            .service
            .port
            .number = 0;
        route.spec.tls.push(crate::plan::objects::IngressTls {
            hosts: vec!["*.example.com".into(), "bad_host.example.com".into()],
            secret_name: "Bad_Secret".into(),
        });
        let found = messages(&objects, &plan, &isvc).join("\n");
        for expected in [
            "config.ingress.ingressClassName: the Ingress m would be refused by the API server: spec.ingressClassName",
            "backend service name \"9-service\"",
            "backend service port must be between 1 and 65535",
            "TLS host \"bad_host.example.com\"",
            "TLS secretName \"Bad_Secret\"",
        ] {
            assert!(found.contains(expected), "{expected} not in\n{found}");
        }
        assert!(!found.contains("*.example.com"), "{found}");
        // VirtualService and its ExternalName Service: no hosts, a route without destination,
        // a relative prefix, an empty regex rewrite, an invalid externalName.
        let (plan, isvc, mut objects) = planned(ingress.clone(), "Knative");
        let RouteObject::VirtualService(service) = &mut objects[0] else {
            panic!()
        };
        service.spec.hosts.clear();
        service.spec.http[0].route.clear();
        service.spec.http[0].matches[0].uri = Some(IstioStringMatch::Prefix("serving".into()));
        service.spec.http[0].rewrite = Some(IstioRewrite::UriRegex {
            pattern: String::new(),
            rewrite: "\\1",
        });
        let RouteObject::Service(external) = &mut objects[1] else {
            panic!()
        };
        external.spec.external_name = "not a host".into();
        let found = messages(&objects, &plan, &isvc).join("\n");
        for expected in [
            "virtual service must have at least one host",
            "has no destination",
            "uri match \"serving\" must start with /",
            "uriRegexRewrite needs a match",
            "config.ingress.localGatewayService",
        ] {
            assert!(found.contains(expected), "{expected} not in\n{found}");
        }
        // DomainMapping: a reference into another namespace.
        let mut alone = ingress;
        alone["disableIstioVirtualHost"] = json!(true);
        let data = [
            ("ingress".to_string(), alone.to_string()),
            (
                "deploy".to_string(),
                json!({ "defaultDeploymentMode": "Knative" }).to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let config = KserveConfig::from_config_map_data(&data).unwrap();
        let isvc = InferenceService::from_json(
            &json!({"metadata": {"name": "m", "namespace": "ns", "annotations": {"isvc-ingress.io/host": "m.example.com"}}, "spec": {"predictor": {}}}),
            "ns",
        )
        .unwrap();
        let plan = crate::plan::plan(&isvc, &config, &Policy::default()).unwrap();
        let mut objects = routes(&plan, &isvc, &config);
        let RouteObject::DomainMapping(mapping) = &mut objects[0] else {
            panic!()
        };
        mapping.spec.reference.namespace = "other".into();
        let found = messages(&objects, &plan, &isvc).join("\n");
        assert!(
            found.contains("spec.ref.namespace must be the DomainMapping's namespace"),
            "{found}"
        );
    }
}
