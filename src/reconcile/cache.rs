//! The live routes isvc-ingress manages, indexed by the ISVC that owns them.
//!
//! Fed by one watcher per served kind (label selector `app.kubernetes.io/managed-by=isvc-ingress`,
//! so only our objects are held). A reconcile reads its ISVC's routes in O(routes of that ISVC):
//! with 10,000 ISVCs a config change re-plans all of them, and scanning every route per ISVC
//! would make that quadratic.

use super::cached::CachedRoute;
use super::decide::LiveRoute;
use super::kinds::ManagedKind;
use crate::plan::objects::RouteObject;
use kube::api::DynamicObject;
use kube::runtime::watcher;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// (namespace, ISVC name) — the owner label's value within a namespace.
type Owner = (String, String);
/// (kind, namespace, route name) of a live route.
type RouteKey = (ManagedKind, Box<str>, Box<str>);

/// Memory is per route and per ISVC at 10,000 ISVCs, so the indexes hold little: each ISVC's
/// routes in a short sorted `Vec` (a one-entry `BTreeMap` allocates a node of eleven slots),
/// and per route only the ISVC name it is filed under (a route's owner is in its own namespace).
#[derive(Debug, Default)]
struct Routes {
    /// Each ISVC's routes, sorted by (kind, name).
    by_owner: HashMap<Owner, Vec<Arc<CachedRoute>>>,
    /// The ISVC each route is filed under, to move or remove it.
    owner_of: HashMap<RouteKey, Box<str>>,
    /// Objects of a relist in progress, per kind, with the owner label each is filed under.
    relisting: HashMap<ManagedKind, Vec<(String, Option<String>, CachedRoute)>>,
    /// Kinds whose initial list is complete.
    synced: HashSet<ManagedKind>,
}

impl Routes {
    /// Files a route under the ISVC its owner label names (namespace, name and label as
    /// [`compact`] read them).
    fn insert(&mut self, namespace: String, isvc: Option<String>, route: CachedRoute) {
        let kind = route.kind();
        self.remove(kind, &namespace, route.name());
        let Some(isvc) = isvc else {
            return;
        };
        self.owner_of.insert(
            (kind, namespace.as_str().into(), route.name().into()),
            isvc.as_str().into(),
        );
        let routes = self.by_owner.entry((namespace, isvc)).or_default();
        let position = routes
            .binary_search_by(|held| (held.kind(), held.name()).cmp(&(kind, route.name())))
            .unwrap_or_else(|position| position);
        routes.insert(position, Arc::new(route));
    }

    fn remove(&mut self, kind: ManagedKind, namespace: &str, name: &str) {
        let key: RouteKey = (kind, namespace.into(), name.into());
        let Some(isvc) = self.owner_of.remove(&key) else {
            return;
        };
        let owner = (namespace.to_string(), isvc.into_string());
        if let Some(routes) = self.by_owner.get_mut(&owner) {
            routes.retain(|held| !(held.kind() == kind && held.name() == name));
            if routes.is_empty() {
                self.by_owner.remove(&owner);
            }
        }
    }

    fn replace_kind(
        &mut self,
        kind: ManagedKind,
        routes: Vec<(String, Option<String>, CachedRoute)>,
    ) {
        let stale: Vec<_> = self
            .owner_of
            .keys()
            .filter(|(candidate, _, _)| *candidate == kind)
            .cloned()
            .collect();
        for (_, namespace, name) in stale {
            self.remove(kind, &namespace, &name);
        }
        for (namespace, isvc, route) in routes {
            self.insert(namespace, isvc, route);
        }
    }
}

/// A live route in its cached form, with the namespace and the owner label's value (the ISVC it
/// is filed under; None when unlabelled).
fn compact(kind: ManagedKind, object: &DynamicObject) -> (String, Option<String>, CachedRoute) {
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let isvc = object
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(super::OWNER_LABEL))
        .cloned();
    (namespace, isvc, CachedRoute::new(kind, object))
}

/// The route cache. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RouteCache {
    routes: Arc<RwLock<Routes>>,
}

