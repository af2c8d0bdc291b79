//! Every decision the reconciler makes, as pure functions of the ISVC, the plan, the live objects
//! and the served kinds: which routes to apply, which to delete, what `IngressReady` says, and
//! the status patch. The I/O layer ([`super::controller`]) only carries these out.

use super::cached::CachedRoute;
use super::kinds::{ManagedKind, ServedKinds};
use crate::isvc::ComponentKind;
use crate::plan::objects::RouteObject;
use crate::plan::{RouteKind, RoutePlan};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The condition type the reconciler owns on the ISVC (KServe's own name for it, so `Ready`,
/// which KServe computes from `PredictorReady` and `IngressReady`, follows it).
pub const INGRESS_READY: &str = "IngressReady";

/// Condition reasons the reconciler writes (besides Gateway reasons copied from HTTPRoutes).
pub mod reason {
    /// The ISVC's routing input is invalid; the message names every problem.
    pub const INVALID_ROUTING: &str = "InvalidRouting";
    /// `serving.kserve.io/stop` is true: every route was removed.
    pub const STOPPED: &str = "Stopped";
    /// Another, older ISVC holds one of this ISVC's external hosts.
    pub const HOST_CONFLICT: &str = "HostConflict";
    /// An HTTPRoute has no parent status yet (§5.5).
    pub const PARENT_STATUS_NOT_AVAILABLE: &str = "ParentStatusNotAvailable";
    /// Fallback for a False Gateway condition without a reason.
    pub const ROUTE_NOT_ACCEPTED: &str = "RouteNotAccepted";
    /// Event: a status URL the platform wrote was kept instead of the planned one (a
    /// prediction that disagrees, or an https downgrade); the message names each.
    pub const PLATFORM_URL_KEPT: &str = "PlatformUrlKept";
}

/// What `IngressReady` should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady { reason: String, message: String },
}

impl Readiness {
    pub fn not_ready(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::NotReady {
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// The condition, without `lastTransitionTime` (which [`status_patch`] decides).
    fn condition(&self) -> Map<String, Value> {
        let mut condition = Map::new();
        condition.insert("type".into(), json!(INGRESS_READY));
        match self {
            Self::Ready => {
                condition.insert("status".into(), json!("True"));
            }
            Self::NotReady { reason, message } => {
                condition.insert("status".into(), json!("False"));
                condition.insert("reason".into(), json!(reason));
                condition.insert("message".into(), json!(message));
            }
        }
        condition
    }
}

/// Whether a live route already holds a desired one ([`crate::field_diff::is_subset`]): a route
/// that matches what we would apply is not written again.
pub use crate::field_diff::is_subset;

/// A live route of the reconciler's cache.
#[derive(Debug, Clone)]
pub struct LiveRoute {
    pub kind: ManagedKind,
    pub object: Arc<CachedRoute>,
}

impl LiveRoute {
    pub fn name(&self) -> &str {
        self.object.name()
    }

    /// Whether the ISVC with `uid` controls this route: the reconciler deletes nothing else,
    /// whatever its labels say (a label can be copied; a controller ownerReference cannot be
    /// shared, and the API server allows one per object).
    pub fn controlled_by(&self, uid: &str) -> bool {
        self.object.controller_uid() == Some(uid)
    }
}

/// A route to delete, with the uid the delete is preconditioned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleRoute {
    pub kind: ManagedKind,
    pub name: String,
    pub uid: Option<String>,
}

/// A route to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteApply {
    pub kind: ManagedKind,
    pub name: String,
    pub object: Value,
}

/// What to write for the routes of one ISVC.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteChanges {
    /// Desired routes whose live copy is missing or differs, in plan order.
    pub apply: Vec<RouteApply>,
    /// Live routes this ISVC controls that the plan no longer wants.
    pub delete: Vec<StaleRoute>,
}

impl RouteChanges {
    pub fn is_empty(&self) -> bool {
        self.apply.is_empty() && self.delete.is_empty()
    }
}

