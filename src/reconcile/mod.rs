//! The route reconciler: a kube-runtime Controller on InferenceServices that makes the cluster's
//! routes match each ISVC's [`plan::RoutePlan`](crate::plan::RoutePlan), deletes the ones the
//! plan no longer wants, and writes `IngressReady` and the URLs into the ISVC status.
//!
//! Layout: [`decide`] holds every decision as a pure function; [`controller`] carries them out
//! (the reconcile function and its error policy); [`cache`] and the host index
//! ([`crate::cluster_view::hosts`]) are the in-memory indexes fed by watchers; [`kinds`]
//! discovers what the cluster serves; [`leader`] gates writes on a Lease; [`metrics`] counts.
//! [`run`] wires them into one long-running task.

pub mod cache;
pub mod cached;
pub mod controller;
pub mod decide;
pub mod host_claims;
pub mod kinds;
pub mod leader;
pub mod metrics;

/// The host index the reconciler keeps, for admission to read ([`crate::cluster_view`]).
pub use crate::cluster_view::HostIndex;
pub use cache::RouteCache;
pub use cached::{CachedInferenceService, CachedRoute};
pub use controller::{Context, RetryBackoff, error_policy, reconcile};
pub use kinds::{ManagedKind, ServedKinds};
pub use leader::{LeaderConfig, Leadership, ReconcilerArgs};
pub use metrics::ReconcileMetrics;

use crate::cluster_view::AdmissionState;
use futures_util::{Stream, StreamExt, stream};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The field manager of every write (server-side apply, status patch) and the Event reporter.
pub use crate::plan::FIELD_MANAGER;
/// The planner's route labels: managed-by (the route watchers select on it) and the owning ISVC.
pub use crate::plan::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL};

/// Every API call the reconciler makes, as (API group, resource, verbs). The RBAC of the
/// manifests is derived from this list and [`crate::config_watch::API_PERMISSIONS`] through
/// [`crate::permissions`] (`tests/manifests.rs` keeps `manifests/base/rbac.yaml` equal to it,
/// `tests/reconcile_docs.rs` the one in `docs/operations.md`).
///
/// * ISVCs and routes are read only through watchers (`list`, then `watch`), never a GET.
/// * Routes are written with server-side apply, a PATCH; an apply that finds no object creates
///   it, and for that case the API server also authorizes the verb `create` on the object
///   (`createAuthorizerAttributes` in k8s.io/apiserver's `handlers/patch.go`). Without
///   `create`, every new route would be refused with 403 and only existing ones updated.
/// * Stale routes are deleted (`delete`, with a uid precondition).
/// * The status is a merge patch of `inferenceservices/status`, which never creates.
/// * Events are created, and patched when kube-runtime's recorder counts a repeated one.
/// * Leader election reads, creates and patches one Lease (kube-lease-manager).
pub const API_PERMISSIONS: &[(&str, &str, &[&str])] = &[
    ("serving.kserve.io", "inferenceservices", &["list", "watch"]),
    ("serving.kserve.io", "inferenceservices/status", &["patch"]),
    ("networking.k8s.io", "ingresses", ROUTE_VERBS),
    ("gateway.networking.k8s.io", "httproutes", ROUTE_VERBS),
    ("networking.istio.io", "virtualservices", ROUTE_VERBS),
    ("", "services", ROUTE_VERBS),
    ("serving.knative.dev", "domainmappings", ROUTE_VERBS),
    ("events.k8s.io", "events", &["create", "patch"]),
    ("coordination.k8s.io", "leases", &["get", "create", "patch"]),
];

/// The verbs on every kind the reconciler manages: watch (`list`, `watch`), server-side apply
/// (`patch`, and `create` for an apply that creates the object), stale-route deletion.
const ROUTE_VERBS: &[&str] = &["list", "watch", "create", "patch", "delete"];

/// `serving.kserve.io/v1beta1` InferenceService.
pub fn isvc_api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("serving.kserve.io", "v1beta1", crate::isvc::KIND),
        "inferenceservices",
    )
}

