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

/// Labels and annotations computed once per ISVC and copied into each route.
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
            .filter(|(key, _)| !filter.annotations.contains(key) && !key.starts_with(PREFIX))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let owner_references = isvc
            .uid
            .iter()
            .map(|uid| OwnerReference {
                api_version: isvc::API_VERSION,
                kind: isvc::KIND,
                name: isvc.name.clone(),
                uid: uid.clone(),
                controller: true,
                block_owner_deletion: true,
            })
            .collect();
        Self {
            labels,
            annotations,
            owner_references,
            namespace: isvc.namespace.clone(),
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
