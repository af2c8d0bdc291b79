//! Hosts, URLs and addresses for the two modes that isvc-ingress routes.
//!
//! Standard mode renders `domainTemplate` exactly as KServe does (reference §2.8). Knative mode
//! *predicts* the hosts Knative will assign with Knative's `domain-template` (`config-network`,
//! default `{{.Name}}.{{.Namespace}}.{{.Domain}}`), Domain = `ingressDomain`. The top-level
//! host is the one the VirtualService serves: with `--route-owner kserve` the host KServe cuts
//! out of the entry component's host (§2.7, quirks §10 Q1, Q2 included, with a warning); with
//! `--route-owner isvc-ingress` the template rendered for the ISVC name.

use super::annotations::{self, annotation_field};
use super::service;
use super::{ComponentPlan, Findings, RouteKind, RouteOwner, RoutePlan, entry, service_host};
use crate::config::KserveConfig;
use crate::dns;
use crate::isvc::{ComponentKind, InferenceService};
use crate::template::{RenderError, Template, TemplateData};

/// Where a host came from, for the field of a violation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HostSource {
    /// Derived from the ISVC name (template or Knative prediction).
    Name,
    /// The user's `isvc-ingress.io/host`.
    Override,
}

fn check_host(host: &str, what: &str, source: HostSource, findings: &mut Findings) {
    if let Some(problem) = dns::host_problem(host) {
        let field = match source {
            HostSource::Name => "metadata.name".to_string(),
            HostSource::Override => annotation_field(annotations::HOST),
        };
        findings.reject(
            field,
            format!("the {what} host \"{host}\" is invalid: {problem}"),
        );
    }
}

/// Renders `domainTemplate` for `name` (the ISVC or a component name) with the ISVC's metadata.
fn render_domain(
    name: &str,
    isvc: &InferenceService,
    config: &KserveConfig,
    findings: &mut Findings,
) -> Option<String> {
    render_or_report(
        &config.domain_template,
        &host_data(name, isvc, config),
        "config.ingress.domainTemplate",
        findings,
    )
}

/// What a host template reads: `name`, the ISVC's namespace, labels and annotations, and
/// `ingressDomain` (KServe's `.IngressDomain`, Knative's `.Domain`).
fn host_data<'a>(
    name: &'a str,
    isvc: &'a InferenceService,
    config: &'a KserveConfig,
) -> TemplateData<'a> {
    TemplateData {
        name,
        namespace: &isvc.namespace,
        ingress_domain: &config.ingress.ingress_domain,
        annotations: &isvc.annotations,
        labels: &isvc.labels,
    }
}

/// Renders a host template; a label or annotation it reads and the ISVC lacks is a violation
/// naming that label or annotation and the template (`what`).
fn render_or_report(
    template: &Template,
    data: &TemplateData<'_>,
    what: &str,
    findings: &mut Findings,
) -> Option<String> {
    match template.render(data) {
        Ok(host) => Some(host),
        Err(error) => {
            let field = match &error {
                RenderError::MissingAnnotation(key) => annotation_field(key),
                RenderError::MissingLabel(key) => format!("metadata.labels[{key}]"),
            };
            findings.reject(field, format!("is required: {what} reads it ({error})"));
            None
        }
    }
}

/// The path prefix on the shared `ingressDomain` host: the `path` annotation, else
/// `pathTemplate`; only for external HTTPRoute and VirtualService routes (reference §10 Q4: KServe
/// adds it even to cluster-local VirtualServices, where no external gateway serves it).
fn plan_path(plan: &RoutePlan, isvc: &InferenceService, config: &KserveConfig) -> Option<String> {
    if plan.routing.internal || !plan.route_kind.serves_paths() {
        return None;
    }
    if let Some(path) = &plan.routing.settings.path {
        return Some(path.clone());
    }
    let template = config.path_template.as_ref()?;
    let empty = Default::default();
    let data = TemplateData {
        name: &isvc.name,
        namespace: &isvc.namespace,
        ingress_domain: &config.ingress.ingress_domain,
        annotations: &empty,
        labels: &empty,
    };
    let rendered = template
        .render(&data)
        .expect("a path template reads only .Name and .Namespace (checked at load)");
    Some(rendered.trim_end_matches('/').to_string())
}

/// `<sub>.<additional domain>` for each additional domain, where `<sub>` is the top host minus
/// `ingressDomain` (reference §2.5, domain list `[ingressDomain]`). A candidate that is not a
/// valid host is a violation here; KServe logs and skips it.
fn additional_hosts(top_host: &str, config: &KserveConfig, findings: &mut Findings) -> Vec<String> {
    let domain = &config.ingress.ingress_domain;
    let Some(domains) = &config.ingress.additional_ingress_domains else {
        return Vec::new();
    };
    if !dns::is_within_domain(top_host, domain) || top_host == domain {
        return Vec::new();
    }
    let subdomain = &top_host[..top_host.len() - domain.len()];
    let mut hosts: Vec<String> = Vec::new();
    for additional in domains {
        let candidate = format!("{subdomain}{additional}");
        if hosts.contains(&candidate) || candidate == top_host {
            continue;
        }
        check_host(&candidate, "additional", HostSource::Name, findings);
        hosts.push(candidate);
    }
    hosts
}

