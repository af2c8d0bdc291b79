//! Metadata shared by every generated route: name, namespace, the ISVC's labels and
//! annotations less KServe's disallow lists, owner labels, and a controller ownerReference.

use super::annotations::PREFIX;
use crate::config::KserveConfig;
use crate::isvc::{self, InferenceService};
use serde_json::{Map, Value, json};

/// Marks objects isvc-ingress manages (the reconciler deletes only objects it owns).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "isvc-ingress";
/// Names the owning ISVC, so routes can be listed per ISVC with a label selector.
pub const OWNER_LABEL: &str = "isvc-ingress.io/inferenceservice";

/// Labels and annotations computed once per ISVC and copied into each route.
pub(super) struct RouteMetadata {
    labels: Map<String, Value>,
    annotations: Map<String, Value>,
    owner_references: Option<Value>,
    namespace: String,
}

impl RouteMetadata {
    pub(super) fn new(isvc: &InferenceService, config: &KserveConfig) -> Self {
        let filter = &config.metadata_filter;
        let mut labels: Map<String, Value> = isvc
            .labels
            .iter()
            .filter(|(key, _)| !filter.labels.contains(key))
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect();
        labels.insert(MANAGED_BY_LABEL.to_string(), json!(MANAGED_BY_VALUE));
        labels.insert(OWNER_LABEL.to_string(), json!(isvc.name));
        // Our own annotations are inputs and outputs of the plan; copying them would make the
        // routes change whenever the webhook rewrites its outputs.
        let annotations = isvc
            .annotations
            .iter()
            .filter(|(key, _)| !filter.annotations.contains(key) && !key.starts_with(PREFIX))
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect();
        let owner_references = isvc.uid.as_ref().map(|uid| {
            json!([{
                "apiVersion": isvc::API_VERSION,
                "kind": isvc::KIND,
                "name": isvc.name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }])
        });
        Self {
            labels,
            annotations,
            owner_references,
            namespace: isvc.namespace.clone(),
        }
    }

    /// The `metadata` of a route named `name`.
    pub(super) fn for_route(&self, name: &str) -> Value {
        let mut metadata = json!({
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels,
            "annotations": self.annotations,
        });
        if let Some(owner_references) = &self.owner_references {
            metadata["ownerReferences"] = owner_references.clone();
        }
        metadata
    }
}
