//! The host links of the chain: no other ISVC or route claims an ISVC's host and path, the
//! hosts in use are valid DNS names, the visibility labels agree; and the stale routes of
//! InferenceServices that no InferenceService wants.

use super::index::{Holder, ROUTE_KINDS, is_planned_route, plan_claims};
use super::live::{self, CLUSTER_LOCAL_SUFFIX};
use super::snapshot::{Kind, object_namespace};
use super::{Code, Context, Finding, Findings, ObjectRef, PlanOutcome, Planned, Scope};
use crate::dns;
use crate::plan::OWNER_LABEL;
use serde_json::Value;

/// IA0801 and IA0802: the other holders of each claim of this ISVC, in the order found.
pub(super) fn check_conflicts(
    context: &Context,
    position: usize,
    entry: &Planned,
    outcome: &PlanOutcome,
    findings: &mut Findings,
) {
    let ours = plan_claims(&outcome.plan, &context.config.ingress.ingress_domain);
    let mut holders: Vec<(Holder, Vec<String>)> = Vec::new();
    for claim in &ours {
        for (holder, other) in context.index.claims_on(&claim.host) {
            let own = match holder {
                Holder::Isvc(other_position) => *other_position == position,
                Holder::Route(kind, route) => is_planned_route(entry, *kind, route),
            };
            if own || !claim.overlaps(other) {
                continue;
            }
            let shown = claim.to_string();
            match holders.iter_mut().find(|(seen, _)| seen.is(holder)) {
                Some((_, shared)) if shared.contains(&shown) => {}
                Some((_, shared)) => shared.push(shown),
                None => holders.push((*holder, vec![shown])),
            }
        }
    }
    let isvc_ref = ObjectRef::of(Kind::InferenceService, entry.object);
    for (holder, shared) in holders {
        let shared = shared.join(", ");
        match holder {
            Holder::Isvc(other_position) => {
                let other = &context.planned[other_position];
                findings.push(
                    Code::HostClaimedByIsvc,
                    vec![
                        isvc_ref.clone(),
                        ObjectRef::of(Kind::InferenceService, other.object),
                    ],
                    format!(
                        "{} and {} both claim {shared}: only one of them gets the traffic",
                        entry.key(),
                        other.key(),
                    ),
                    "give one of them another host (isvc-ingress.io/host) or path \
                     (isvc-ingress.io/path); the isvc-ingress webhook refuses the second one at \
                     admission",
                );
            }
            Holder::Route(kind, route) => {
                let route_ref = ObjectRef::of(kind, route);
                findings.push(
                    Code::HostClaimedByRoute,
                    vec![route_ref.clone(), isvc_ref.clone()],
                    format!(
                        "{route_ref}, which no InferenceService owns, also claims {shared}: the \
                         gateway may send the traffic there"
                    ),
                    format!(
                        "remove {shared} from {route_ref}, or give {} another host \
                         (isvc-ingress.io/host)",
                        entry.key()
                    ),
                );
            }
        }
    }
}

/// IA0901-IA0903: hosts in use are valid DNS names, planned labels are not at the limit, and the
/// visibility label is the one of the ISVC's mode.
pub(super) fn check_names(
    context: &Context,
    entry: &Planned,
    outcome: &PlanOutcome,
    findings: &mut Findings,
) {
    let isvc_ref = ObjectRef::of(Kind::InferenceService, entry.object);
    let mut in_use: Vec<(String, ObjectRef)> = Vec::new();
    let controlled = context
        .index
        .controlled_by(&entry.namespace, &outcome.isvc.name)
        .iter()
        .filter(|(_, route)| {
            live::controller(route)
                .and_then(|(_, _, uid)| uid)
                .zip(outcome.isvc.uid.as_deref())
                .is_none_or(|(route, isvc)| route == isvc)
        });
    for (kind, route) in controlled {
        let kind = *kind;
        for host in live::hosts(kind, route) {
            in_use.push((host, ObjectRef::of(kind, route)));
        }
    }
    let status = entry.object.get("status").unwrap_or(&Value::Null);
    let mut urls: Vec<&str> = ["/url", "/address/url"]
        .iter()
        .filter_map(|pointer| live::text(status, pointer))
        .collect();
    if let Some(components) = status.get("components").and_then(Value::as_object) {
        urls.extend(
            components
                .values()
                .filter_map(|component| live::text(component, "/url")),
        );
    }
    for url in urls {
        in_use.push((live::url_host(url).to_string(), isvc_ref.clone()));
    }
    let mut reported: Vec<String> = Vec::new();
    for (host, object) in in_use {
        if reported.contains(&host) {
            continue;
        }
        if let Some(problem) = dns::host_problem(&host) {
            findings.push(
                Code::HostInvalid,
                vec![object.clone()],
                format!("{object} uses the host {host}, which no DNS can serve: {problem}"),
                "shorten the InferenceService or namespace name, or set domainTemplate (or the \
                 isvc-ingress.io/host annotation) to a shorter host",
            );
            reported.push(host);
        }
    }
    for (label, length) in outcome.plan.labels_near_limit() {
        findings.push(
            Code::LabelNearLimit,
            vec![isvc_ref.clone()],
            format!(
                "host label \"{label}\" is {length} characters, {} below the DNS limit of 63: a \
                 slightly longer name, namespace or component makes the host invalid",
                dns::MAX_LABEL_LENGTH - length
            ),
            "prefer shorter InferenceService and namespace names, or a domainTemplate that \
             does not join them into one label",
        );
    }
    if let Some((ignored, applies)) =
        crate::plan::ignored_visibility_label(&outcome.isvc, outcome.plan.mode)
    {
        findings.push(
            Code::VisibilityLabelIgnored,
            vec![isvc_ref],
            format!(
                "the label {ignored}=cluster-local has no effect in {} mode: the \
                 InferenceService is exposed outside the cluster",
                outcome.plan.mode.as_str()
            ),
            format!("label it {applies}=cluster-local instead"),
        );
    }
}

