//! The RoutePlan: a pure function of (InferenceService, KServe config, policy) that says which
//! hosts, URLs and routes an ISVC gets, or every reason it cannot have them.
//!
//! Every shell (webhook, status mutator, reconciler, CLI) calls [`plan`] and, when it needs the
//! objects, [`routes`]; none computes a host itself, so what the webhook promises in the
//! annotations is exactly what the reconciler builds. [`plan`] is the part the webhook runs on
//! every request, so it renders templates that were parsed at config load and builds no objects.

pub mod annotations;
mod domainmapping;
mod hosts;
mod httproute;
mod ingress;
mod metadata;
pub mod objects;
pub mod service;
pub mod status;
pub mod validation;
mod virtualservice;

use crate::config::{DeploymentMode, KserveConfig};
use crate::dns;
use crate::isvc::{Component, ComponentKind, InferenceService};
use crate::violation::Violation;
use annotations::{UserSettings, annotation_field};
pub use metadata::{LAST_APPLIED_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL};
use objects::RouteObject;
use serde::Serialize;
use std::collections::BTreeMap;

/// The field manager of every write isvc-ingress makes (server-side apply, status patch) and
/// its Event reporter: the status mutator tells isvc-ingress's own status writes by it, and
/// `managedFields` names it as the writer of the status URLs it wrote
/// ([`status::OwnUrls`]).
pub const FIELD_MANAGER: &str = "isvc-ingress";
/// Cluster domain of Service addresses (KServe reads it from resolv.conf; `cluster.local` is
/// the Kubernetes default).
pub const CLUSTER_DOMAIN: &str = "cluster.local";
pub const CLUSTER_LOCAL: &str = "cluster-local";
/// Standard-mode visibility label (reference §3.1).
pub const STANDARD_VISIBILITY_LABEL: &str = "networking.kserve.io/visibility";
/// Knative-mode visibility label (reference §4.4).
pub const KNATIVE_VISIBILITY_LABEL: &str = "networking.knative.dev/visibility";
pub const DEPLOYMENT_MODE_ANNOTATION: &str = "serving.kserve.io/deploymentMode";
pub const STOP_ANNOTATION: &str = "serving.kserve.io/stop";
/// A host label this close to the 63-character limit earns a warning.
const LABEL_WARNING_MARGIN: usize = 5;

/// What the platform team decides beyond the KServe config (`--allowed-domain`,
/// `--allowed-gateway`, `--route-owner`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub allowed_domains: Vec<String>,
    pub allowed_gateways: Vec<String>,
    pub route_owner: RouteOwner,
}

/// Who writes the Ingresses, HTTPRoutes and VirtualServices. Two controllers writing the same
/// object fight forever, so exactly one of them must.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum RouteOwner {
    /// KServe's controller writes them, exactly as it plans them: the plan mirrors KServe, and
    /// isvc-ingress writes only what KServe never creates (DomainMappings) and the status.
    #[default]
    Kserve,
    /// isvc-ingress writes them. KServe must be kept away with `disableIngressCreation: true`
    /// (Standard) and `disableIstioVirtualHost: true` (Knative); the planner then reads those two
    /// settings as "KServe stays away", not as "no route".
    IsvcIngress,
}

impl RouteOwner {
    /// Whether this owner's controller writes routes of `kind` (KServe writes every route
    /// kind but DomainMapping; None is no route).
    pub fn writes_for(self, kind: RouteKind) -> bool {
        match kind {
            RouteKind::None => false,
            RouteKind::DomainMapping => self == Self::IsvcIngress,
            RouteKind::Ingress | RouteKind::HttpRoute | RouteKind::VirtualService => true,
        }
    }

    /// Whether isvc-ingress writes the `IngressReady` condition of an ISVC whose plan has routes
    /// of `kind`. With `kserve`, KServe's controller writes `IngressReady` for every ISVC it
    /// reconciles (from its own routes, `Stopped` when stopped, True for cluster-local), so
    /// isvc-ingress writes it only for the DomainMappings it makes: two writers with different
    /// rules would undo each other on every reconcile (KServe updates the whole status when it
    /// differs from its own; seen against KServe v0.19.0, docs/kserve-differential.md).
    pub fn writes_ingress_ready(self, kind: RouteKind) -> bool {
        self == Self::IsvcIngress || kind == RouteKind::DomainMapping
    }