/// Everything that can fail in the reconciler. Each reconcile error is retried with backoff by
/// [`error_policy`]; only [`run`]'s start-up and a dead lease task end the reconciler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("applying {kind} {namespace}/{name}: {source}")]
    Apply {
        kind: ManagedKind,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting {kind} {namespace}/{name}: {source}")]
    Delete {
        kind: ManagedKind,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("patching the status of InferenceService {namespace}/{name}: {source}")]
    Status {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("discovering the route kinds the cluster serves: {0}")]
    Discovery(#[source] kube::Error),
    #[error("leader election: {0}")]
    Lease(#[source] kube_lease_manager::LeaseManagerError),
    #[error("the InferenceService has no {0}")]
    MissingMetadata(&'static str),
    #[error("serialising an object: {0}")]
    Serialize(#[source] serde_json::Error),
    #[error("invalid reconciler settings: {0}")]
    Config(String),
}

impl Error {
    /// A short, stable label for the `reconcile_failures` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Apply { source, .. }
            | Self::Delete { source, .. }
            | Self::Status { source, .. }
                if api_code(source) == Some(409) =>
            {
                "conflict"
            }
            Self::Apply { .. } => "apply",
            Self::Delete { .. } => "delete",
            Self::Status { .. } => "status",
            Self::Discovery(_) => "discovery",
            Self::Lease(_) => "lease",
            Self::MissingMetadata(_) => "missing_metadata",
            Self::Serialize(_) => "serialize",
            Self::Config(_) => "config",
        }
    }

    /// The API error beneath, if any.
    fn api_source(&self) -> Option<&kube::Error> {
        match self {
            Self::Apply { source, .. }
            | Self::Delete { source, .. }
            | Self::Status { source, .. }
            | Self::Discovery(source) => Some(source),
            _ => None,
        }
    }

    /// A 409: another writer changed the object (or a delete precondition failed). Retried
    /// quickly on the fresh object.
    pub fn is_conflict(&self) -> bool {
        self.api_source().and_then(api_code) == Some(409)
    }

    /// The API server refused the write for a reason the user must fix (4xx other than 409 and
    /// 429): worth an Event on the ISVC.
    pub fn is_user_visible(&self) -> bool {
        matches!(
            self.api_source().and_then(api_code),
            Some(code) if (400..500).contains(&code) && code != 409 && code != 429
        )
    }
}

fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Asks the reconciler to re-plan every ISVC: the config watcher calls
/// [`ReplanTrigger::replan_all`] after it puts a new `inferenceservice-config` in force. Cheap to
/// clone; triggers that arrive while a re-plan is queued coalesce into one.
#[derive(Debug, Clone)]
pub struct ReplanTrigger {
    sender: Arc<watch::Sender<u64>>,
}

impl Default for ReplanTrigger {
    fn default() -> Self {
        Self {
            sender: Arc::new(watch::channel(0).0),
        }
    }
}

impl ReplanTrigger {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn replan_all(&self) {
        self.sender.send_modify(|generation| *generation += 1);
    }

    /// One item per (coalesced) trigger.
    pub fn stream(&self) -> impl Stream<Item = ()> + Send + 'static {
        let receiver = self.sender.subscribe();
        stream::unfold(receiver, |mut receiver| async move {
            receiver.changed().await.ok()?;
            Some(((), receiver))
        })
    }
}

/// How often the reconciler checks whether the config in force was replaced, as a safety net
/// for a config watcher that does not call [`ReplanTrigger::replan_all`].
const CONFIG_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// One item each time `state.config()` is a different config than before.
fn config_replacements(state: Arc<AdmissionState>) -> impl Stream<Item = ()> + Send + 'static {
    let last = state.config();
    stream::unfold((state, last), |(state, mut last)| async move {
        loop {
            tokio::time::sleep(CONFIG_CHECK_INTERVAL).await;
            let current = state.config();
            if !Arc::ptr_eq(&current, &last) {
                last = current;
                return Some(((), (state, last)));
            }
        }
    })
}

/// One item each time this replica becomes the leader (it must then catch up on everything the
/// previous leader may have missed); keeps the leader gauge current.
fn leadership_gained(
    leadership: &Leadership,
    metrics: Arc<ReconcileMetrics>,
) -> impl Stream<Item = ()> + Send + 'static {
    let receiver = leadership.receiver();
    metrics.set_leader(*receiver.borrow());
    stream::unfold((receiver, metrics), |(mut receiver, metrics)| async move {
        loop {
            receiver.changed().await.ok()?;
            let leader = *receiver.borrow_and_update();
            metrics.set_leader(leader);
            if leader {
                tracing::info!("this replica now holds the lease and writes routes");
                return Some(((), (receiver, metrics)));
            }
            tracing::warn!("this replica lost the lease; it stops writing");
        }
    })
}

