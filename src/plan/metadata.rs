//! Metadata shared by every generated route: name, namespace, the ISVC's labels and
//! annotations less KServe's disallow lists, owner labels, and a controller ownerReference.

use super::annotations::PREFIX;
use super::objects::{ObjectMeta, OwnerReference};
use crate::config::KserveConfig;
use crate::isvc::{self, InferenceService};
use std::collections::BTreeMap;

/// Marks objects isvc-ingress manages (the reconciler deletes only objects it owns).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "isvc-ingress";
/// Names the owning ISVC, so routes can be listed per ISVC with a label selector.
pub const OWNER_LABEL: &str = "isvc-ingress.io/inferenceservice";
/// kubectl's client-side apply copy of the whole object. Never copied onto our routes, whatever
/// the disallow list says: KServe keeps it off only when the `inferenceService` key exists
/// (reference §1.5), and on a route it would be the ISVC's copy, which a later `kubectl apply`
/// of the route would merge against. The reconciler's cache drops it too.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Labels and annotations computed once per ISVC and copied into each route.
#[derive(Clone)]
pub(super) struct RouteMetadata {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    owner_references: Vec<OwnerReference>,
    namespace: String,
}

impl RouteMetadata {
    pub(super) fn new(isvc: &InferenceService, config: &KserveConfig) -> Self {
        let filter = &config.metadata_filter;
        let mut labels: BTreeMap<String, String> = isvc
            .labels
            .iter()
            .filter(|(key, _)| !filter.labels.contains(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string());
        labels.insert(OWNER_LABEL.to_string(), isvc.name.clone());
        // Our own annotations are inputs and outputs of the plan; copying them would make the
        // routes change whenever the webhook rewrites its outputs.
        let annotations = isvc
            .annotations
            .iter()
            .filter(|(key, _)| {
                !filter.annotations.contains(key)
                    && !key.starts_with(PREFIX)
                    && key.as_str() != LAST_APPLIED_ANNOTATION
            })
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        Self {
            labels,
            annotations,
            owner_references: owner_references(isvc),
            namespace: isvc.namespace.clone(),
        }
    }

    /// The metadata KServe gives the `kind` routes it writes (reference §3.2, §4.2, §5.2):
    /// an Ingress gets every ISVC annotation verbatim and no labels; a VirtualService the
    /// annotations less the disallow list and every label; an HTTPRoute both less their
    /// disallow lists; the ExternalName Service neither. Never our owner labels.
    pub(super) fn as_kserve_writes(
        isvc: &InferenceService,
        config: &KserveConfig,
        kind: super::RouteKind,
    ) -> Self {
        use super::RouteKind;
        let filter = &config.metadata_filter;
        let filtered = |map: &BTreeMap<String, String>, disallowed: &[String]| {
            map.iter()
                .filter(|(key, _)| !disallowed.contains(key))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        };
        let (labels, annotations) = match kind {
            RouteKind::Ingress => (BTreeMap::new(), isvc.annotations.clone()),
            RouteKind::VirtualService => (
                isvc.labels.clone(),
                filtered(&isvc.annotations, &filter.annotations),
            ),
            _ => (
                filtered(&isvc.labels, &filter.labels),
                filtered(&isvc.annotations, &filter.annotations),
            ),
        };
        Self {
            labels,
            annotations,
            owner_references: owner_references(isvc),
            namespace: isvc.namespace.clone(),
        }
    }

    /// Only the metadata the API server's validation reads ([`super::validation`]): the
    /// Ingress class annotation, when the route would carry it (KServe copies every annotation
    /// to its Ingress; ours copies those outside the disallow list). No labels, no owner.
    pub(super) fn for_validation(
        isvc: &InferenceService,
        config: &KserveConfig,
        kserve_writes: bool,
    ) -> Self {
        let key = super::validation::INGRESS_CLASS_ANNOTATION;
        let copied = kserve_writes || !config.metadata_filter.annotations.iter().any(|k| k == key);
        let annotations = isvc
            .annotations
            .get(key)
            .filter(|_| copied)
            .map(|value| (key.to_string(), value.clone()))
            .into_iter()
            .collect();
        Self {
            labels: BTreeMap::new(),
            annotations,
            owner_references: Vec::new(),
            namespace: isvc.namespace.clone(),
        }
    }

    /// This metadata without labels and annotations (KServe's ExternalName Service).
    pub(super) fn bare(&self) -> Self {
        Self {
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            owner_references: self.owner_references.clone(),
            namespace: self.namespace.clone(),
        }
    }

    /// The `metadata` of a route named `name`.
    pub(super) fn for_route(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: name.to_string(),
            namespace: self.namespace.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            owner_references: self.owner_references.clone(),
        }
    }
}

/// A controller ownerReference to the ISVC, when it has a uid.
fn owner_references(isvc: &InferenceService) -> Vec<OwnerReference> {
    isvc.uid
        .iter()
        .map(|uid| OwnerReference {
            api_version: isvc::API_VERSION,
            kind: isvc::KIND,
            name: isvc.name.clone(),
            uid: uid.clone(),
            controller: true,
            block_owner_deletion: true,
        })
        .collect()
}
