//! `isvc-ingress analyze`: why an InferenceService's URL does not answer, and how to fix it.
//!
//! A pure function of a [`Snapshot`] (the objects read from dumps or from the cluster) to
//! [`Finding`]s. For each ISVC it walks the chain a request travels, link by link, and reports
//! every broken one: the KServe config, the plan ([`crate::plan`], so the expected routes,
//! hosts and URLs are exactly what KServe or isvc-ingress builds), each route the plan needs
//! (exists, owned as expected, matches the plan), its acceptance by its controller, the Gateway
//! listener, the backend Service, the URLs in the status, host conflicts, DNS labels and
//! visibility, and finally the stale routes no ISVC wants. The I/O shells (`cli`,
//! `cluster_snapshot`) sit above this module; it imports only the planning core.

pub mod codes;
mod hosts;
mod index;
mod live;
pub mod output;
mod routes;
pub mod snapshot;

pub use codes::{Code, Severity};
pub use snapshot::{Kind, Snapshot};

use crate::config::{ConfigError, DeploymentMode, KserveConfig};
use crate::isvc::InferenceService;
use crate::plan::{self, Policy, RoutePlan, objects::RouteObject};
use crate::violation::Violation;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// One object a finding involves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    /// The kind, as `kubectl get` names it (`Gateway.networking.istio.io` for Istio's).
    pub kind: String,
    /// Empty for cluster-scoped objects.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: Kind, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.display().to_string(),
            namespace: if kind.is_namespaced() {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    fn of(kind: Kind, object: &Value) -> Self {
        Self::new(
            kind,
            snapshot::object_namespace(object),
            snapshot::object_name(object),
        )
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(formatter, "{} {}", self.kind, self.name)
        } else {
            write!(formatter, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One broken link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    /// `<namespace>/<name>` of the ISVC the finding belongs to; None for the cluster's config.
    pub inference_service: Option<String>,
    /// The objects involved, the broken one first.
    pub objects: Vec<ObjectRef>,
    /// What is wrong, in one line.
    pub message: String,
    /// How to fix it, in one line.
    pub fix: String,
}

/// Which ISVCs to analyse: one namespace or all, and optionally some names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// None: every namespace.
    pub namespace: Option<String>,
    /// Empty: every ISVC of the namespace(s).
    pub names: Vec<String>,
}

impl Scope {
    fn includes(&self, namespace: &str, name: &str) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|wanted| wanted == namespace)
            && (self.names.is_empty() || self.names.iter().any(|wanted| wanted == name))
    }
}

/// The result of an analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `<namespace>/<name>` of every ISVC analysed, sorted.
    pub inference_services: Vec<String>,
    /// Cluster findings first, then by ISVC, each ISVC's in the order of the chain.
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.severity == severity)
            .count()
    }

    /// Names given in the scope that match no ISVC, as `<namespace>/<name>` or `<name>`.
    pub fn missing_names(&self, scope: &Scope) -> Vec<String> {
        scope
            .names
            .iter()
            .filter(|name| {
                !self
                    .inference_services
                    .iter()
                    .any(|found| found.rsplit('/').next() == Some(name.as_str()))
            })
            .map(|name| match &scope.namespace {
                Some(namespace) => format!("{namespace}/{name}"),
                None => name.to_string(),
            })
            .collect()
    }
}

/// An ISVC of the snapshot with its plan.
struct Planned<'a> {
    object: &'a Value,
    namespace: String,
    name: String,
    /// The routing view, or why the object cannot be read.
    outcome: Result<PlanOutcome, Vec<Violation>>,
}

struct PlanOutcome {
    isvc: InferenceService,
    plan: RoutePlan,
    routes: Vec<RouteObject>,
}

impl Planned<'_> {
    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn planned(&self) -> Option<&PlanOutcome> {
        self.outcome.as_ref().ok()
    }
}

/// What every check needs.
struct Context<'a> {
    snapshot: &'a Snapshot,
    config: &'a KserveConfig,
    policy: &'a Policy,
    planned: &'a [Planned<'a>],
    index: index::Index<'a>,
}

/// Collects the findings of one ISVC (or of the cluster).
struct Findings<'a> {
    isvc: Option<String>,
    list: &'a mut Vec<Finding>,
}

impl Findings<'_> {
    fn push(
        &mut self,
        code: Code,
        objects: Vec<ObjectRef>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.list.push(Finding {
            code,
            severity: code.severity(),
            inference_service: self.isvc.clone(),
            objects,
            message: message.into(),
            fix: fix.into(),
        });
    }
}