fn url(scheme: &str, host: &str) -> String {
    format!("{scheme}://{host}")
}

/// `grpc://host:port`: through the gateway on the URL's port when the route carries gRPC, else
/// straight to the Service.
fn grpc_url(through_gateway: bool, scheme: &str, host: &str, port: u16) -> String {
    if through_gateway {
        let gateway_port = if scheme == "https" { 443 } else { 80 };
        format!("grpc://{host}:{gateway_port}")
    } else {
        format!("grpc://{host}:{port}")
    }
}

/// Standard (raw) mode: hosts from `domainTemplate`, routes through Ingress or HTTPRoute.
pub(super) fn plan_standard(
    plan: &mut RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
    findings: &mut Findings,
) {
    let namespace = &isvc.namespace;
    let entry_component = entry(isvc);
    let mut address_host = service_host(&entry_component.service_name, namespace);
    if config.service_cluster_ip_none {
        // Headless Services have no port mapping, so the address carries the container port.
        let port = service::headless_address_port(&service::service_ports(entry_component));
        address_host = format!("{address_host}:{port}");
    }
    plan.address = Some(url("http", &address_host));
    if plan.routing.internal {
        // Reference §10 Q13: KServe publishes an external-looking URL that nothing serves.
        plan.url = plan.address.clone();
        for component in &isvc.components {
            let host = service_host(&component.service_name, namespace);
            let grpc = service::grpc_service_port(component)
                .map(|port| grpc_url(false, "http", &host, port));
            insert_component(plan, component.kind, host, "http", grpc);
        }
        return;
    }
    let scheme = external_scheme(plan, config);
    let settings = &plan.routing.settings;
    let top_host = match &settings.host {
        Some(host) => Some(host.clone()),
        None => render_domain(&isvc.name, isvc, config, findings).inspect(|host| {
            check_host(host, "top-level", HostSource::Name, findings);
        }),
    };
    let through_gateway = plan.route_kind == RouteKind::HttpRoute;
    for component in &isvc.components {
        // Route hosts use the stable component name, even with a predictor variant (§5.3).
        let name = format!("{}-{}", isvc.name, component.kind.key());
        let Some(host) = render_domain(&name, isvc, config, findings) else {
            continue;
        };
        check_host(&host, component.kind.key(), HostSource::Name, findings);
        let grpc = service::grpc_service_port(component).map(|port| {
            if through_gateway {
                grpc_url(true, scheme, &host, port)
            } else {
                let internal = service_host(&component.service_name, namespace);
                grpc_url(false, scheme, &internal, port)
            }
        });
        insert_component(plan, component.kind, host, scheme, grpc);
    }
    let Some(top_host) = top_host else {
        return;
    };
    let serves_additional_hosts = plan.route_kind == RouteKind::HttpRoute;
    publish_external(
        plan,
        isvc,
        config,
        scheme,
        top_host,
        serves_additional_hosts,
        findings,
    );
}

/// Knative mode: the hosts Knative gives the components, predicted with Knative's
/// `domain-template`; a VirtualService, a DomainMapping or Knative alone.
pub(super) fn plan_knative(
    plan: &mut RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
    findings: &mut Findings,
) {
    let namespace = &isvc.namespace;
    let internal = plan.routing.internal;
    let entry_component = entry(isvc);
    let has_virtual_service = plan.route_kind == RouteKind::VirtualService;
    plan.address = Some(url(
        "http",
        &if has_virtual_service {
            service_host(&isvc.name, namespace)
        } else {
            service_host(&entry_component.service_name, namespace)
        },
    ));
    // Knative serves every component on its own host; the URLs follow urlScheme, the scheme
    // users ask KServe for (KServe rewrites only one of them, reference §10 Q7).
    let scheme = if internal {
        "http"
    } else {
        config.ingress.url_scheme.as_str()
    };
    for component in &isvc.components {
        let host = if internal {
            service_host(&component.service_name, namespace)
        } else {
            match render_knative_host(&component.service_name, isvc, config, findings) {
                Some(host) => host,
                None => continue,
            }
        };
        check_host(&host, component.kind.key(), HostSource::Name, findings);
        let grpc =
            service::grpc_service_port(component).map(|port| grpc_url(true, scheme, &host, port));
        insert_component(plan, component.kind, host, scheme, grpc);
    }
    if internal {
        plan.url = plan.address.clone();
        return;
    }
    plan.predicted.components = true;
    let Some(entry_host) = plan
        .components
        .get(&entry_component.kind)
        .map(|component| component.host.clone())
    else {
        return;
    };
    let scheme = external_scheme(plan, config);
    let settings = &plan.routing.settings;
    let (top_host, source) = match (&settings.host, plan.route_kind) {
        (Some(host), RouteKind::VirtualService | RouteKind::DomainMapping) => {
            (host.clone(), HostSource::Override)
        }
        // Without a route of ours, the URL is the entry component's own Knative URL (§4.3).
        (_, RouteKind::None) => (entry_host, HostSource::Name),
        // KServe writes the VirtualService on the host it cuts out of the entry component's
        // Knative host (§2.7); that is the host served, quirks included (§10 Q1, Q2).
        (_, RouteKind::VirtualService) if plan.routing.owner == RouteOwner::Kserve => {
            let served = kserve_service_host(&entry_host, entry_component.kind);
            if let Some(clean) = render_knative_host(&isvc.name, isvc, config, findings)
                && clean != served
            {
                findings.warn(format!(
                    "KServe writes this InferenceService's VirtualService for the host \
                     \"{served}\", which it derives from the {} host \"{entry_host}\" by deleting \
                     a name part (reference §10 Q1, Q2), not \"{clean}\"; with \
                     --route-owner isvc-ingress the VirtualService serves \"{clean}\"",
                    entry_component.kind.key()
                ));
            }
            (served, HostSource::Name)
        }
        _ => match render_knative_host(&isvc.name, isvc, config, findings) {
            Some(host) => (host, HostSource::Name),
            None => return,
        },
    };
    check_host(&top_host, "top-level", source, findings);
    publish_external(
        plan,
        isvc,
        config,
        scheme,
        top_host,
        has_virtual_service,
        findings,
    );
    // The host-based URL follows Knative's host unless a route of ours (or an override) names
    // the host; a path URL is the config's.
    plan.predicted.url = plan.path.is_none()
        && source == HostSource::Name
        && (plan.route_kind == RouteKind::None || plan.routing.owner == RouteOwner::Kserve);
}

