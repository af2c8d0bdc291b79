//! Lookups built once per analysis, so that the checks of one ISVC cost time in proportion to
//! its own objects rather than to the cluster's (a cluster with thousands of models and routes
//! would otherwise take quadratic time).

use super::Planned;
use super::live::{self, Claim};
use super::snapshot::{Kind, Snapshot, object_name, object_namespace};
use crate::plan::RoutePlan;
use serde_json::Value;
use std::collections::HashMap;

/// The kinds that carry traffic to a host.
pub(super) const ROUTE_KINDS: [Kind; 4] = [
    Kind::Ingress,
    Kind::HttpRoute,
    Kind::VirtualService,
    Kind::DomainMapping,
];

/// Who claims a host: a planned ISVC (its position in the planned list) or a route without a
/// controller.
#[derive(Debug, Clone, Copy)]
pub(super) enum Holder<'a> {
    Isvc(usize),
    Route(Kind, &'a Value),
}

impl Holder<'_> {
    pub(super) fn is(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Isvc(a), Self::Isvc(b)) => a == b,
            (Self::Route(_, a), Self::Route(_, b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

pub(super) struct Index<'a> {
    /// Every claim by host.
    claims: HashMap<String, Vec<(Holder<'a>, Claim)>>,
    /// Routes an ISVC controls, by (namespace, ISVC name).
    controlled: HashMap<(String, String), Vec<(Kind, &'a Value)>>,
    /// Position in the planned list by (namespace, name).
    planned: HashMap<(String, String), usize>,
}

impl<'a> Index<'a> {
    pub(super) fn new(snapshot: &'a Snapshot, planned: &'a [Planned<'a>], domain: &str) -> Self {
        let mut claims: HashMap<String, Vec<(Holder, Claim)>> = HashMap::new();
        let mut positions = HashMap::new();
        for (position, entry) in planned.iter().enumerate() {
            positions
                .entry((entry.namespace.clone(), entry.name.clone()))
                .or_insert(position);
            if let Some(outcome) = entry.planned() {
                for claim in plan_claims(&outcome.plan, domain) {
                    claims
                        .entry(claim.host.clone())
                        .or_default()
                        .push((Holder::Isvc(position), claim));
                }
            }
        }
        let mut controlled: HashMap<(String, String), Vec<(Kind, &Value)>> = HashMap::new();
        for kind in ROUTE_KINDS {
            for route in snapshot.list(kind) {
                match live::controller(route) {
                    Some(("InferenceService", name, _)) => controlled
                        .entry((object_namespace(route).to_string(), name.to_string()))
                        .or_default()
                        .push((kind, route)),
                    // Routes with another controller belong to it (Knative's own
                    // VirtualServices for the component hosts); only routes nobody controls
                    // are someone else's claim.
                    Some(_) => {}
                    None if live::managed_by_us(route) => {}
                    None => {
                        for claim in live::claims(kind, route) {
                            claims
                                .entry(claim.host.clone())
                                .or_default()
                                .push((Holder::Route(kind, route), claim));
                        }
                    }
                }
            }
        }
        Self {
            claims,
            controlled,
            planned: positions,
        }
    }

    /// The claims on `host`.
    pub(super) fn claims_on(&self, host: &str) -> &[(Holder<'a>, Claim)] {
        self.claims.get(host).map_or(&[], Vec::as_slice)
    }

    /// The routes controlled by an ISVC named `name` in `namespace` (any uid).
    pub(super) fn controlled_by(&self, namespace: &str, name: &str) -> &[(Kind, &'a Value)] {
        self.controlled
            .get(&(namespace.to_string(), name.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    /// Position in the planned list of the ISVC `namespace/name`.
    pub(super) fn planned(&self, namespace: &str, name: &str) -> Option<usize> {
        self.planned
            .get(&(namespace.to_string(), name.to_string()))
            .copied()
    }
}

/// The hosts and paths a plan sends to its ISVC: every external host whole, the component hosts,
/// and the path prefix on the shared `ingressDomain` host. None when cluster-local or stopped.
pub(super) fn plan_claims(plan: &RoutePlan, ingress_domain: &str) -> Vec<Claim> {
    if plan.is_cluster_local() || plan.stopped {
        return Vec::new();
    }
    let mut claims: Vec<Claim> = Vec::new();
    let hosts = plan
        .hosts
        .iter()
        .chain(plan.components.values().map(|component| &component.host));
    for host in hosts {
        let claim = Claim::new(host, "/");
        if !claims.contains(&claim) {
            claims.push(claim);
        }
    }
    if let Some(path) = &plan.path {
        claims.push(Claim::new(ingress_domain, path));
    }
    claims
}

/// Whether `route` (of `kind`) is one of the routes planned for `entry`.
pub(super) fn is_planned_route(entry: &Planned, kind: Kind, route: &Value) -> bool {
    entry.planned().is_some_and(|outcome| {
        outcome.routes.iter().any(|planned| {
            live::kind_of(planned) == Some(kind)
                && planned.metadata().name == object_name(route)
                && planned.metadata().namespace == object_namespace(route)
        })
    })
}