    /// Whether isvc-ingress writes objects of this kind.
    pub fn writes(self, kind: &str) -> bool {
        match self {
            Self::Kserve => kind == "DomainMapping",
            Self::IsvcIngress => true,
        }
    }

    /// Why this ownership cannot work with `config`, if it cannot: KServe would create the same
    /// objects. Logged by `serve` at start and whenever the config changes.
    pub fn conflicts_with(self, config: &KserveConfig) -> Vec<String> {
        let ingress = &config.ingress;
        let mut conflicts = Vec::new();
        if self == Self::IsvcIngress {
            if !ingress.disable_ingress_creation {
                conflicts.push(
                    "--route-owner isvc-ingress, but KServe's disableIngressCreation is false: \
                     KServe will write the same Ingresses/HTTPRoutes (set it to true)"
                        .to_string(),
                );
            }
            if !ingress.disable_istio_virtual_host {
                conflicts.push(
                    "--route-owner isvc-ingress, but KServe's disableIstioVirtualHost is false: \
                     KServe will write the same VirtualServices (set it to true)"
                        .to_string(),
                );
            }
        }
        conflicts
    }
}

/// The kind of object that carries an ISVC's external traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RouteKind {
    Ingress,
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
    VirtualService,
    DomainMapping,
    None,
}

impl RouteKind {
    pub const CHOICES: &str = "Ingress, HTTPRoute, VirtualService, DomainMapping or None";

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "Ingress" => Some(Self::Ingress),
            "HTTPRoute" => Some(Self::HttpRoute),
            "VirtualService" => Some(Self::VirtualService),
            "DomainMapping" => Some(Self::DomainMapping),
            "None" => Some(Self::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingress => "Ingress",
            Self::HttpRoute => "HTTPRoute",
            Self::VirtualService => "VirtualService",
            Self::DomainMapping => "DomainMapping",
            Self::None => "None",
        }
    }

    /// Route kinds that can route a path prefix of the shared `ingressDomain` host.
    fn serves_paths(self) -> bool {
        matches!(self, Self::HttpRoute | Self::VirtualService)
    }
}

/// Hosts and URLs of one component, the values of `status.components.<component>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentPlan {
    pub host: String,
    pub url: String,
    pub rest_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_url: Option<String>,
}

/// Everything an ISVC's routing is: the contract of `render -o json` (docs/design.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutePlan {
    /// Serialised by the caller, next to the fields it adds (`render`'s `ok`).
    #[serde(skip)]
    pub name: String,
    #[serde(skip)]
    pub namespace: String,
    pub mode: DeploymentMode,
    pub route_kind: RouteKind,
    /// `status.url`. None in ModelMesh mode, which ModelMesh Serving routes.
    pub url: Option<String>,
    /// `status.address.url`.
    pub address: Option<String>,
    /// External hosts this ISVC holds, top-level first.
    pub hosts: Vec<String>,
    /// Path prefix on the shared `ingressDomain` host, when path-based routing applies.
    pub path: Option<String>,
    pub components: BTreeMap<ComponentKind, ComponentPlan>,
    /// The `isvc-ingress.io/*` output annotations, exactly (a key absent here is removed).
    pub annotations: BTreeMap<&'static str, String>,
    pub warnings: Vec<String>,
    /// `serving.kserve.io/stop` is true: every route is to be removed.
    pub stopped: bool,
    /// What `serving.kserve.io/deploymentMode` should say after mutation (the normalised mode);
    /// None leaves the annotation as it is.
    #[serde(skip)]
    pub deployment_mode_annotation: Option<&'static str>,
    /// Which URLs are predictions of what another controller serves (see [`status`]).
    #[serde(skip)]
    pub predicted: Predicted,
    #[serde(skip)]
    routing: Routing,
}

/// The URLs of a plan that only predict what the platform serves, as opposed to URLs of
/// routes isvc-ingress writes or hosts KServe renders from its own template: Knative assigns
/// the component hosts, and KServe derives the top-level host from them when it writes the
/// VirtualService (or when there is no route of ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Predicted {
    /// `status.url`.
    pub url: bool,
    /// Every `status.components.<c>.url`.
    pub components: bool,
}

