//! `isvc-ingress serve`: the webhook, fed by the file or built-in config, and — when a
//! Kubernetes configuration is found — by a watch of KServe's ConfigMap and the reconciler.
//!
//! Only the absence of any Kubernetes configuration (no in-cluster service account, no
//! kubeconfig) makes the webhook run alone. With one, an API server that does not answer is
//! waited for with backoff while the pod stays unready: serving without the host index would
//! let one ISVC take another's host, so a replica never fails open into that.

pub mod args;

pub use args::{KnativeArgs, PolicyArgs, ServeArgs};

use crate::admission::Webhook;
use crate::api_client::{self, ApiClientArgs};
use crate::cluster_view::{AdmissionState, HostIndex};
use crate::config::KserveConfig;
use crate::config_watch::Source;
use crate::metrics::Metrics;
use crate::reconcile::{ReconcileMetrics, ReplanTrigger};
use crate::server::{self, CancellationToken, Readiness};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long one attempt to load the configuration or reach the API server may take.
const CLUSTER_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Backoff between attempts to reach the API server: 1 s doubling to 60 s.
const CLUSTER_RETRY_FIRST: Duration = Duration::from_secs(1);
const CLUSTER_RETRY_MAX: Duration = Duration::from_secs(60);

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

/// A client from the in-cluster or kubeconfig configuration, rate-limited by `args` (each
/// request's wait observed in `metrics`), or None when there is none (and why, in the log).
/// Nothing is sent to the API server yet.
async fn cluster_client(
    args: &ApiClientArgs,
    metrics: api_client::RateLimitMetrics,
) -> Option<kube::Client> {
    match tokio::time::timeout(CLUSTER_PROBE_TIMEOUT, api_client::client(args, metrics)).await {
        Ok(Ok(client)) => Some(client),
        Ok(Err(error)) => {
            tracing::info!(%error, "no Kubernetes configuration found");
            None
        }
        Err(_) => {
            tracing::info!("loading the Kubernetes configuration timed out");
            None
        }
    }
}

/// Waits until the API server answers, retrying with backoff; false if shutdown came first.
async fn wait_for_api_server(client: &kube::Client, shutdown: &CancellationToken) -> bool {
    let mut delay = CLUSTER_RETRY_FIRST;
    loop {
        let error = match tokio::time::timeout(CLUSTER_PROBE_TIMEOUT, client.apiserver_version())
            .await
        {
            Ok(Ok(version)) => {
                tracing::info!(version = %version.git_version, "connected to the Kubernetes API server");
                return true;
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {}s", CLUSTER_PROBE_TIMEOUT.as_secs()),
        };
        tracing::warn!(
            %error,
            retry_in_seconds = delay.as_secs(),
            "the Kubernetes API server did not answer; not ready until it does"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return false,
        }
        delay = (delay * 2).min(CLUSTER_RETRY_MAX);
    }
}

/// How long `serve`, once its webhook server has drained, still waits for the reconciler to stop
/// and release the Lease. It stops on the same signal as the drain, so this is rarely waited
/// for; the manifests' 5 s preStop, `--shutdown-grace` (15 s) and this stay within the pod's
/// 30 s `terminationGracePeriodSeconds`.
const RECONCILER_STOP: Duration = Duration::from_secs(5);

/// How often a replica with a cluster checks that the API server still answers.
const API_SERVER_CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// Failed checks in a row after which the replica turns unready (so one slow answer does not
/// make it flap): with the interval above, about 10 s of silence.
const API_SERVER_FAILURES_BEFORE_UNREADY: u32 = 2;

/// Keeps `/readyz` honest after start: the watches behind the caches resume by themselves
/// when the API server comes back (kube-runtime's watcher retries with [`crate::watch`]'s
/// backoff and resumes from the last resourceVersion), but while it is gone the caches age
/// silently. A replica whose API server has not let it list ISVCs for
/// [`API_SERVER_FAILURES_BEFORE_UNREADY`] checks in a row is unready until the next success.
async fn check_api_server(client: kube::Client, readiness: Readiness, shutdown: CancellationToken) {
    let mut failures = 0u32;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(API_SERVER_CHECK_INTERVAL) => {}
        }
        let answered = tokio::time::timeout(CLUSTER_PROBE_TIMEOUT, lists_isvcs(&client)).await;
        if matches!(answered, Ok(Ok(_))) {
            if failures >= API_SERVER_FAILURES_BEFORE_UNREADY {
                tracing::info!("the Kubernetes API server answers again; ready");
            }
            failures = 0;
            readiness.set_api_server_reachable(true);
            continue;
        }
        failures += 1;
        if failures == API_SERVER_FAILURES_BEFORE_UNREADY {
            tracing::warn!(
                checks = failures,
                "the Kubernetes API server does not answer; not ready until it does"
            );
            readiness.set_api_server_reachable(false);
        }
    }
}

/// A list of at most one ISVC: the cheapest request that needs both a working API server and
/// this replica's authorization (a restarted kube-apiserver answers `/version` seconds before
/// its RBAC authorizer lets anyone list; found against a real one).
async fn lists_isvcs(client: &kube::Client) -> Result<String, kube::Error> {
    let request = http::Request::get("/apis/serving.kserve.io/v1beta1/inferenceservices?limit=1")
        .body(Vec::new())
        .expect("a constant request is valid");
    client.request_text(request).await
}

