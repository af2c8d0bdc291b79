//! Feeding the [`HostIndex`] from the ISVC cache: each cached ISVC is planned with the config
//! in force, and the external hosts of its plan are its claims (the webhook then refuses an
//! ISVC whose host another, older one holds; the reconciler blocks its routes).

use super::cached::CachedInferenceService;
use crate::cluster_view::{AdmissionState, HostIndex};
use crate::isvc::InferenceService;
use crate::plan;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;

/// Indexes one ISVC of the cache (a watch event), planning it with the config in force.
pub fn index_isvc(hosts: &HostIndex, object: &CachedInferenceService, state: &AdmissionState) {
    let (namespace, name) = identity(object);
    hosts.set(
        &namespace,
        &name,
        created(object),
        planned_hosts(object, state),
    );
}

/// Rebuilds the index from every ISVC of the cache (a relist or a config change).
pub fn rebuild_host_index<'a>(
    hosts: &HostIndex,
    objects: impl IntoIterator<Item = &'a CachedInferenceService>,
    state: &AdmissionState,
) {
    hosts.replace_all(objects.into_iter().map(|object| {
        let (namespace, name) = identity(object);
        (
            namespace,
            name,
            created(object),
            planned_hosts(object, state),
        )
    }));
}

fn identity(object: &CachedInferenceService) -> (String, String) {
    (
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default(),
    )
}

fn created(object: &CachedInferenceService) -> Option<Timestamp> {
    object.meta().creation_timestamp.as_ref().map(|time| time.0)
}

/// The external hosts a cached ISVC holds under the config in force: none when it is invalid
/// (an invalid ISVC gets no route, so it must not block another). Read with the typed reader,
/// which skips what planning does not need.
pub fn planned_hosts(object: &CachedInferenceService, state: &AdmissionState) -> Vec<String> {
    let namespace = object.meta().namespace.as_deref().unwrap_or("default");
    let Ok(document) = object.document() else {
        return Vec::new();
    };
    let Ok((isvc, _)) = InferenceService::from_json_text(&document, namespace) else {
        return Vec::new();
    };
    plan::plan(&isvc, &state.config(), state.policy())
        .map(|plan| plan.hosts)
        .unwrap_or_default()
}