/// Inputs of the route builders that [`plan`] already computed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Routing {
    /// Cluster-local: no external host, gateway or path.
    internal: bool,
    /// The external top-level host (not set when internal).
    top_host: Option<String>,
    additional_hosts: Vec<String>,
    /// External gateway, `(namespace, name)`, for HTTPRoute parentRefs and VirtualService.
    gateway: Option<(String, String)>,
    settings: UserSettings,
    /// Who writes the routes: KServe's routes are described as KServe writes them.
    owner: RouteOwner,
}

/// Why an ISVC cannot be admitted: every violation, plus the warnings found on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub violations: Vec<Violation>,
    pub warnings: Vec<String>,
}

/// Collects violations and warnings while planning.
#[derive(Debug, Default)]
struct Findings {
    violations: Vec<Violation>,
    warnings: Vec<String>,
}

impl Findings {
    fn reject(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.violations.push(Violation::new(field, message));
    }

    fn forbid(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.violations.push(Violation::forbidden(field, message));
    }

    fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }
}

/// Plans an ISVC: hosts, URLs, annotations and violations, without building route objects.
pub fn plan(
    isvc: &InferenceService,
    config: &KserveConfig,
    policy: &Policy,
) -> Result<RoutePlan, Rejection> {
    let mut findings = Findings::default();
    if let Some(problem) = dns::dns1035_label_problem(&isvc.name) {
        findings.reject("metadata.name", problem);
    }
    let settings = UserSettings::read(isvc, config, policy, &mut findings);
    let (mode, deployment_mode_annotation) = resolve_mode(isvc, config, &mut findings);
    let stopped = read_stop(isvc, &mut findings);
    let internal = is_cluster_local(isvc, mode, config, &mut findings);
    let route_kind = choose_route_kind(mode, internal, &settings, config, policy, &mut findings);
    check_route_settings(route_kind, internal, &settings, config, &mut findings);
    if policy.route_owner == RouteOwner::Kserve {
        refuse_settings_kserve_ignores(route_kind, &settings, &mut findings);
    }
    let gateway = external_gateway(route_kind, &settings, config, &mut findings);
    let mut plan = RoutePlan {
        name: isvc.name.clone(),
        namespace: isvc.namespace.clone(),
        mode,
        route_kind,
        url: None,
        address: None,
        hosts: Vec::new(),
        path: None,
        components: BTreeMap::new(),
        annotations: BTreeMap::new(),
        warnings: Vec::new(),
        stopped,
        deployment_mode_annotation,
        predicted: Predicted::default(),
        routing: Routing {
            internal,
            gateway,
            settings,
            owner: policy.route_owner,
            ..Routing::default()
        },
    };
    match mode {
        DeploymentMode::ModelMesh => findings.warn(
            "ModelMesh InferenceServices are routed by ModelMesh Serving: isvc-ingress plans no \
             URL and no route for them",
        ),
        DeploymentMode::Standard => hosts::plan_standard(&mut plan, isvc, config, &mut findings),
        DeploymentMode::Knative => hosts::plan_knative(&mut plan, isvc, config, &mut findings),
    }
    if mode != DeploymentMode::ModelMesh {
        check_service_names(isvc, &mut findings);
    }
    if plan.routing.owner == RouteOwner::Kserve
        && plan.route_kind == RouteKind::Ingress
        && let Some(transformer) = plan.components.get(&ComponentKind::Transformer)
    {
        findings.warn(format!(
            "KServe's Ingress routes the transformer host {} to the predictor{} (reference §10 \
             Q3); with --route-owner isvc-ingress every component host reaches its component",
            transformer.host,
            plan.components
                .get(&ComponentKind::Explainer)
                .map(|explainer| format!(
                    " and gives the explainer host {} no rule",
                    explainer.host
                ))
                .unwrap_or_default()
        ));
    }
    warn_near_label_limit(&plan, &mut findings);
    if findings.violations.is_empty() {
        // What the API server would refuse is refused now (docs/route-validation.md). The
        // objects carry only the metadata validation reads, so no label or annotation (such as
        // a large last-applied-configuration) is copied on the webhook's path.
        let kserve_writes =
            policy.route_owner == RouteOwner::Kserve && RouteOwner::Kserve.writes_for(route_kind);
        let metadata = metadata::RouteMetadata::for_validation(isvc, config, kserve_writes);
        let objects = build_routes(&plan, isvc, config, &metadata);
        findings
            .violations
            .extend(validation::check(&objects, &plan, isvc));
    }
    if !findings.violations.is_empty() {
        return Err(Rejection {
            violations: findings.violations,
            warnings: findings.warnings,
        });
    }
    plan.warnings = findings.warnings;
    plan.annotations = annotations::output(&plan, isvc, config);
    Ok(plan)
}

