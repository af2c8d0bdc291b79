//! Keeps the webhook's KServe config equal to the cluster's `inferenceservice-config`, through a
//! kube-runtime watcher (list + watch, with backoff), so a config change applies to the next
//! request without a restart and the request path never calls the API server.

use crate::admission::AdmissionState;
use crate::config::{CONFIG_MAP_NAME, ConfigError, KserveConfig};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Every API call the ConfigMap watch makes, as (API group, resource, verbs): [`run`]'s
/// kube-runtime watcher lists the ConfigMap (field selector on its name) and then watches it;
/// it never GETs or writes. Every replica runs it. See [`crate::permissions`].
pub const API_PERMISSIONS: &[(&str, &str, &[&str])] = &[("", "configmaps", &["list", "watch"])];

/// What one observed version of the ConfigMap did to the config in force.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The ConfigMap is valid and now in force.
    Replaced,
    /// The ConfigMap is invalid; the previous config stays in force.
    Kept(String),
}

/// Puts a ConfigMap's routing keys in force, unless they are invalid. A ConfigMap that reached
/// the cluster without our validating webhook (created before it, or with the webhook down) can
/// be invalid; serving with the last good config is safer than refusing every ISVC.
pub fn apply(config_map: &ConfigMap, state: &AdmissionState) -> Applied {
    let data = config_map.data.clone().unwrap_or_default();
    match KserveConfig::from_config_map_data(&data) {
        Ok(config) => {
            state.replace_config(config);
            Applied::Replaced
        }
        Err(ConfigError::Invalid { violations, .. }) => {
            Applied::Kept(crate::violation::join(&violations))
        }
        Err(error @ ConfigError::Unreadable(_)) => Applied::Kept(error.to_string()),
    }
}

/// Watches the ConfigMap until `shutdown`; calls `on_synced` once the first list is in (the
/// webhook is ready only then) and `on_replaced` after each new config is put in force (the
/// reconciler re-plans every ISVC). Watch errors are retried with backoff, never fatal.
pub async fn run(
    client: Client,
    state: Arc<AdmissionState>,
    on_synced: impl Fn() + Send,
    on_replaced: impl Fn() + Send,
    shutdown: CancellationToken,
) {
    let namespace = state.config_namespace().to_string();
    let config_maps: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let selector = format!("metadata.name={CONFIG_MAP_NAME}");
    let mut events = watcher(config_maps, watcher::Config::default().fields(&selector))
        .backoff(crate::watch::WatchBackoff::new())
        .boxed();
    let mut seen_in_initial_list = false;
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.next() => event,
        };
        match event {
            None => return,
            Some(Err(error)) => {
                tracing::warn!(%error, "watching the {CONFIG_MAP_NAME} ConfigMap failed; retrying")
            }
            Some(Ok(watcher::Event::Init)) => seen_in_initial_list = false,
            Some(Ok(watcher::Event::InitApply(config_map) | watcher::Event::Apply(config_map))) => {
                seen_in_initial_list = true;
                match apply(&config_map, &state) {
                    Applied::Replaced => {
                        tracing::info!(namespace = %namespace, "the {CONFIG_MAP_NAME} ConfigMap is in force");
                        for conflict in state.policy().route_owner.conflicts_with(&state.config()) {
                            tracing::warn!("{conflict}");
                        }
                        on_replaced();
                    }
                    Applied::Kept(problems) => tracing::error!(
                        namespace = %namespace,
                        %problems,
                        "the {CONFIG_MAP_NAME} ConfigMap is invalid; the previous config stays in force"
                    ),
                }
            }
            Some(Ok(watcher::Event::InitDone)) => {
                if !seen_in_initial_list {
                    tracing::warn!(
                        namespace = %namespace,
                        "no {CONFIG_MAP_NAME} ConfigMap in the cluster; using the file or built-in config"
                    );
                }
                on_synced();
            }
            Some(Ok(watcher::Event::Delete(_))) => tracing::warn!(
                namespace = %namespace,
                "the {CONFIG_MAP_NAME} ConfigMap was deleted; the last config stays in force"
            ),
        }
    }
}
