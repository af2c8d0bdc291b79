//! `isvc-ingress serve`: the webhook, fed by the file or built-in config, and — when a cluster
//! is reachable — by a watch of KServe's ConfigMap.

use crate::admission::{AdmissionState, Webhook};
use crate::config::KserveConfig;
use crate::metrics::Metrics;
use crate::reconcile::{HostIndex, ReconcileMetrics, ReplanTrigger};
use crate::server::{self, CancellationToken, Readiness, ServeArgs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long to wait for an API server before running as a webhook alone.
const CLUSTER_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot read the config {path}: {source}")]
    ReadConfig {
        path: String,
        source: std::io::Error,
    },
    #[error("the config {path} is invalid: {source}")]
    Config {
        path: String,
        source: crate::config::ConfigError,
    },
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Server(#[from] server::ServerError),
    #[error("the route reconciler stopped")]
    Reconciler,
}

/// The config of `--config`, or the one KServe ships.
fn load_config(args: &ServeArgs) -> Result<KserveConfig, ServeError> {
    let Some(path) = &args.config else {
        tracing::info!("using the built-in KServe default config");
        return Ok(KserveConfig::shipped());
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ServeError::ReadConfig {
        path: shown.clone(),
        source,
    })?;
    let config = KserveConfig::from_text(&text).map_err(|source| ServeError::Config {
        path: shown.clone(),
        source,
    })?;
    for warning in &config.warnings {
        tracing::warn!(config = %shown, "{warning}");
    }
    tracing::info!(config = %shown, "using the config file");
    Ok(config)
}

/// A client for a reachable API server, or None (and why, in the log).
async fn connect_to_cluster() -> Option<kube::Client> {
    let client =
        match tokio::time::timeout(CLUSTER_PROBE_TIMEOUT, kube::Client::try_default()).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => {
                tracing::info!(%error, "no Kubernetes configuration found");
                return None;
            }
            Err(_) => {
                tracing::info!("loading the Kubernetes configuration timed out");
                return None;
            }
        };
    match tokio::time::timeout(CLUSTER_PROBE_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(version)) => {
            tracing::info!(version = %version.git_version, "connected to the Kubernetes API server");
            Some(client)
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "the Kubernetes API server did not answer");
            None
        }
        Err(_) => {
            tracing::warn!("the Kubernetes API server did not answer in time");
            None
        }
    }
}

/// Readiness needs both caches: the ConfigMap watch and the reconciler's (ISVCs and routes).
#[derive(Clone)]
struct CachesSynced {
    readiness: Readiness,
    config: Arc<AtomicBool>,
    routes: Arc<AtomicBool>,
}

impl CachesSynced {
    fn new(readiness: Readiness) -> Self {
        Self {
            readiness,
            config: Arc::default(),
            routes: Arc::default(),
        }
    }

    fn mark(&self, which: &AtomicBool) {
        which.store(true, Ordering::SeqCst);
        if self.config.load(Ordering::SeqCst) && self.routes.load(Ordering::SeqCst) {
            self.readiness.set_caches_synced(true);
        }
    }
}

/// Runs until SIGTERM/SIGINT and a graceful drain.
pub async fn run(args: &ServeArgs) -> Result<(), ServeError> {
    let config = load_config(args)?;
    let policy = args.policy.policy();
    for conflict in policy.route_owner.conflicts_with(&config) {
        tracing::warn!("{conflict}");
    }
    let shutdown = CancellationToken::new();
    server::shutdown::cancel_on_signals(shutdown.clone()).map_err(ServeError::Signals)?;
    let readiness = Readiness::new();
    let metrics = Metrics::new();
    // A self-signed in-memory CA changes on every start, so no cluster could call this webhook:
    // --self-signed is a local trial and never touches the cluster of the user's kubeconfig.
    let cluster = if args.standalone || args.self_signed {
        None
    } else {
        connect_to_cluster().await
    };
    let namespace = args.config_namespace.clone();
    let Some(client) = cluster else {
        tracing::info!(
            "no cluster: running as a webhook alone (no ConfigMap watch, no reconciler)"
        );
        readiness.set_caches_synced(true);
        let state = Arc::new(AdmissionState::new(config, policy, namespace));
        let handler = Arc::new(Webhook::new(state));
        server::run_server(args, handler, metrics, readiness, shutdown).await?;
        return Ok(());
    };
    let hosts = HostIndex::new();
    let state =
        Arc::new(AdmissionState::new(config, policy, namespace).with_host_index(hosts.clone()));
    let replan = ReplanTrigger::new();
    let reconcile_metrics = Arc::new(metrics.with_registry(ReconcileMetrics::register));
    let synced = CachesSynced::new(readiness.clone());
    tokio::spawn({
        let (client, state, shutdown, synced, replan) = (
            client.clone(),
            state.clone(),
            shutdown.clone(),
            synced.clone(),
            replan.clone(),
        );
        async move {
            let on_synced = move || synced.mark(&synced.config);
            crate::config_watch::run(
                client,
                state,
                on_synced,
                move || replan.replan_all(),
                shutdown,
            )
            .await;
        }
    });
    // A reconciler that stops (its lease task died) must take the pod down, so that Kubernetes
    // restarts it: a replica that silently stopped reconciling would look healthy.
    let reconciler_failed = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let (state, shutdown, failed) =
            (state.clone(), shutdown.clone(), reconciler_failed.clone());
        let reconciler_args = args.reconciler.clone();
        async move {
            let on_synced = move || synced.mark(&synced.routes);
            let result = crate::reconcile::run(
                client,
                state,
                hosts,
                &reconciler_args,
                reconcile_metrics,
                replan,
                on_synced,
                shutdown.clone(),
            )
            .await;
            if let Err(error) = result {
                tracing::error!(%error, "the reconciler stopped; shutting down");
                failed.store(true, Ordering::SeqCst);
                shutdown.cancel();
            }
        }
    });
    let handler = Arc::new(Webhook::new(state));
    server::run_server(args, handler, metrics, readiness, shutdown).await?;
    if reconciler_failed.load(Ordering::SeqCst) {
        return Err(ServeError::Reconciler);
    }
    Ok(())
}