/// The desired route objects of a plan, in apply order: component routes before the top-level
/// route that sends them traffic. Empty when stopped or when the route kind is None.
pub fn routes(
    plan: &RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
) -> Vec<RouteObject> {
    let metadata = if plan.routing.owner.writes_for(plan.route_kind)
        && plan.routing.owner == RouteOwner::Kserve
    {
        metadata::RouteMetadata::as_kserve_writes(isvc, config, plan.route_kind)
    } else {
        metadata::RouteMetadata::new(isvc, config)
    };
    build_routes(plan, isvc, config, &metadata)
}

/// [`routes`] with the given metadata.
fn build_routes(
    plan: &RoutePlan,
    isvc: &InferenceService,
    config: &KserveConfig,
    metadata: &metadata::RouteMetadata,
) -> Vec<RouteObject> {
    if plan.stopped {
        return Vec::new();
    }
    match plan.route_kind {
        RouteKind::None => Vec::new(),
        RouteKind::Ingress => vec![ingress::build(plan, isvc, config, metadata)],
        RouteKind::HttpRoute => httproute::build(plan, isvc, config, metadata),
        RouteKind::VirtualService => virtualservice::build(plan, isvc, config, metadata),
        RouteKind::DomainMapping => vec![domainmapping::build(plan, isvc, metadata)],
    }
}

/// Resolves the deployment mode as KServe does (§6.4: status, then annotation, then the config
/// default), and rejects a change of mode once KServe has recorded one.
fn resolve_mode(
    isvc: &InferenceService,
    config: &KserveConfig,
    findings: &mut Findings,
) -> (DeploymentMode, Option<&'static str>) {
    let field = || annotation_field(DEPLOYMENT_MODE_ANNOTATION);
    let annotated = isvc
        .annotations
        .get(DEPLOYMENT_MODE_ANNOTATION)
        .and_then(|value| match DeploymentMode::parse(value) {
            Some((mode, legacy)) => {
                if legacy {
                    findings.warn(format!(
                        "{}: \"{value}\" is the legacy name of {}; it is rewritten",
                        field(),
                        mode.as_str()
                    ));
                }
                Some(mode)
            }
            None => {
                findings.reject(
                    field(),
                    format!(
                        "must be {}, found \"{value}\"",
                        crate::config::DEPLOYMENT_MODE_CHOICES
                    ),
                );
                None
            }
        });
    let recorded = isvc.status_deployment_mode.as_deref().and_then(|value| {
        let mode = DeploymentMode::parse(value).map(|(mode, _)| mode);
        if mode.is_none() {
            findings.warn(format!(
                "status.deploymentMode \"{value}\" is not a known mode and is ignored"
            ));
        }
        mode
    });
    if let (Some(recorded), Some(annotated)) = (recorded, annotated)
        && recorded != annotated
    {
        findings.reject(
            field(),
            format!(
                "deploymentMode cannot be changed from '{}' to '{}'",
                recorded.as_str(),
                annotated.as_str()
            ),
        );
    }
    let mode = recorded
        .or(annotated)
        .unwrap_or(config.deploy.default_deployment_mode);
    // KServe's defaulter writes the mode unless it is Knative (reference §8.2).
    let written = (annotated.is_some() || mode != DeploymentMode::Knative).then(|| mode.as_str());
    (mode, written)
}

fn read_stop(isvc: &InferenceService, findings: &mut Findings) -> bool {
    let Some(value) = isvc.annotations.get(STOP_ANNOTATION) else {
        return false;
    };
    let stopped = value.eq_ignore_ascii_case("true");
    if !stopped && !value.eq_ignore_ascii_case("false") {
        findings.warn(format!(
            "{}: \"{value}\" is neither true nor false, so the InferenceService is not stopped",
            annotation_field(STOP_ANNOTATION)
        ));
    }
    stopped
}