/// Analyses the ISVCs of `scope`. `config` is the `--config` override; without it the KServe
/// config is the snapshot's `inferenceservice-config` (or, when absent, the one KServe ships,
/// with IA0102). An invalid config ends the walk at IA0101: no ISVC can be planned.
pub fn analyze(
    snapshot: &Snapshot,
    config: Option<&KserveConfig>,
    policy: &Policy,
    scope: &Scope,
) -> Report {
    let mut list = Vec::new();
    let mut cluster = Findings {
        isvc: None,
        list: &mut list,
    };
    let in_scope: Vec<&Value> = snapshot
        .list(Kind::InferenceService)
        .filter(|object| {
            scope.includes(
                snapshot::object_namespace(object),
                snapshot::object_name(object),
            )
        })
        .collect();
    let mut inference_services: Vec<String> = in_scope
        .iter()
        .map(|object| {
            format!(
                "{}/{}",
                snapshot::object_namespace(object),
                snapshot::object_name(object)
            )
        })
        .collect();
    inference_services.sort();
    let loaded;
    let config = match config {
        Some(config) => config,
        None => match cluster_config(snapshot, &mut cluster) {
            Some(config) => {
                loaded = config;
                &loaded
            }
            None => {
                return Report {
                    inference_services,
                    findings: list,
                };
            }
        },
    };
    for conflict in policy.route_owner.conflicts_with(config) {
        cluster.push(
            Code::RouteOwnerConflict,
            config_map_refs(snapshot),
            conflict,
            "set disableIngressCreation and disableIstioVirtualHost to true in the ingress key \
             of inferenceservice-config, or run isvc-ingress with --route-owner kserve",
        );
    }
    let planned: Vec<Planned> = snapshot
        .list(Kind::InferenceService)
        .map(|object| plan_one(object, config, policy))
        .collect();
    let knative_in_scope = planned.iter().any(|entry| {
        scope.includes(&entry.namespace, &entry.name)
            && entry
                .planned()
                .is_some_and(|outcome| outcome.plan.mode == DeploymentMode::Knative)
    });
    if knative_in_scope {
        check_knative_domain_template(snapshot, &mut cluster);
    }
    let context = Context {
        snapshot,
        config,
        policy,
        planned: &planned,
        index: index::Index::new(snapshot, &planned, &config.ingress.ingress_domain),
    };
    let mut by_isvc: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
    for (position, entry) in planned
        .iter()
        .enumerate()
        .filter(|(_, entry)| scope.includes(&entry.namespace, &entry.name))
    {
        let found = by_isvc.entry(entry.key()).or_default();
        let mut findings = Findings {
            isvc: Some(entry.key()),
            list: found,
        };
        walk(&context, position, entry, &mut findings);
    }
    for finding in hosts::stale_routes(&context, scope) {
        let key = finding.inference_service.clone().unwrap_or_default();
        by_isvc.entry(key).or_default().push(finding);
    }
    list.extend(by_isvc.into_values().flatten());
    Report {
        inference_services,
        findings: list,
    }
}

/// The chain of one ISVC, link by link.
fn walk(context: &Context, position: usize, entry: &Planned, findings: &mut Findings) {
    let isvc_ref = ObjectRef::of(Kind::InferenceService, entry.object);
    let outcome = match &entry.outcome {
        Ok(outcome) => outcome,
        Err(violations) => {
            for violation in violations {
                findings.push(
                    Code::PlanInvalid,
                    vec![isvc_ref.clone()],
                    violation.to_string(),
                    "correct the field named; `isvc-ingress render` on the object shows every \
                     problem, and the admission webhook refuses such objects",
                );
            }
            return;
        }
    };
    routes::check_routes(context, entry, outcome, findings);
    routes::check_status(entry, outcome, findings);
    hosts::check_conflicts(context, position, entry, outcome, findings);
    hosts::check_names(context, entry, outcome, findings);
}

fn plan_one<'a>(object: &'a Value, config: &KserveConfig, policy: &Policy) -> Planned<'a> {
    let namespace = snapshot::object_namespace(object).to_string();
    let name = snapshot::object_name(object).to_string();
    let outcome =
        InferenceService::from_json(object, "default").and_then(|isvc| {
            match plan::plan(&isvc, config, policy) {
                Ok(plan) => {
                    let routes = plan::routes(&plan, &isvc, config);
                    Ok(PlanOutcome { isvc, plan, routes })
                }
                Err(rejection) => Err(rejection.violations),
            }
        });
    Planned {
        object,
        namespace,
        name,
        outcome,
    }
}