/// Diffs desired routes against the live routes labelled as this ISVC's. A desired route is
/// applied unless its live copy already contains it ([`is_subset`]); a live route is deleted
/// when the plan has no route of that kind and name (kind changed, component removed,
/// cluster-local, stopped, route `None`) and the ISVC controls it.
pub fn route_changes(desired: &[RouteObject], live: &[LiveRoute], isvc_uid: &str) -> RouteChanges {
    let mut changes = RouteChanges::default();
    let mut wanted = Vec::with_capacity(desired.len());
    for route in desired {
        let Some(kind) = ManagedKind::of(route.api_version(), route.kind()) else {
            continue;
        };
        let name = route.metadata().name.clone();
        let object = route.to_value();
        let current = live
            .iter()
            .find(|candidate| candidate.kind == kind && candidate.name() == name);
        let unchanged = current.is_some_and(|current| current.object.holds(&object));
        if !unchanged {
            changes.apply.push(RouteApply {
                kind,
                name: name.clone(),
                object,
            });
        }
        wanted.push((kind, name));
    }
    for route in live {
        let still_wanted = wanted
            .iter()
            .any(|(kind, name)| *kind == route.kind && name == route.name());
        if !still_wanted && route.controlled_by(isvc_uid) {
            changes.delete.push(StaleRoute {
                kind: route.kind,
                name: route.name().to_string(),
                uid: route.object.uid().map(str::to_string),
            });
        }
    }
    changes
}

/// The kinds a set of desired routes needs, in [`ManagedKind::ALL`] order.
pub fn required_kinds(desired: &[RouteObject]) -> Vec<ManagedKind> {
    ManagedKind::ALL
        .into_iter()
        .filter(|kind| {
            desired
                .iter()
                .any(|route| ManagedKind::of(route.api_version(), route.kind()) == Some(*kind))
        })
        .collect()
}

/// `IngressReady=False` naming the first kind the plan needs and the cluster does not serve.
pub fn missing_kind(desired: &[RouteObject], served: &ServedKinds) -> Option<Readiness> {
    let missing = required_kinds(desired)
        .into_iter()
        .find(|kind| !served.contains(*kind))?;
    Some(Readiness::not_ready(
        missing.missing_reason(),
        format!(
            "the cluster does not serve {missing} ({}.{} is not installed): {}; no route was \
             written",
            missing.plural(),
            missing.group(),
            missing.install_hint(),
        ),
    ))
}

/// `IngressReady=False` for hosts another ISVC holds, naming it.
pub fn host_conflict(conflicts: &[(String, String)]) -> Option<Readiness> {
    if conflicts.is_empty() {
        return None;
    }
    let list = conflicts
        .iter()
        .map(|(host, holder)| format!("{host} is held by InferenceService {holder}"))
        .collect::<Vec<_>>()
        .join("; ");
    Some(Readiness::not_ready(
        reason::HOST_CONFLICT,
        format!("{list}; no route was written"),
    ))
}

/// The component a KServe HTTPRoute reports on, by the route's name (`<isvc>-<component>`),
/// as the subject of §5.5's messages; the top-level and path routes are `InferenceService`.
fn route_subject(isvc_name: &str, route_name: &str) -> &'static str {
    let suffix = route_name
        .strip_prefix(isvc_name)
        .and_then(|rest| rest.strip_prefix('-'));
    match suffix {
        Some("predictor") => ComponentKind::Predictor.title(),
        Some("transformer") => ComponentKind::Transformer.title(),
        Some("explainer") => ComponentKind::Explainer.title(),
        _ => "InferenceService",
    }
}