/// Cluster-local by the label that applies to the mode; the other mode's label does nothing
/// and earns a warning, since users mix them up (reference §4.4).
fn is_cluster_local(
    isvc: &InferenceService,
    mode: DeploymentMode,
    config: &KserveConfig,
    findings: &mut Findings,
) -> bool {
    if let Some((ignored, applies)) = ignored_visibility_label(isvc, mode) {
        findings.warn(format!(
            "metadata.labels[{ignored}] has no effect in {} mode; use {applies}",
            mode.as_str()
        ));
    }
    let labelled = |label: &str| isvc.labels.get(label).map(String::as_str) == Some(CLUSTER_LOCAL);
    match mode {
        DeploymentMode::Standard => {
            labelled(STANDARD_VISIBILITY_LABEL)
                || config.ingress.ingress_domain == format!("svc.{CLUSTER_DOMAIN}")
        }
        DeploymentMode::Knative => labelled(KNATIVE_VISIBILITY_LABEL),
        DeploymentMode::ModelMesh => false,
    }
}

/// The visibility label an ISVC carries that has no effect in `mode`, with the one that would
/// (reference §4.4: users mix up the Standard and the Knative label): `(ignored, applies)`.
pub fn ignored_visibility_label(
    isvc: &InferenceService,
    mode: DeploymentMode,
) -> Option<(&'static str, &'static str)> {
    let labelled = |label: &str| isvc.labels.get(label).map(String::as_str) == Some(CLUSTER_LOCAL);
    let (applies, ignored) = match mode {
        DeploymentMode::Standard => (STANDARD_VISIBILITY_LABEL, KNATIVE_VISIBILITY_LABEL),
        DeploymentMode::Knative => (KNATIVE_VISIBILITY_LABEL, STANDARD_VISIBILITY_LABEL),
        DeploymentMode::ModelMesh => return None,
    };
    (labelled(ignored) && !labelled(applies)).then_some((ignored, applies))
}

/// The route kind: mode and config choose, the `route` annotation overrides where the override
/// can work.
fn choose_route_kind(
    mode: DeploymentMode,
    internal: bool,
    settings: &UserSettings,
    config: &KserveConfig,
    policy: &Policy,
    findings: &mut Findings,
) -> RouteKind {
    let ingress = &config.ingress;
    // With isvc-ingress owning the routes, KServe's two "disable" settings only keep KServe away:
    // where they would mean "no route", isvc-ingress writes the route KServe would have.
    let ours = policy.route_owner == RouteOwner::IsvcIngress;
    let chosen = match mode {
        DeploymentMode::ModelMesh => RouteKind::None,
        DeploymentMode::Standard if internal => RouteKind::None,
        DeploymentMode::Standard if ingress.disable_ingress_creation && !ours => RouteKind::None,
        DeploymentMode::Standard if ingress.enable_gateway_api => RouteKind::HttpRoute,
        DeploymentMode::Standard => RouteKind::Ingress,
        DeploymentMode::Knative if !ingress.disable_istio_virtual_host => RouteKind::VirtualService,
        DeploymentMode::Knative if settings.host.is_some() && !internal => RouteKind::DomainMapping,
        DeploymentMode::Knative if ours => RouteKind::VirtualService,
        DeploymentMode::Knative => RouteKind::None,
    };
    let Some(requested) = settings.route else {
        return chosen;
    };
    let field = annotation_field(annotations::ROUTE);
    // KServe writes its own route whatever the annotation says: only a DomainMapping (which
    // KServe never writes, and which serves beside KServe's route) can be asked for.
    let kserve_decides = !ours
        && requested != RouteKind::DomainMapping
        && (RouteOwner::Kserve.writes_for(chosen) || RouteOwner::Kserve.writes_for(requested));
    if requested != chosen && kserve_decides {
        findings.reject(
            field,
            format!(
                "KServe writes the routes (--route-owner kserve) and gives this InferenceService \
                 {}; it does not read this annotation, so a {} route needs --route-owner \
                 isvc-ingress",
                if chosen == RouteKind::None {
                    "no route".to_string()
                } else {
                    format!("a {}", chosen.as_str())
                },
                requested.as_str()
            ),
        );
        return chosen;
    }
    let fits_mode = match requested {
        RouteKind::None => true,
        RouteKind::Ingress | RouteKind::HttpRoute => mode == DeploymentMode::Standard,
        RouteKind::VirtualService | RouteKind::DomainMapping => mode == DeploymentMode::Knative,
    };
    if !fits_mode {
        let needed = match requested {
            RouteKind::Ingress | RouteKind::HttpRoute => "Standard",
            _ => "Knative",
        };
        findings.reject(
            field,
            format!(
                "a {} route needs deployment mode {needed}, and this InferenceService is {}",
                requested.as_str(),
                mode.as_str()
            ),
        );
        return chosen;
    }
    let external_only = matches!(
        requested,
        RouteKind::Ingress | RouteKind::HttpRoute | RouteKind::DomainMapping
    );
    if internal && external_only {
        findings.reject(
            field,
            format!(
                "a cluster-local InferenceService gets no external route, so it cannot have a {} \
                 (remove the visibility label or this annotation)",
                requested.as_str()
            ),
        );
        return chosen;
    }
    requested
}