/// Readiness needs every cache: the two ConfigMap watches (KServe's config, Knative's
/// network) and the reconciler's (ISVCs and routes).
#[derive(Clone)]
struct CachesSynced {
    readiness: Readiness,
    config: Arc<AtomicBool>,
    knative_network: Arc<AtomicBool>,
    routes: Arc<AtomicBool>,
}

impl CachesSynced {
    fn new(readiness: Readiness) -> Self {
        Self {
            readiness,
            config: Arc::default(),
            knative_network: Arc::default(),
            routes: Arc::default(),
        }
    }

    fn mark(&self, which: &AtomicBool) {
        which.store(true, Ordering::SeqCst);
        let all = [&self.config, &self.knative_network, &self.routes];
        if all.iter().all(|synced| synced.load(Ordering::SeqCst)) {
            self.readiness.set_caches_synced(true);
        }
    }
}

/// Runs until SIGTERM/SIGINT and a graceful drain. The webhook server runs on the current
/// runtime; the API client, the ConfigMap watches and the reconciler run on
/// `reconciler_runtime`, a runtime of their own (`cli`: one worker thread), so that their
/// work never holds the threads that answer admission requests.
pub async fn run(
    args: &ServeArgs,
    reconciler_runtime: &tokio::runtime::Handle,
) -> Result<(), ServeError> {
    let config = load_config(args)?;
    let config = args
        .knative
        .apply(config)
        .map_err(|source| ServeError::Config {
            path: "--knative-domain-template".to_string(),
            source,
        })?;
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
    // The client is made on the reconciler's runtime: its request queue and its connections
    // are tasks of the runtime that creates them.
    let cluster = if args.standalone || args.server.self_signed {
        None
    } else {
        let api_client = args.api_client.clone();
        let rate_limit_metrics = metrics.with_registry(api_client::RateLimitMetrics::register);
        match reconciler_runtime
            .spawn(async move { cluster_client(&api_client, rate_limit_metrics).await })
            .await
        {
            Ok(client) => client,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => return Err(ServeError::Reconciler),
        }
    };
    let namespace = args.config_namespace.clone();
    let Some(client) = cluster else {
        tracing::info!(
            "no cluster: running as a webhook alone (no ConfigMap watch, no reconciler)"
        );
        readiness.set_caches_synced(true);
        let state = Arc::new(AdmissionState::new(config, policy, namespace));
        metrics.with_registry(|registry| state.register_metrics(registry));
        let handler = Arc::new(Webhook::new(state));
        server::run_server(&args.server, handler, metrics, readiness, shutdown).await?;
        return Ok(());
    };
    let hosts = HostIndex::new();
    let state =
        Arc::new(AdmissionState::new(config, policy, namespace).with_host_index(hosts.clone()));
    metrics.with_registry(|registry| state.register_metrics(registry));
    let replan = ReplanTrigger::new();
    let reconcile_metrics = Arc::new(metrics.with_registry(ReconcileMetrics::register));
    let synced = CachesSynced::new(readiness.clone());
    // A reconciler that stops (its lease task died) must take the pod down, so that Kubernetes
    // restarts it: a replica that silently stopped reconciling would look healthy.
    let reconciler_failed = Arc::new(AtomicBool::new(false));
    let reconciler = reconciler_runtime.spawn({
        let (state, shutdown, failed, readiness) = (
            state.clone(),
            shutdown.clone(),
            reconciler_failed.clone(),
            readiness.clone(),
        );
        let reconciler_args = args.reconciler.clone();
        let knative_namespace = args.knative_namespace.clone();
        async move {
            // Unready (caches not synced) until the API server answers and both caches fill.
            if !wait_for_api_server(&client, &shutdown).await {
                return;
            }
            tokio::spawn(check_api_server(
                client.clone(),
                readiness.clone(),
                shutdown.clone(),
            ));
            let sources = [
                (Source::Kserve, synced.config.clone()),
                (
                    Source::KnativeNetwork(knative_namespace),
                    synced.knative_network.clone(),
                ),
            ];
            for (source, flag) in sources {
                let (client, state, shutdown, synced, replan) = (
                    client.clone(),
                    state.clone(),
                    shutdown.clone(),
                    synced.clone(),
                    replan.clone(),
                );
                tokio::spawn(async move {
                    let on_synced = move || synced.mark(&flag);
                    let on_replaced = move || replan.replan_all();
                    crate::config_watch::run(
                        client,
                        state,
                        source,
                        on_synced,
                        on_replaced,
                        shutdown,
                    )
                    .await;
                });
            }
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
    server::run_server(&args.server, handler, metrics, readiness, shutdown).await?;
    // The reconciler stops on the same signal: let it finish its reconciles and release the
    // Lease, so that the next replica leads at once rather than when the lease expires
    // (`--lease-duration`); returning from here would drop it half-way.
    if tokio::time::timeout(RECONCILER_STOP, reconciler)
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = RECONCILER_STOP.as_secs(),
            "the reconciler did not stop in time; the Lease expires on its own"
        );
    }
    if reconciler_failed.load(Ordering::SeqCst) {
        return Err(ServeError::Reconciler);
    }
    Ok(())
}