/// HTTPRoute readiness exactly as KServe derives it (reference §5.5), over the desired routes in
/// plan order (components, then top-level): a missing route, a route without parent status, or
/// the first condition with status False (parents, then conditions, in order; any type) makes
/// `IngressReady` False with that route's subject in the message.
pub fn httproute_readiness(
    isvc_name: &str,
    desired: &[RouteObject],
    live: impl Fn(&str) -> Option<Value>,
) -> Readiness {
    for route in desired {
        if route.kind() != "HTTPRoute" {
            continue;
        }
        let name = &route.metadata().name;
        let subject = route_subject(isvc_name, name);
        let Some(object) = live(name) else {
            return Readiness::not_ready(
                format!("{subject} Deployment NotReady"),
                format!("{subject} HTTPRoute not created"),
            );
        };
        let parents = object
            .pointer("/status/parents")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if parents.is_empty() {
            return Readiness::not_ready(
                reason::PARENT_STATUS_NOT_AVAILABLE,
                format!("{subject} HttpRouteNotReady"),
            );
        }
        let failed = parents
            .iter()
            .filter_map(|parent| parent.get("conditions").and_then(Value::as_array))
            .flatten()
            .find(|condition| condition.get("status").and_then(Value::as_str) == Some("False"));
        if let Some(condition) = failed {
            let text = |key: &str| condition.get(key).and_then(Value::as_str).unwrap_or("");
            let reason = match text("reason") {
                "" => reason::ROUTE_NOT_ACCEPTED,
                reason => reason,
            };
            return Readiness::not_ready(reason, format!("{subject} {}", text("message")));
        }
    }
    Readiness::Ready
}

/// The status the reconciler wants on the ISVC. `urls` is None when the routes were not written
/// (invalid, blocked, stopped): the URLs then stay as they are. `readiness` is None when
/// `IngressReady` is another controller's to write ([`crate::plan::RouteOwner::writes_ingress_ready`]):
/// it then stays as that controller wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredStatus {
    pub urls: Option<StatusUrls>,
    pub readiness: Option<Readiness>,
}

/// `status.url`, `status.address.url` and `status.components.<c>.{url,restUrl,grpcUrl}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUrls {
    pub url: Option<String>,
    pub address: Option<String>,
    /// Keyed by the `status.components` key; grpcUrl None removes a stale one.
    pub components: BTreeMap<&'static str, (String, String, Option<String>)>,
}

impl StatusUrls {
    /// The URLs to write for `plan` over the live status, by the rule of
    /// [`crate::plan::status`] (a prediction never replaces a written URL; no https downgrade),
    /// and the URLs kept as written.
    pub fn of(
        plan: &RoutePlan,
        live_status: Option<&Value>,
        own: crate::plan::status::OwnUrls,
    ) -> (Self, Vec<crate::plan::status::Disagreement>) {
        let (urls, disagreements) = crate::plan::status::resolve(plan, live_status, own);
        let urls = Self {
            url: urls.url,
            address: urls.address,
            components: urls
                .components
                .into_iter()
                .map(|(kind, component)| {
                    (
                        kind.key(),
                        (component.url, component.rest_url, component.grpc_url),
                    )
                })
                .collect(),
        };
        (urls, disagreements)
    }
}

/// Readiness of routes that were written: HTTPRoutes report acceptance through their status; the
/// other kinds are ready once they exist, as KServe treats them; route kind None is ready (there
/// is nothing to wait for, as KServe says for cluster-local ISVCs).
pub fn written_readiness(
    plan: &RoutePlan,
    desired: &[RouteObject],
    live: impl Fn(&str) -> Option<Value>,
) -> Readiness {
    match plan.route_kind {
        RouteKind::HttpRoute => httproute_readiness(&plan.name, desired, live),
        _ => Readiness::Ready,
    }
}

