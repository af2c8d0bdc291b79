//! Keeps the webhook's KServe config equal to the cluster's `inferenceservice-config`, and its
//! Knative domain template equal to Knative's `config-network`, each through a kube-runtime
//! watcher (list + watch, with backoff), so a config change applies to the next
//! request without a restart and the request path never calls the API server.

use crate::cluster_view::AdmissionState;
use crate::config::{
    CONFIG_MAP_NAME, ConfigError, KNATIVE_NETWORK_CONFIG_MAP_NAME, KnativeNetwork, KserveConfig,
};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Every API call the ConfigMap watches make, as (API group, resource, verbs): the kube-runtime
/// watchers of [`run`] list their ConfigMap (field selector on its
/// name) and then watch it;
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

/// Puts a `config-network` ConfigMap's `domain-template` in force, unless it is invalid (the
/// previous template then stays, as for [`apply`]).
pub fn apply_knative_network(config_map: &ConfigMap, state: &AdmissionState) -> Applied {
    let data = config_map.data.clone().unwrap_or_default();
    match KnativeNetwork::from_config_map_data(&data) {
        Ok(network) => {
            state.replace_knative_network(network);
            Applied::Replaced
        }
        Err(violation) => Applied::Kept(violation.to_string()),
    }
}

/// The ConfigMaps the webhook follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// KServe's `inferenceservice-config`, in the state's config namespace.
    Kserve,
    /// Knative Serving's `config-network` in this namespace: the domain-template of every
    /// Knative-mode host. A cluster without Knative has none, and the
    /// `--knative-domain-template` value (Knative's default unless set) stays in force.
    KnativeNetwork(String),
}

/// Watches the ConfigMap of `source` until `shutdown`; calls `on_synced` once the first list
/// is in (the webhook is ready only then) and `on_replaced` after each new version is put in
/// force (the reconciler re-plans every ISVC). Watch errors are retried with backoff, never
/// fatal.
pub async fn run(
    client: Client,
    state: Arc<AdmissionState>,
    source: Source,
    on_synced: impl Fn() + Send,
    on_replaced: impl Fn() + Send,
    shutdown: CancellationToken,
) {
    type Apply = Box<dyn Fn(&ConfigMap, &AdmissionState) -> Applied + Send + Sync>;
    let (name, namespace, absent, apply): (_, String, _, Apply) = match source {
        Source::Kserve => (
            CONFIG_MAP_NAME,
            state.config_namespace().to_string(),
            "using the file or built-in config",
            Box::new(|config_map: &ConfigMap, state: &AdmissionState| {
                let applied = apply(config_map, state);
                if applied == Applied::Replaced {
                    for conflict in state.policy().route_owner.conflicts_with(&state.config()) {
                        tracing::warn!("{conflict}");
                    }
                }
                applied
            }),
        ),
        Source::KnativeNetwork(namespace) => (
            KNATIVE_NETWORK_CONFIG_MAP_NAME,
            namespace,
            "using --knative-domain-template (Knative's default unless set)",
            Box::new(apply_knative_network),
        ),
    };
    let watched = Watched {
        name,
        namespace: &namespace,
        absent,
    };
    watch(
        client,
        &state,
        watched,
        apply,
        on_synced,
        on_replaced,
        shutdown,
    )
    .await;
}

/// One watched ConfigMap, for the watch and its log lines.
struct Watched<'a> {
    name: &'static str,
    namespace: &'a str,
    /// What stays in force when the cluster has no such ConfigMap.
    absent: &'static str,
}

async fn watch(
    client: Client,
    state: &AdmissionState,
    watched: Watched<'_>,
    apply: impl Fn(&ConfigMap, &AdmissionState) -> Applied,
    on_synced: impl Fn() + Send,
    on_replaced: impl Fn() + Send,
    shutdown: CancellationToken,
) {
    let Watched {
        name,
        namespace,
        absent,
    } = watched;
    let config_maps: Api<ConfigMap> = Api::namespaced(client, namespace);
    let selector = format!("metadata.name={name}");
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
                tracing::warn!(%error, "watching the {name} ConfigMap failed; retrying")
            }
            Some(Ok(watcher::Event::Init)) => seen_in_initial_list = false,
            Some(Ok(watcher::Event::InitApply(config_map) | watcher::Event::Apply(config_map))) => {
                seen_in_initial_list = true;
                match apply(&config_map, state) {
                    Applied::Replaced => {
                        tracing::info!(namespace = %namespace, "the {name} ConfigMap is in force");
                        on_replaced();
                    }
                    Applied::Kept(problems) => tracing::error!(
                        namespace = %namespace,
                        %problems,
                        "the {name} ConfigMap is invalid; the previous config stays in force"
                    ),
                }
            }
            Some(Ok(watcher::Event::InitDone)) => {
                if !seen_in_initial_list {
                    tracing::warn!(
                        namespace = %namespace,
                        "no {name} ConfigMap in the cluster; {absent}"
                    );
                }
                on_synced();
            }
            Some(Ok(watcher::Event::Delete(_))) => tracing::warn!(
                namespace = %namespace,
                "the {name} ConfigMap was deleted; the last config stays in force"
            ),
        }
    }
}