/// Rejects settings that cannot work with the chosen route kind, and warns about ones it ignores.
fn check_route_settings(
    route_kind: RouteKind,
    internal: bool,
    settings: &UserSettings,
    config: &KserveConfig,
    findings: &mut Findings,
) {
    let ingress = &config.ingress;
    let kind = route_kind.as_str();
    if route_kind == RouteKind::VirtualService {
        for (field, value) in [
            ("localGateway", &ingress.local_gateway),
            ("localGatewayService", &ingress.local_gateway_service),
            (
                "knativeLocalGatewayService",
                &ingress.knative_local_gateway_service,
            ),
        ] {
            if value.is_empty() {
                findings.reject(
                    format!("config.ingress.{field}"),
                    "is required for VirtualService routes",
                );
            }
        }
    }
    if settings.tls_secret.is_some()
        && !matches!(route_kind, RouteKind::Ingress | RouteKind::DomainMapping)
    {
        findings.reject(
            annotation_field(annotations::TLS_SECRET),
            format!(
                "applies to Ingress and DomainMapping routes; this InferenceService gets {kind} \
                 (TLS for HTTPRoute and VirtualService is terminated by the Gateway: set \
                 urlScheme https)"
            ),
        );
    }
    if settings.path.is_some() && (internal || !route_kind.serves_paths()) {
        findings.reject(
            annotation_field(annotations::PATH),
            format!(
                "path-based routing needs an external HTTPRoute or VirtualService route; this \
                 InferenceService gets {}{kind}",
                if internal { "a cluster-local " } else { "" }
            ),
        );
    }
    let ignored = [
        (
            annotations::INGRESS_CLASS,
            settings.ingress_class.is_some(),
            route_kind == RouteKind::Ingress,
        ),
        (
            annotations::TIMEOUT,
            settings.timeout.is_some(),
            route_kind.serves_paths(),
        ),
        (
            annotations::GATEWAY,
            settings.gateway.is_some(),
            route_kind.serves_paths(),
        ),
        (annotations::HOST, settings.host.is_some(), !internal),
    ];
    for (key, set, applies) in ignored {
        if set && !applies {
            findings.warn(format!(
                "{} is ignored: this InferenceService gets {}{kind} route",
                annotation_field(key),
                if internal { "a cluster-local " } else { "" }
            ));
        }
    }
    if settings.timeout.is_some()
        && route_kind == RouteKind::HttpRoute
        && ingress.disable_http_route_timeout
    {
        findings.warn(format!(
            "{} is ignored: disableHTTPRouteTimeout is set in the KServe config",
            annotation_field(annotations::TIMEOUT)
        ));
    }
}

