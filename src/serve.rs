//! `isvc-ingress serve`: the webhook, fed by the file or built-in config, and — when a cluster
//! is reachable — by a watch of KServe's ConfigMap.

use crate::admission::{AdmissionState, Webhook};
use crate::config::KserveConfig;
use crate::metrics::Metrics;
use crate::plan::Policy;
use crate::server::{self, CancellationToken, Readiness, ServeArgs};
use std::sync::Arc;
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

/// Runs until SIGTERM/SIGINT and a graceful drain.
pub async fn run(args: &ServeArgs) -> Result<(), ServeError> {
    let config = load_config(args)?;
    let policy = Policy {
        allowed_domains: args.allowed_domains.clone(),
        allowed_gateways: args.allowed_gateways.clone(),
    };
    let state = Arc::new(AdmissionState::new(
        config,
        policy,
        args.config_namespace.clone(),
    ));
    let shutdown = CancellationToken::new();
    server::shutdown::cancel_on_signals(shutdown.clone()).map_err(ServeError::Signals)?;
    let readiness = Readiness::new();
    let cluster = if args.standalone {
        None
    } else {
        connect_to_cluster().await
    };
    match cluster {
        None => {
            tracing::info!(
                "no cluster: running as a webhook alone (no ConfigMap watch, no reconciler)"
            );
            readiness.set_caches_synced(true);
        }
        Some(client) => {
            let (state, readiness, shutdown) = (state.clone(), readiness.clone(), shutdown.clone());
            tokio::spawn(async move {
                let synced = readiness.clone();
                crate::config_watch::run(
                    client,
                    state,
                    move || synced.set_caches_synced(true),
                    shutdown,
                )
                .await;
            });
        }
    }
    let handler = Arc::new(Webhook::new(state));
    server::run_server(args, handler, Metrics::new(), readiness, shutdown).await?;
    Ok(())
}