/// The host Knative gives the Knative Service (or, for the top-level host, the name) `name`:
/// Knative's `domain-template` with `.Domain` = `ingressDomain`, and the ISVC's labels and
/// annotations (KServe copies them to its Knative Services).
fn render_knative_host(
    name: &str,
    isvc: &InferenceService,
    config: &KserveConfig,
    findings: &mut Findings,
) -> Option<String> {
    render_or_report(
        &config.knative_network.domain_template,
        &host_data(name, isvc, config),
        "Knative's domain-template (config-network)",
        findings,
    )
}

/// KServe's `getServiceHost` (reference §2.7): the entry component's Knative host with the
/// first `-predictor-default` (`-transformer-default`) deleted when the host contains
/// `-default` anywhere, else with the first `-predictor` (`-transformer`) deleted.
pub fn kserve_service_host(component_host: &str, kind: ComponentKind) -> String {
    let suffix = format!("-{}", kind.key());
    let target = if component_host.contains("-default") {
        format!("{suffix}-default")
    } else {
        suffix
    };
    component_host.replacen(&target, "", 1)
}

/// The external half of a plan, the same in both modes: additional hosts (when the route kind
/// serves them), the path, `status.url` (path-based on the shared host when a path applies)
/// and the external hosts, top-level first.
fn publish_external(
    plan: &mut RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
    scheme: &str,
    top_host: String,
    serves_additional_hosts: bool,
    findings: &mut Findings,
) {
    if serves_additional_hosts {
        plan.routing.additional_hosts = additional_hosts(&top_host, config, findings);
    }
    plan.path = plan_path(plan, isvc, config);
    // KServe's HTTPRoute path rule forwards the prefix unrewritten, so KServe publishes the
    // host-based URL (reference §5.4, §10 Q6, Q12); the path URL needs our rewriting route.
    let path_url = match &plan.path {
        Some(path)
            if plan.routing.owner == RouteOwner::Kserve
                && plan.route_kind == RouteKind::HttpRoute =>
        {
            findings.warn(format!(
                "KServe routes the path {path} on {} to this InferenceService without rewriting \
                 it (reference §5.4), so the model receives {path}/...; status.url stays \
                 host-based. With --route-owner isvc-ingress the path is rewritten to / and \
                 published",
                config.ingress.ingress_domain
            ));
            None
        }
        path => path.as_ref(),
    };
    plan.url = Some(match path_url {
        Some(path) => format!("{scheme}://{}{path}", config.ingress.ingress_domain),
        None => url(scheme, &top_host),
    });
    plan.hosts = std::iter::once(top_host.clone())
        .chain(plan.routing.additional_hosts.iter().cloned())
        .collect();
    plan.routing.top_host = Some(top_host);
}

/// `https` when the route terminates TLS with the user's Secret, else `urlScheme`.
fn external_scheme<'a>(plan: &RoutePlan, config: &'a KserveConfig) -> &'a str {
    if plan.routing.settings.tls_secret.is_some() {
        "https"
    } else {
        config.ingress.url_scheme.as_str()
    }
}

fn insert_component(
    plan: &mut RoutePlan,
    kind: ComponentKind,
    host: String,
    scheme: &str,
    grpc_url: Option<String>,
) {
    let component_url = url(scheme, &host);
    plan.components.insert(
        kind,
        ComponentPlan {
            host,
            rest_url: component_url.clone(),
            url: component_url,
            grpc_url,
        },
    );
}