impl RouteCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache holding exactly these objects, every kind synced (tests and benchmarks).
    pub fn with_objects(objects: impl IntoIterator<Item = DynamicObject>) -> Self {
        let cache = Self::new();
        for object in objects {
            let kind = object
                .types
                .as_ref()
                .and_then(|types| ManagedKind::of(&types.api_version, &types.kind));
            if let Some(kind) = kind {
                cache.insert(kind, &object);
            }
        }
        for kind in ManagedKind::ALL {
            cache.write().synced.insert(kind);
        }
        cache
    }

    /// Applies one watcher event of `kind` (relists replace the kind's objects atomically at
    /// `InitDone`, so a reconcile never sees a half-listed kind as "routes deleted").
    pub fn apply_event(&self, kind: ManagedKind, event: &watcher::Event<DynamicObject>) {
        match event {
            watcher::Event::Init => {
                self.write().relisting.insert(kind, Vec::new());
            }
            watcher::Event::InitApply(object) => {
                let route = compact(kind, object);
                self.write().relisting.entry(kind).or_default().push(route);
            }
            watcher::Event::InitDone => {
                let mut routes = self.write();
                let listed = routes.relisting.remove(&kind).unwrap_or_default();
                routes.replace_kind(kind, listed);
                routes.synced.insert(kind);
            }
            watcher::Event::Apply(object) => self.insert(kind, object),
            watcher::Event::Delete(object) => {
                let mut routes = self.write();
                let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
                let name = object.metadata.name.as_deref().unwrap_or_default();
                routes.remove(kind, namespace, name);
            }
        }
    }

    /// Records an object the API server returned from an apply, so a reconcile that runs before
    /// the watch event arrives sees it.
    pub fn insert(&self, kind: ManagedKind, object: &DynamicObject) {
        let (namespace, isvc, route) = compact(kind, object);
        self.write().insert(namespace, isvc, route);
    }

    /// Forgets a deleted route.
    pub fn remove(&self, kind: ManagedKind, namespace: &str, name: &str) {
        self.write().remove(kind, namespace, name);
    }

    /// The routes labelled as owned by the ISVC `namespace/name`, in kind order.
    pub fn owned_by(&self, namespace: &str, isvc: &str) -> Vec<LiveRoute> {
        let routes = self.read();
        routes
            .by_owner
            .get(&(namespace.to_string(), isvc.to_string()))
            .map(|owned| {
                owned
                    .iter()
                    .map(|object| LiveRoute {
                        kind: object.kind(),
                        object: object.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the initial list of `kind` is in.
    pub fn is_synced(&self, kind: ManagedKind) -> bool {
        self.read().synced.contains(&kind)
    }

    /// Number of routes held.
    pub fn len(&self) -> usize {
        self.read().owner_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Routes> {
        self.routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A generated route as the `DynamicObject` kube sends (used to seed caches in tests and
/// benchmarks with exactly what a first reconcile would have applied).
pub fn as_dynamic(route: &RouteObject) -> DynamicObject {
    serde_json::from_value(route.to_value()).expect("generated routes are Kubernetes objects")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(kind: &str, api_version: &str, name: &str, owner: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": { "name": name, "namespace": "ns",
                          "labels": { super::super::OWNER_LABEL: owner } },
        }))
        .unwrap()
    }

    fn names(cache: &RouteCache, owner: &str) -> Vec<String> {
        cache
            .owned_by("ns", owner)
            .iter()
            .map(|route| route.name().to_string())
            .collect()
    }

    #[test]
    fn routes_are_filed_under_their_owner_and_move_when_relabelled() {
        let cache = RouteCache::new();
        let kind = ManagedKind::HttpRoute;
        let api = "gateway.networking.k8s.io/v1";
        cache.apply_event(
            kind,
            &watcher::Event::Apply(route("HTTPRoute", api, "a", "m")),
        );
        cache.apply_event(
            kind,
            &watcher::Event::Apply(route("HTTPRoute", api, "b", "m")),
        );
        assert_eq!(names(&cache, "m"), ["a", "b"]);
        cache.apply_event(
            kind,
            &watcher::Event::Apply(route("HTTPRoute", api, "b", "other")),
        );
        assert_eq!(names(&cache, "m"), ["a"]);
        assert_eq!(names(&cache, "other"), ["b"]);
        cache.apply_event(
            kind,
            &watcher::Event::Delete(route("HTTPRoute", api, "a", "m")),
        );
        assert!(names(&cache, "m").is_empty());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn listed_objects_without_api_version_and_kind_are_held_with_them() {
        // What the API server lists for Ingresses and Services: items without type fields.
        let listed = |name: &str| -> DynamicObject {
            serde_json::from_value(json!({
                "metadata": { "name": name, "namespace": "ns",
                              "labels": { super::super::OWNER_LABEL: "m" } },
            }))
            .unwrap()
        };
        let cache = RouteCache::new();
        for (kind, api_version, kind_name) in [
            (ManagedKind::Ingress, "networking.k8s.io/v1", "Ingress"),
            (ManagedKind::Service, "v1", "Service"),
        ] {
            cache.apply_event(kind, &watcher::Event::Init);
            cache.apply_event(kind, &watcher::Event::InitApply(listed(kind_name)));
            cache.apply_event(kind, &watcher::Event::InitDone);
            cache.apply_event(kind, &watcher::Event::Apply(listed("watched")));
            let routes = cache.owned_by("ns", "m");
            let of_kind: Vec<_> = routes.iter().filter(|route| route.kind == kind).collect();
            assert_eq!(of_kind.len(), 2, "the listed and the watched {kind_name}");
            for route in of_kind {
                let value = route.object.to_value().unwrap();
                assert_eq!(value["apiVersion"], api_version, "{value}");
                assert_eq!(value["kind"], kind_name, "{value}");
            }
        }
    }

    #[test]
    fn a_relist_replaces_a_kind_only_when_complete() {
        let cache = RouteCache::new();
        let ingress = ManagedKind::Ingress;
        let api = "networking.k8s.io/v1";
        assert!(!cache.is_synced(ingress));
        cache.apply_event(
            ingress,
            &watcher::Event::Apply(route("Ingress", api, "old", "m")),
        );
        cache.insert(ManagedKind::Service, &route("Service", "v1", "svc", "m"));
        cache.apply_event(ingress, &watcher::Event::Init);
        cache.apply_event(
            ingress,
            &watcher::Event::InitApply(route("Ingress", api, "new", "m")),
        );
        // Mid-relist, the old view stays: a half-listed kind must not look deleted.
        assert_eq!(names(&cache, "m"), ["old", "svc"]);
        cache.apply_event(ingress, &watcher::Event::InitDone);
        assert_eq!(names(&cache, "m"), ["new", "svc"]);
        assert!(cache.is_synced(ingress));
        assert!(!cache.is_synced(ManagedKind::Service));
    }
}