/// Keeps watch errors out of the Controller's trigger streams. Each watch logs its errors and
/// retries on its own backoff ([`crate::watch`]); an error reaching the Controller would
/// instead put *all* its triggers behind one shared backoff of up to 30 s, so that after an
/// API server restart one route kind's `403` (RBAC not loaded yet) delayed the reconcile of
/// every new ISVC by tens of seconds (found against a real kube-apiserver).
fn without_errors<T>(item: &Result<T, watcher::Error>) -> std::future::Ready<bool> {
    std::future::ready(item.is_ok())
}

/// Counts watchers whose initial list is in, and calls `on_synced` once all are.
struct SyncTracker {
    remaining: AtomicUsize,
    on_synced: Box<dyn Fn() + Send + Sync>,
}

impl SyncTracker {
    fn source(self: &Arc<Self>) -> impl FnMut() + Send + 'static {
        let tracker = self.clone();
        let counted = AtomicBool::new(false);
        move || {
            if !counted.swap(true, Ordering::SeqCst)
                && tracker.remaining.fetch_sub(1, Ordering::SeqCst) == 1
            {
                (tracker.on_synced)();
            }
        }
    }
}

/// Retries a start-up step with backoff until it succeeds or shutdown is requested: an API
/// server that is briefly unreachable at start must not crash the replica's webhook.
async fn retry_until<T, F, Fut>(what: &str, shutdown: &CancellationToken, mut step: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut delay = Duration::from_secs(1);
    loop {
        match step().await {
            Ok(value) => return Some(value),
            Err(Error::Config(message)) => {
                tracing::error!(%message, "{what} failed");
                return None;
            }
            Err(error) => tracing::warn!(%error, retry_in = ?delay, "{what} failed; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

/// Runs the reconciler until `shutdown`: discovers the served route kinds, joins the leader
/// election, watches ISVCs and the routes it manages, keeps `hosts` current for the webhook,
/// and reconciles. `on_synced` is called once every cache has its initial list (for
/// `/readyz`). `replan` re-plans every ISVC (call it on a config change). Returns an error only
/// for invalid settings or a dead lease task — the caller should then exit so Kubernetes
/// restarts the replica; API errors are retried, never returned.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    client: Client,
    state: Arc<AdmissionState>,
    hosts: HostIndex,
    args: &ReconcilerArgs,
    metrics: Arc<ReconcileMetrics>,
    replan: ReplanTrigger,
    on_synced: impl Fn() + Send + Sync + 'static,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let leader_config = args.leader_config()?;
    let Some(served) = retry_until("route kind discovery", &shutdown, || async {
        kinds::discover(&client).await.map_err(Error::Discovery)
    })
    .await
    else {
        return Ok(());
    };
    tracing::info!(
        served = ?served.iter().map(|kind| kind.kind()).collect::<Vec<_>>(),
        "route kinds the cluster serves"
    );
    let Some((leadership, lease_task)) =
        retry_until("joining the leader election", &shutdown, || {
            leader::elect(client.clone(), &leader_config)
        })
        .await
    else {
        return Ok(());
    };

    let tracker = Arc::new(SyncTracker {
        remaining: AtomicUsize::new(1 + served.iter().count()),
        on_synced: Box::new(on_synced),
    });
    let routes = RouteCache::new();
    let context = Arc::new(Context::new(
        client.clone(),
        state.clone(),
        served,
        routes.clone(),
        hosts.clone(),
        leadership.clone(),
        metrics.clone(),
    ));

    // ISVCs: a reflector store for the Controller, and the host index kept current on every
    // event so the webhook sees a new holder before the reconcile even runs.
    // The objects are cut to what routing reads as they are read off the wire
    // (`CachedInferenceService`), before the reflector stores them.
    let writer = Writer::<CachedInferenceService>::default();
    let reader = writer.as_reader();
    let isvc_events = {
        let (state, hosts, reader, context) = (
            state.clone(),
            hosts.clone(),
            reader.clone(),
            context.clone(),
        );
        let mut synced = tracker.source();
        watcher(
            Api::<CachedInferenceService>::all(client.clone()),
            watcher::Config::default(),
        )
        .backoff(crate::watch::WatchBackoff::new())
        .reflect(writer)
        .inspect(move |event| match event {
            Ok(watcher::Event::Apply(object)) => host_claims::index_isvc(&hosts, object, &state),
            Ok(watcher::Event::Delete(object)) => {
                let namespace = object.meta().namespace.as_deref().unwrap_or_default();
                let name = object.meta().name.as_deref().unwrap_or_default();
                hosts.remove(namespace, name);
                context.backoff.succeeded(namespace, name);
            }
            Ok(watcher::Event::InitDone) => {
                let objects = reader.state();
                host_claims::rebuild_host_index(
                    &hosts,
                    objects.iter().map(|object| object.as_ref()),
                    &state,
                );
                synced();
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Err(error) => tracing::warn!(%error, "watching InferenceServices failed; retrying"),
        })
        .applied_objects()
        .filter(without_errors)
    };

    let mut controller = Controller::for_stream(isvc_events, reader.clone());
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
    for kind in served.iter() {
        let cache = routes.clone();
        let mut synced = tracker.source();
        let events = watcher(
            Api::<DynamicObject>::all_with(client.clone(), &kind.api_resource()),
            watcher::Config::default().labels(&selector),
        )
        .backoff(crate::watch::WatchBackoff::new())
        .inspect(move |event| match event {
            Ok(event) => {
                cache.apply_event(kind, event);
                if matches!(event, watcher::Event::InitDone) {
                    synced();
                }
            }
            Err(error) => tracing::warn!(%error, %kind, "watching routes failed; retrying"),
        })
        .touched_objects()
        .filter(without_errors);
        controller = controller.owns_stream_with(events, kind.api_resource());
    }

    // Re-plan everything on a config change (trigger or detected) and on gaining the lease.
    let replans = stream::select(
        stream::select(replan.stream(), config_replacements(state.clone())),
        leadership_gained(&leadership, metrics.clone()),
    );
    let hosts_on_replan = {
        let (hosts, reader, state) = (hosts.clone(), reader.clone(), state.clone());
        move |()| {
            let objects = reader.state();
            host_claims::rebuild_host_index(
                &hosts,
                objects.iter().map(|object| object.as_ref()),
                &state,
            );
        }
    };
    let replans = replans.map(hosts_on_replan);
    drop(leadership);

    let finished = controller
        .with_config(ControllerConfig::default().concurrency(args.concurrent_reconciles))
        .reconcile_all_on(replans)
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        });
    tokio::pin!(lease_task);
    let outcome = tokio::select! {
        () = finished => Ok(()),
        ended = &mut lease_task => Err(match ended {
            Ok(Err(error)) => Error::Lease(error),
            Ok(Ok(())) | Err(_) => Error::Lease(kube_lease_manager::LeaseManagerError::InconsistentState(
                "the lease task stopped".into(),
            )),
        }),
    };
    if outcome.is_ok() {
        // Every Leadership receiver is gone with the controller: the lease task releases the
        // lease so another replica takes over without waiting for it to expire.
        let _ = tokio::time::timeout(Duration::from_secs(5), lease_task).await;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_cover_every_managed_kind() {
        for kind in ManagedKind::ALL {
            let (_, _, verbs) = API_PERMISSIONS
                .iter()
                .find(|(group, resource, _)| *group == kind.group() && *resource == kind.plural())
                .unwrap_or_else(|| panic!("{kind} has no permission"));
            for verb in ["list", "watch", "create", "patch", "delete"] {
                assert!(verbs.contains(&verb), "{kind} lacks {verb}");
            }
        }
    }

    #[test]
    fn error_labels_and_classes() {
        let api = |code: u16| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..Default::default()
            }))
        };
        let status = |code| Error::Status {
            namespace: "ns".into(),
            name: "m".into(),
            source: api(code),
        };
        assert!(status(409).is_conflict());
        assert_eq!(status(409).metric_label(), "conflict");
        assert_eq!(status(500).metric_label(), "status");
        assert!(!status(500).is_user_visible());
        assert!(status(422).is_user_visible());
        assert!(!status(409).is_user_visible());
    }

    #[tokio::test]
    async fn replan_triggers_coalesce() {
        let trigger = ReplanTrigger::new();
        let mut stream = Box::pin(trigger.stream());
        trigger.replan_all();
        trigger.replan_all();
        assert_eq!(stream.next().await, Some(()));
        let pending = tokio::time::timeout(Duration::from_millis(20), stream.next()).await;
        assert!(
            pending.is_err(),
            "two triggers before a read are one re-plan"
        );
    }
}