/// With `--route-owner kserve`, KServe writes the Ingresses, HTTPRoutes and VirtualServices
/// from its config alone: an `isvc-ingress.io/*` setting that would change such a route would
/// describe a route nobody writes, so it is refused (DomainMappings are ours in both modes).
fn refuse_settings_kserve_ignores(
    route_kind: RouteKind,
    settings: &UserSettings,
    findings: &mut Findings,
) {
    if !RouteOwner::Kserve.writes_for(route_kind) {
        return;
    }
    // Settings the route kind cannot use at all are refused or warned about already.
    let paths = route_kind.serves_paths();
    let ingress = route_kind == RouteKind::Ingress;
    let set = [
        (annotations::HOST, settings.host.is_some()),
        (annotations::PATH, settings.path.is_some() && paths),
        (annotations::GATEWAY, settings.gateway.is_some() && paths),
        (
            annotations::INGRESS_CLASS,
            settings.ingress_class.is_some() && ingress,
        ),
        (annotations::TIMEOUT, settings.timeout.is_some() && paths),
        (
            annotations::TLS_SECRET,
            settings.tls_secret.is_some() && ingress,
        ),
    ];
    for (key, _) in set.into_iter().filter(|(_, set)| *set) {
        findings.reject(
            annotation_field(key),
            format!(
                "KServe writes this InferenceService's {} (--route-owner kserve) and does not read \
                 this annotation; it applies only with --route-owner isvc-ingress",
                route_kind.as_str()
            ),
        );
    }
}

/// The gateway external traffic enters through: the `gateway` annotation, or the config's.
fn external_gateway(
    route_kind: RouteKind,
    settings: &UserSettings,
    config: &KserveConfig,
    findings: &mut Findings,
) -> Option<(String, String)> {
    let (configured, config_field) = match route_kind {
        RouteKind::HttpRoute => (
            &config.ingress.kserve_ingress_gateway,
            "kserveIngressGateway",
        ),
        RouteKind::VirtualService => (&config.ingress.ingress_gateway, "ingressGateway"),
        _ => return None,
    };
    let reference = settings.gateway.as_ref().unwrap_or(configured);
    if reference.is_empty() {
        findings.reject(
            format!("config.ingress.{config_field}"),
            format!(
                "is required for {} routes (or set {})",
                route_kind.as_str(),
                annotation_field(annotations::GATEWAY)
            ),
        );
        return None;
    }
    dns::parse_namespaced_name(reference)
        .ok()
        .map(|(namespace, name)| (namespace.to_string(), name.to_string()))
}

/// KServe names a Service after each component; a name over 63 characters fails deep inside
/// KServe's reconcile, so it is refused here.
fn check_service_names(isvc: &InferenceService, findings: &mut Findings) {
    for component in &isvc.components {
        if let Some(problem) = dns::label_problem(&component.service_name) {
            findings.reject(
                "metadata.name",
                format!(
                    "the {} Service name would be invalid: {problem}",
                    component.kind.key()
                ),
            );
        }
    }
}

fn warn_near_label_limit(plan: &RoutePlan, findings: &mut Findings) {
    for (label, length) in plan.labels_near_limit() {
        findings.warn(format!(
            "host label \"{label}\" is {length} characters, {} below the DNS limit of 63: \
             a slightly longer name or namespace will not fit",
            dns::MAX_LABEL_LENGTH - length
        ));
    }
}

impl RoutePlan {
    /// Whether the ISVC is cluster-local: no external host, gateway or path.
    pub fn is_cluster_local(&self) -> bool {
        self.routing.internal
    }

    /// Labels of the planned hosts (external, then component) within 5 characters of the DNS
    /// limit of 63, each once, with its length in characters.
    pub fn labels_near_limit(&self) -> Vec<(&str, usize)> {
        let hosts = self
            .hosts
            .iter()
            .chain(self.components.values().map(|component| &component.host));
        let mut near: Vec<(&str, usize)> = Vec::new();
        for host in hosts {
            for label in host.split('.') {
                let length = label.len();
                if (dns::MAX_LABEL_LENGTH - LABEL_WARNING_MARGIN..=dns::MAX_LABEL_LENGTH)
                    .contains(&length)
                    && !near.iter().any(|(seen, _)| *seen == label)
                {
                    near.push((label, length));
                }
            }
        }
        near
    }
}

/// `<service>.<namespace>.svc.cluster.local`.
fn service_host(service: &str, namespace: &str) -> String {
    format!("{service}.{namespace}.svc.{CLUSTER_DOMAIN}")
}

/// The Service that receives an ISVC's traffic inside the cluster.
fn entry(isvc: &InferenceService) -> &Component {
    isvc.entry_component()
}