/// IA1001 and IA0904 over the routes of `scope`'s namespaces that an ISVC controls or that
/// isvc-ingress wrote: each must be one its ISVC's plan wants.
pub(super) fn stale_routes(context: &Context, scope: &Scope) -> Vec<Finding> {
    let mut list = Vec::new();
    let kinds = ROUTE_KINDS.into_iter().chain([Kind::Service]);
    for kind in kinds {
        for route in context.snapshot.list(kind) {
            if kind == Kind::Service && live::text(route, "/spec/type") != Some("ExternalName") {
                continue;
            }
            let controller = live::controller(route);
            let owner_name = match controller {
                Some(("InferenceService", name, _)) => name,
                Some(_) => continue,
                None if live::managed_by_us(route) => {
                    live::label(route, OWNER_LABEL).unwrap_or_default()
                }
                None => continue,
            };
            let namespace = object_namespace(route);
            if !scope.includes(namespace, owner_name) {
                continue;
            }
            let route_ref = ObjectRef::of(kind, route);
            let owner_ref = ObjectRef::new(Kind::InferenceService, namespace, owner_name);
            let mut findings = Findings {
                isvc: Some(format!("{namespace}/{owner_name}")),
                list: &mut list,
            };
            let owner = context
                .index
                .planned(namespace, owner_name)
                .map(|position| &context.planned[position]);
            let Some(owner) = owner else {
                findings.push(
                    Code::StaleRoute,
                    vec![route_ref.clone(), owner_ref],
                    format!(
                        "{route_ref} belongs to InferenceService {namespace}/{owner_name}, which \
                         does not exist"
                    ),
                    delete_fix(kind, route),
                );
                continue;
            };
            let Some(outcome) = owner.planned() else {
                continue;
            };
            // A planned route with the uid of an earlier ISVC of the same name is IA0302.
            if is_planned_route(owner, kind, route) {
                continue;
            }
            let route_uid = controller.and_then(|(_, _, uid)| uid);
            if let (Some(route_uid), Some(isvc_uid)) = (route_uid, outcome.isvc.uid.as_deref())
                && route_uid != isvc_uid
            {
                findings.push(
                    Code::StaleRoute,
                    vec![route_ref.clone(), owner_ref],
                    format!(
                        "{route_ref} belongs to an earlier InferenceService {} (uid {route_uid}; \
                         the current one is {isvc_uid})",
                        owner.key()
                    ),
                    delete_fix(kind, route),
                );
                continue;
            }
            let external: Vec<String> = live::hosts(kind, route)
                .into_iter()
                .filter(|host| !host.ends_with(CLUSTER_LOCAL_SUFFIX))
                .collect();
            if outcome.plan.is_cluster_local() && !external.is_empty() {
                findings.push(
                    Code::ClusterLocalExposed,
                    vec![route_ref.clone(), owner_ref],
                    format!(
                        "{} is cluster-local, and {route_ref} still serves {} outside the \
                         cluster (KServe does not delete a route when an InferenceService \
                         becomes cluster-local)",
                        owner.key(),
                        external.join(", ")
                    ),
                    delete_fix(kind, route),
                );
            } else {
                findings.push(
                    Code::StaleRoute,
                    vec![route_ref.clone(), owner_ref],
                    format!(
                        "{route_ref} belongs to {}, whose plan has no such route (the route \
                         kind, a component or the config changed; KServe leaves such routes \
                         behind)",
                        owner.key()
                    ),
                    delete_fix(kind, route),
                );
            }
        }
    }
    list
}

fn delete_fix(kind: Kind, route: &Value) -> String {
    format!("delete it: {}", live::delete_command(kind, route))
}