/// The JSON merge patch of the `status` subresource, or None when the live status already says
/// all of it.
///
/// Why a merge patch carrying `metadata.resourceVersion`: `status.conditions` is a list, and a
/// JSON merge patch replaces lists whole, so the patch sends the live list with only the
/// `IngressReady` entry replaced — every other writer's condition (KServe's `PredictorReady`,
/// `Ready`, ...) is kept. The resourceVersion makes the write conditional: had another writer
/// changed the status since our cached read, the API server answers 409 instead of letting the
/// stale list overwrite theirs, and the reconcile is retried on the fresh object. (A JSON patch
/// with a `test` op would guard the same way but must spell out list indexes; server-side apply
/// of `status` would make isvc-ingress a co-owner of KServe's fields and KServe, which updates
/// the whole status, would keep taking them back.)
pub fn status_patch(
    live_status: Option<&Value>,
    resource_version: Option<&str>,
    desired: &DesiredStatus,
    now: &str,
) -> Option<Value> {
    let empty = Value::Null;
    let live = live_status.unwrap_or(&empty);
    let mut status = Map::new();
    if let Some(urls) = &desired.urls {
        let text = |pointer: &str| live.pointer(pointer).and_then(Value::as_str);
        if let Some(url) = &urls.url
            && text("/url") != Some(url)
        {
            status.insert("url".into(), json!(url));
        }
        if let Some(address) = &urls.address
            && text("/address/url") != Some(address)
        {
            status.insert("address".into(), json!({ "url": address }));
        }
        let mut components = Map::new();
        for (key, (url, rest_url, grpc_url)) in &urls.components {
            let mut component = Map::new();
            for (field, value) in [
                ("url", Some(url)),
                ("restUrl", Some(rest_url)),
                ("grpcUrl", grpc_url.as_ref()),
            ] {
                let current = text(&format!("/components/{key}/{field}"));
                match value {
                    Some(value) if current != Some(value.as_str()) => {
                        component.insert(field.into(), json!(value));
                    }
                    None if current.is_some() => {
                        component.insert(field.into(), Value::Null);
                    }
                    _ => {}
                }
            }
            if !component.is_empty() {
                components.insert((*key).into(), Value::Object(component));
            }
        }
        if !components.is_empty() {
            status.insert("components".into(), Value::Object(components));
        }
    }
    if let Some(readiness) = &desired.readiness
        && let Some(conditions) = merged_conditions(live.get("conditions"), readiness, now)
    {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    if status.is_empty() {
        return None;
    }
    let mut patch = json!({ "status": status });
    if let Some(resource_version) = resource_version {
        patch["metadata"] = json!({ "resourceVersion": resource_version });
    }
    Some(patch)
}

/// The live conditions with `IngressReady` set to `readiness`, or None when it already says so.
/// `lastTransitionTime` moves only when the status (True/False) changes.
fn merged_conditions(live: Option<&Value>, readiness: &Readiness, now: &str) -> Option<Vec<Value>> {
    let mut conditions: Vec<Value> = live.and_then(Value::as_array).cloned().unwrap_or_default();
    let mut wanted = readiness.condition();
    let position = conditions
        .iter()
        .position(|condition| condition.get("type").and_then(Value::as_str) == Some(INGRESS_READY));
    let current = position.map(|index| &conditions[index]);
    let field = |condition: &Value, key: &str| {
        condition
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let wanted_field = |key: &str| {
        wanted
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if let Some(current) = current
        && ["status", "reason", "message"]
            .iter()
            .all(|key| field(current, key) == wanted_field(key))
    {
        return None;
    }
    let transition = match current {
        Some(current)
            if field(current, "status") == wanted_field("status")
                && current.get("lastTransitionTime").is_some() =>
        {
            current["lastTransitionTime"].clone()
        }
        _ => json!(now),
    };
    wanted.insert("lastTransitionTime".into(), transition);
    match position {
        Some(index) => conditions[index] = Value::Object(wanted),
        None => conditions.push(Value::Object(wanted)),
    }
    Some(conditions)
}

/// The `IngressReady` condition the live status carries, as (status, reason, message).
pub fn live_readiness(live_status: Option<&Value>) -> Option<Readiness> {
    let condition = live_status?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|condition| condition.get("type").and_then(Value::as_str) == Some(INGRESS_READY))?;
    let text = |key: &str| {
        condition
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some(match text("status").as_str() {
        "True" => Readiness::Ready,
        _ => Readiness::not_ready(text("reason"), text("message")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_ignores_added_fields_but_not_changed_or_missing_ones() {
        let desired = json!({"spec": {"rules": [{"host": "a", "port": 80}]}, "metadata": {"labels": {"x": "1"}}});
        let live = json!({"spec": {"rules": [{"host": "a", "port": 80, "weight": 1}], "extra": true},
                          "metadata": {"labels": {"x": "1", "y": "2"}, "uid": "u"}, "status": {}});
        assert!(is_subset(&desired, &live));
        let changed = json!({"spec": {"rules": [{"host": "b", "port": 80}]}, "metadata": {"labels": {"x": "1"}}});
        assert!(!is_subset(&changed, &live));
        let longer = json!({"spec": {"rules": [{"host": "a"}, {"host": "a"}]}});
        assert!(!is_subset(&longer, &live));
        assert!(!is_subset(
            &json!({"metadata": {"annotations": {"a": "b"}}}),
            &live
        ));
    }

    #[test]
    fn conditions_of_other_writers_are_kept_and_transition_time_moves_on_flips_only() {
        let live = json!({"conditions": [
            {"type": "PredictorReady", "status": "True", "lastTransitionTime": "t0"},
            {"type": "IngressReady", "status": "False", "reason": "Old", "message": "m", "lastTransitionTime": "t1"},
        ]});
        let desired = DesiredStatus {
            urls: None,
            readiness: Some(Readiness::not_ready("New", "m2")),
        };
        let patch = status_patch(Some(&live), Some("7"), &desired, "t2").unwrap();
        assert_eq!(
            patch,
            json!({"status": {"conditions": [
                {"type": "PredictorReady", "status": "True", "lastTransitionTime": "t0"},
                {"type": "IngressReady", "status": "False", "reason": "New", "message": "m2", "lastTransitionTime": "t1"},
            ]}, "metadata": {"resourceVersion": "7"}})
        );
        let ready = DesiredStatus {
            urls: None,
            readiness: Some(Readiness::Ready),
        };
        let patch = status_patch(Some(&live), None, &ready, "t2").unwrap();
        assert_eq!(
            patch["status"]["conditions"][1],
            json!({"type": "IngressReady", "status": "True", "lastTransitionTime": "t2"})
        );
    }

    #[test]
    fn an_unchanged_status_is_not_patched() {
        let live = json!({
            "url": "http://m.example.com", "address": {"url": "http://m.ns.svc.cluster.local"},
            "components": {"predictor": {"url": "http://p", "restUrl": "http://p", "latestReadyRevision": "r"}},
            "conditions": [{"type": "IngressReady", "status": "True", "lastTransitionTime": "t"}],
        });
        let desired = DesiredStatus {
            urls: Some(StatusUrls {
                url: Some("http://m.example.com".into()),
                address: Some("http://m.ns.svc.cluster.local".into()),
                components: BTreeMap::from([(
                    "predictor",
                    ("http://p".into(), "http://p".into(), None),
                )]),
            }),
            readiness: Some(Readiness::Ready),
        };
        assert_eq!(status_patch(Some(&live), Some("1"), &desired, "now"), None);
    }

    #[test]
    fn a_stale_grpc_url_is_removed() {
        let live = json!({"components": {"predictor": {"url": "u", "restUrl": "r", "grpcUrl": "g"}},
                          "conditions": [{"type": "IngressReady", "status": "True"}]});
        let desired = DesiredStatus {
            urls: Some(StatusUrls {
                url: None,
                address: None,
                components: BTreeMap::from([("predictor", ("u".into(), "r".into(), None))]),
            }),
            readiness: Some(Readiness::Ready),
        };
        assert_eq!(
            status_patch(Some(&live), None, &desired, "now").unwrap(),
            json!({"status": {"components": {"predictor": {"grpcUrl": null}}}})
        );
    }

    #[test]
    fn route_subjects_follow_kserve_names() {
        assert_eq!(route_subject("m", "m-predictor"), "Predictor");
        assert_eq!(route_subject("m", "m-transformer"), "Transformer");
        assert_eq!(route_subject("m", "m"), "InferenceService");
        assert_eq!(route_subject("m", "m-path"), "InferenceService");
    }
}