fn config_map_refs(snapshot: &Snapshot) -> Vec<ObjectRef> {
    snapshot
        .kserve_config_map()
        .map(|object| ObjectRef::of(Kind::ConfigMap, object))
        .into_iter()
        .collect()
}

/// The snapshot's KServe config: IA0102 and the shipped one when absent, IA0101 and None when
/// invalid.
fn cluster_config(snapshot: &Snapshot, findings: &mut Findings) -> Option<KserveConfig> {
    let Some(object) = snapshot.kserve_config_map() else {
        findings.push(
            Code::ConfigNotFound,
            Vec::new(),
            format!(
                "no ConfigMap {} was read: the analysis assumes the configuration KServe ships",
                crate::config::CONFIG_MAP_NAME
            ),
            "include `kubectl get configmap -n kserve inferenceservice-config -o yaml` in the \
             dump, pass --config FILE, or (live) pass --kserve-namespace where KServe runs",
        );
        return Some(KserveConfig::shipped());
    };
    let reference = ObjectRef::of(Kind::ConfigMap, object);
    let data: BTreeMap<String, String> = match object.get("data") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(data) => match serde_json::from_value(data.clone()) {
            Ok(data) => data,
            Err(error) => {
                findings.push(
                    Code::ConfigInvalid,
                    vec![reference],
                    format!("data: every value must be a string: {error}"),
                    "write each key of data as a string (the JSON text of the setting)",
                );
                return None;
            }
        },
    };
    let violations = match KserveConfig::from_config_map_data(&data) {
        Ok(config) => return Some(config),
        Err(ConfigError::Invalid { violations, .. }) => violations,
        Err(ConfigError::Unreadable(message)) => vec![Violation::new("data", message)],
    };
    for violation in violations {
        findings.push(
            Code::ConfigInvalid,
            vec![reference.clone()],
            violation.to_string(),
            "correct the field named (`isvc-ingress check-config` lists every violation); until \
             then KServe reconciles no InferenceService",
        );
    }
    None
}

/// Knative's default `domain-template` (knative.dev/networking `DefaultDomainTemplate`).
const KNATIVE_DEFAULT_DOMAIN_TEMPLATE: &str = "{{.Name}}.{{.Namespace}}.{{.Domain}}";

/// IA0104: KServe (and the plan) predict Knative hosts as `<service>.<namespace>.<domain>`;
/// another Knative `domain-template` publishes other hosts.
fn check_knative_domain_template(snapshot: &Snapshot, findings: &mut Findings) {
    let Some(object) = snapshot.knative_network_config_map() else {
        return;
    };
    let Some(template) = object
        .pointer("/data/domain-template")
        .and_then(Value::as_str)
    else {
        return;
    };
    let squeezed: String = template.chars().filter(|c| !c.is_whitespace()).collect();
    if squeezed != KNATIVE_DEFAULT_DOMAIN_TEMPLATE {
        findings.push(
            Code::KnativeDomainTemplate,
            vec![ObjectRef::of(Kind::ConfigMap, object)],
            format!(
                "domain-template is \"{template}\": Knative publishes component hosts KServe and \
                 isvc-ingress do not predict (they assume {KNATIVE_DEFAULT_DOMAIN_TEMPLATE})"
            ),
            "remove domain-template from config-network (Knative then uses the default), or \
             route with the isvc-ingress.io/host annotation",
        );
    }
}

#[cfg(test)]
mod tests {
    /// The analysis is part of the pure core: it imports no shell (the cluster reader, the
    /// webhook, the reconciler, the command line), so it runs the same on dumps and on a
    /// cluster, and tests need no API server.
    #[test]
    fn the_analysis_imports_no_shell() {
        let sources = [
            ("mod.rs", include_str!("mod.rs")),
            ("codes.rs", include_str!("codes.rs")),
            ("hosts.rs", include_str!("hosts.rs")),
            ("index.rs", include_str!("index.rs")),
            ("live.rs", include_str!("live.rs")),
            ("output.rs", include_str!("output.rs")),
            ("routes.rs", include_str!("routes.rs")),
            ("snapshot.rs", include_str!("snapshot.rs")),
            ("../field_diff.rs", include_str!("../field_diff.rs")),
        ];
        let shells = [
            "server",
            "admission",
            "reconcile",
            "cli",
            "serve",
            "cluster_snapshot",
            "kube",
        ];
        for (file, source) in sources {
            for line in source
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
            {
                for shell in shells {
                    for path in [format!("crate::{shell}::"), format!("use {shell}::")] {
                        assert!(
                            !line.contains(&path),
                            "{file} imports the shell {shell}: {line}"
                        );
                    }
                }
            }
        }
    }
}
