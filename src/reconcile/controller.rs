//! The reconcile function and its error policy: carries out what [`super::decide`] decides,
//! through the API, one ISVC at a time.
//!
//! Order of writes for one ISVC: apply the desired routes (component routes before the
//! top-level one that sends them traffic), then delete the stale ones (make before break: a
//! kind switch never leaves the host unrouted), then patch the status. Before every write the
//! reconcile checks that this replica still holds the lease, so losing it stops writes at once.

use super::cache::RouteCache;
use super::cached::CachedInferenceService;
use super::decide::{self, DesiredStatus, LiveRoute, Readiness, StatusUrls};
use super::kinds::{ManagedKind, ServedKinds};
use super::leader::Leadership;
use super::metrics::{Outcome, ReconcileMetrics, Verb};
use super::{Error, FIELD_MANAGER, isvc_api_resource};
use crate::cluster_view::{AdmissionState, HostIndex};
use crate::isvc::InferenceService;
use crate::plan::{self, RoutePlan};
use crate::violation;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per-ISVC exponential backoff. kube-runtime's error policy is a plain function with no memory,
/// so the failure counts live here: `base · 2^failures`, capped, reset by a success.
#[derive(Debug)]
pub struct RetryBackoff {
    failures: Mutex<HashMap<(String, String), u32>>,
    /// First delay after an API error.
    pub base: Duration,
    /// First delay after a 409 Conflict: another writer got in between, retrying at once on the
    /// fresh object almost always succeeds.
    pub conflict_base: Duration,
    pub cap: Duration,
}

impl Default for RetryBackoff {
    fn default() -> Self {
        Self {
            failures: Mutex::default(),
            base: Duration::from_secs(1),
            conflict_base: Duration::from_millis(200),
            cap: Duration::from_secs(300),
        }
    }
}

impl RetryBackoff {
    /// Counts a failure of `namespace/name` and returns how long to wait before retrying.
    pub fn failed(&self, namespace: &str, name: &str, conflict: bool) -> Duration {
        let mut failures = self.lock();
        let count = failures
            .entry((namespace.to_string(), name.to_string()))
            .or_insert(0);
        let base = if conflict {
            self.conflict_base
        } else {
            self.base
        };
        let delay = base
            .checked_mul(2u32.saturating_pow((*count).min(20)))
            .unwrap_or(self.cap)
            .min(self.cap);
        *count = count.saturating_add(1);
        delay
    }

    /// Resets the count after a successful reconcile (or when the ISVC is deleted).
    pub fn succeeded(&self, namespace: &str, name: &str) {
        self.lock()
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// Failures in a row so far.
    pub fn failures(&self, namespace: &str, name: &str) -> u32 {
        self.lock()
            .get(&(namespace.to_string(), name.to_string()))
            .copied()
            .unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), u32>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The ISVCs whose status this replica patched, with the resourceVersion of the cached object
/// the patch was computed from. A reconcile that runs before the watch event of that patch
/// reaches the cache (the routes' own watch events trigger one at once) would compute the same
/// patch from the same stale object, and its patch, preconditioned on that resourceVersion,
/// would be refused with 409 and retried: at 10,000 ISVCs an `ingressDomain` change sent 7,376
/// such refused patches. Such a reconcile leaves the status alone; the patch's own watch event
/// brings the next reconcile. An entry is dropped when the cache moves past it, and expires
/// after [`RecentStatusWrites::WINDOW`] in case no event ever comes.
#[derive(Debug, Default)]
pub struct RecentStatusWrites {
    written: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl RecentStatusWrites {
    /// How long a patch is assumed to be on its way to the cache (the API server's watch
    /// latency is milliseconds; this bounds the wait if the event is lost).
    pub const WINDOW: Duration = Duration::from_secs(10);
    /// Expired entries are swept when the map reaches this size.
    const SWEEP_AT: usize = 1024;

    /// Records a successful status patch computed from the object at `resource_version`.
    pub fn record(&self, namespace: &str, name: &str, resource_version: &str) {
        if resource_version.is_empty() {
            return;
        }
        let mut written = self.lock();
        if written.len() >= Self::SWEEP_AT {
            written.retain(|_, (_, at)| at.elapsed() < Self::WINDOW);
        }
        written.insert(
            (namespace.to_string(), name.to_string()),
            (resource_version.to_string(), Instant::now()),
        );
    }

    /// Whether the cached object at `resource_version` predates this replica's last status
    /// patch of it (and the patch is recent). Forgets the patch once the cache has moved on.
    pub fn cache_is_behind(&self, namespace: &str, name: &str, resource_version: &str) -> bool {
        let mut written = self.lock();
        let key = (namespace.to_string(), name.to_string());
        match written.get(&key) {
            None => false,
            Some((patched_from, at))
                if patched_from == resource_version && at.elapsed() < Self::WINDOW =>
            {
                true
            }
            Some(_) => {
                written.remove(&key);
                false
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (String, Instant)>> {
        self.written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The longest a reconcile waits for the route caches' initial lists (a start only).
pub const ROUTE_CACHE_WAIT: Duration = Duration::from_secs(30);

/// Everything a reconcile needs; shared by all reconciles.
pub struct Context {
    pub client: Client,
    /// The KServe config in force (swapped by the config watcher) and the policy.
    pub state: Arc<AdmissionState>,
    pub served: ServedKinds,
    pub routes: RouteCache,
    pub hosts: HostIndex,
    pub leadership: Leadership,
    pub metrics: Arc<ReconcileMetrics>,
    pub backoff: RetryBackoff,
    /// Status patches whose watch event has not reached the cache yet.
    pub status_writes: RecentStatusWrites,
    /// Until when reconciles wait for the route caches' initial lists (set by the first).
    route_cache_deadline: std::sync::OnceLock<Instant>,
    events: Recorder,
    /// RFC 3339 "now", for `lastTransitionTime` (replaceable so tests pin request bodies).
    clock: fn() -> String,
}

impl Context {
    pub fn new(
        client: Client,
        state: Arc<AdmissionState>,
        served: ServedKinds,
        routes: RouteCache,
        hosts: HostIndex,
        leadership: Leadership,
        metrics: Arc<ReconcileMetrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            events: Recorder::new(client.clone(), reporter),
            client,
            state,
            served,
            routes,
            hosts,
            leadership,
            metrics,
            backoff: RetryBackoff::default(),
            status_writes: RecentStatusWrites::default(),
            route_cache_deadline: std::sync::OnceLock::new(),
            clock: now_rfc3339,
        }
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: fn() -> String) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the backoff (tests, tuning).
    pub fn with_backoff(mut self, backoff: RetryBackoff) -> Self {
        self.backoff = backoff;
        self
    }
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|now| now.to_string())
        .unwrap_or_default()
}

/// Reconciles one ISVC: the function kube-runtime's Controller calls.
pub async fn reconcile(
    object: Arc<CachedInferenceService>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    let name = object.meta().name.clone().unwrap_or_default();
    let result = Reconcile {
        object: &object,
        live_status: None,
        context: &context,
        namespace: &namespace,
        name: &name,
        wrote: false,
    }
    .run()
    .await;
    match &result {
        Ok(outcome) => {
            context.backoff.succeeded(&namespace, &name);
            context.metrics.reconciled(*outcome, started.elapsed());
        }
        Err(_) => context
            .metrics
            .reconciled(Outcome::Error, started.elapsed()),
    }
    result.map(|_| Action::await_change())
}

/// The error policy: log, count, and retry this ISVC after its backoff. Never fatal.
pub fn error_policy(
    object: Arc<CachedInferenceService>,
    error: &Error,
    context: Arc<Context>,
) -> Action {
    let namespace = object.meta().namespace.as_deref().unwrap_or_default();
    let name = object.meta().name.as_deref().unwrap_or_default();
    let delay = context.backoff.failed(namespace, name, error.is_conflict());
    context.metrics.failed(error.metric_label());
    tracing::warn!(
        %namespace, %name, %error, retry_in = ?delay,
        "reconciling the InferenceService failed"
    );
    Action::requeue(delay)
}

/// One reconcile in progress.
struct Reconcile<'a> {
    object: &'a CachedInferenceService,
    /// The cached `status`, read once per reconcile.
    live_status: Option<Value>,
    context: &'a Context,
    namespace: &'a str,
    name: &'a str,
    /// Whether anything was written, for the outcome metric.
    wrote: bool,
}

/// Why a write did not happen: this replica is not (or no longer) the leader.
struct NotLeader;

impl Reconcile<'_> {
    async fn run(mut self) -> Result<Outcome, Error> {
        if self.object.meta().deletion_timestamp.is_some() {
            // The garbage collector deletes the routes through their ownerReferences.
            return Ok(Outcome::Unchanged);
        }
        let uid = self
            .object
            .meta()
            .uid
            .clone()
            .ok_or(Error::MissingMetadata("metadata.uid"))?;
        let mut value = self.object.to_value().map_err(Error::Serialize)?;
        self.live_status = value.get_mut("status").map(Value::take);
        let config = self.context.state.config();
        let planned = InferenceService::from_json(&value, self.namespace)
            .map_err(|violations| violation::join(&violations))
            .and_then(|isvc| {
                plan::plan(&isvc, &config, self.context.state.policy())
                    .map(|plan| (isvc, plan))
                    .map_err(|rejection| violation::join(&rejection.violations))
            });
        let created = self
            .object
            .meta()
            .creation_timestamp
            .as_ref()
            .map(|time| time.0);
        let hosts = planned
            .as_ref()
            .map(|(_, plan)| plan.hosts.clone())
            .unwrap_or_default();
        self.context
            .hosts
            .set(self.namespace, self.name, created, hosts);
        if !self.context.leadership.is_leader() {
            return Ok(Outcome::NotLeader);
        }
        self.wait_for_route_caches().await;
        let desired = match planned {
            Err(message) => DesiredStatus {
                urls: None,
                readiness: Some(Readiness::not_ready(
                    decide::reason::INVALID_ROUTING,
                    message,
                )),
            },
            Ok((isvc, plan)) => match self.routes(&isvc, &plan, &config, &uid).await? {
                Ok(desired) => desired,
                Err(NotLeader) => return Ok(Outcome::NotLeader),
            },
        };
        if let Err(NotLeader) = self.status(&desired).await? {
            return Ok(Outcome::NotLeader);
        }
        Ok(if self.wrote {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        })
    }

    /// Waits (at most [`ROUTE_CACHE_WAIT`] after the first reconcile of the process) until every
    /// served kind's route cache has its initial list. The Controller starts reconciling as
    /// soon as the ISVC list is in; a
    /// reconcile that ran before the route lists would see no live route and apply every one
    /// again (seen on a real API server: a restart over settled ISVCs applied 17 routes when the
    /// lease came at once). Only a start waits; after the wait the reconcile goes on as before.
    async fn wait_for_route_caches(&self) {
        // One deadline for the whole process: if a kind never lists (its watch is refused), the
        // reconciles wait once, together, not 30 s each.
        let deadline = *self
            .context
            .route_cache_deadline
            .get_or_init(|| Instant::now() + ROUTE_CACHE_WAIT);
        while !self
            .context
            .served
            .iter()
            .all(|kind| self.context.routes.is_synced(kind))
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Applies and deletes routes; returns the status they lead to.
    async fn routes(
        &mut self,
        isvc: &InferenceService,
        plan: &RoutePlan,
        config: &crate::config::KserveConfig,
        uid: &str,
    ) -> Result<Result<DesiredStatus, NotLeader>, Error> {
        // Only the kinds this deployment owns (see `RouteOwner`): writing KServe's would fight it.
        let owner = self.context.state.policy().route_owner;
        let ingress_ready_is_ours = owner.writes_ingress_ready(plan.route_kind);
        let mut desired = plan::routes(plan, isvc, config);
        desired.retain(|route| owner.writes(route.kind()));
        let live = self.context.routes.owned_by(self.namespace, self.name);
        let blocked = if plan.stopped {
            None
        } else {
            decide::missing_kind(&desired, &self.context.served).or_else(|| {
                decide::host_conflict(&self.context.hosts.conflicts(
                    self.namespace,
                    self.name,
                    &plan.hosts,
                ))
            })
        };
        if let Some(readiness) = blocked {
            return Ok(Ok(DesiredStatus {
                urls: None,
                readiness: Some(readiness).filter(|_| ingress_ready_is_ours),
            }));
        }
        let changes = decide::route_changes(&desired, &live, uid);
        let mut applied: HashMap<String, Value> = HashMap::new();
        for route in &changes.apply {
            if !self.context.leadership.is_leader() {
                return Ok(Err(NotLeader));
            }
            let result = self.apply(route.kind, &route.name, &route.object).await;
            let object = self.on_write_result(result).await?;
            if let Ok(value) = serde_json::to_value(&object) {
                applied.insert(route.name.clone(), value);
            }
            self.context.routes.insert(route.kind, &object);
        }
        for stale in &changes.delete {
            if !self.context.leadership.is_leader() {
                return Ok(Err(NotLeader));
            }
            let result = self.delete(stale).await;
            self.on_write_result(result).await?;
            self.context
                .routes
                .remove(stale.kind, self.namespace, &stale.name);
        }
        if plan.stopped {
            return Ok(Ok(DesiredStatus {
                urls: None,
                readiness: Some(Readiness::not_ready(
                    decide::reason::STOPPED,
                    format!(
                        "{} is true: every route of this InferenceService was removed",
                        plan::STOP_ANNOTATION
                    ),
                ))
                .filter(|_| ingress_ready_is_ours),
            }));
        }
        let live_value = |name: &str| {
            applied.get(name).cloned().or_else(|| {
                live.iter()
                    .find(|route: &&LiveRoute| {
                        route.kind == ManagedKind::HttpRoute && route.name() == name
                    })
                    .and_then(|route| route.object.to_value().ok())
            })
        };
        let (urls, kept) = StatusUrls::of(plan, self.live_status.as_ref(), self.object.own_urls());
        if let Some(message) = plan::status::kept_message(&kept) {
            tracing::warn!(namespace = %self.namespace, name = %self.name, %message,
                "status URLs kept as the platform wrote them");
            self.publish(
                EventType::Warning,
                decide::reason::PLATFORM_URL_KEPT,
                &message,
            )
            .await;
        }
        Ok(Ok(DesiredStatus {
            urls: Some(urls),
            readiness: Some(decide::written_readiness(plan, &desired, live_value))
                .filter(|_| ingress_ready_is_ours),
        }))
    }

    async fn apply(
        &mut self,
        kind: ManagedKind,
        name: &str,
        object: &Value,
    ) -> Result<DynamicObject, Error> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.context.client.clone(),
            self.namespace,
            &kind.api_resource(),
        );
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.wrote = true;
        let result = api.patch(name, &params, &Patch::Apply(object)).await;
        self.context.metrics.wrote(kind.kind(), Verb::Apply);
        result.map_err(|source| Error::Apply {
            kind,
            namespace: self.namespace.to_string(),
            name: name.to_string(),
            source,
        })
    }

    /// Deletes a stale route, preconditioned on the uid we saw (a same-named object created
    /// since is not ours to delete). Already gone counts as deleted.
    async fn delete(&mut self, stale: &decide::StaleRoute) -> Result<(), Error> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.context.client.clone(),
            self.namespace,
            &stale.kind.api_resource(),
        );
        let params = DeleteParams {
            preconditions: stale.uid.clone().map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        self.wrote = true;
        let result = api.delete(&stale.name, &params).await;
        self.context.metrics.wrote(stale.kind.kind(), Verb::Delete);
        match result {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(Error::Delete {
                kind: stale.kind,
                namespace: self.namespace.to_string(),
                name: stale.name.clone(),
                source,
            }),
        }
    }

    /// Passes a write's result through, telling the user (an Event) about a failure they must
    /// fix — a refusal by the API server (400–422 other than 409: a CRD validation rule, an
    /// admission webhook, RBAC) — on the first failure of a streak. Transient errors (5xx,
    /// network) and conflicts are only retried and counted.
    async fn on_write_result<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(error) = &result
            && error.is_user_visible()
            && self.context.backoff.failures(self.namespace, self.name) == 0
        {
            self.publish(EventType::Warning, "RouteWriteFailed", &error.to_string())
                .await;
        }
        result
    }

    /// Patches the status when it differs, and records an Event when `IngressReady` turns
    /// False for a new reason (not on every reconcile: Events are for changes).
    async fn status(&mut self, desired: &DesiredStatus) -> Result<Result<(), NotLeader>, Error> {
        let resource_version = self
            .object
            .meta()
            .resource_version
            .clone()
            .unwrap_or_default();
        if self
            .context
            .status_writes
            .cache_is_behind(self.namespace, self.name, &resource_version)
        {
            return Ok(Ok(()));
        }
        let live_status = self.live_status.as_ref();
        let Some(patch) = decide::status_patch(
            live_status,
            self.object.meta().resource_version.as_deref(),
            desired,
            &(self.context.clock)(),
        ) else {
            return Ok(Ok(()));
        };
        if !self.context.leadership.is_leader() {
            return Ok(Err(NotLeader));
        }
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.context.client.clone(),
            self.namespace,
            &isvc_api_resource(),
        );
        self.wrote = true;
        let result = api
            .patch_status(self.name, &status_patch_params(), &Patch::Merge(&patch))
            .await;
        self.context
            .metrics
            .wrote(crate::isvc::KIND, Verb::PatchStatus);
        result.map_err(|source| Error::Status {
            namespace: self.namespace.to_string(),
            name: self.name.to_string(),
            source,
        })?;
        self.context
            .status_writes
            .record(self.namespace, self.name, &resource_version);
        let before = decide::live_readiness(live_status);
        if let Some(readiness @ Readiness::NotReady { reason, message }) = &desired.readiness
            && before.as_ref() != Some(readiness)
        {
            let severity = if reason == decide::reason::STOPPED {
                EventType::Normal
            } else {
                EventType::Warning
            };
            self.publish(severity, reason, message).await;
        }
        Ok(Ok(()))
    }

    /// Publishes an Event on the ISVC; a failure is logged, never fatal (the condition says the
    /// same thing).
    async fn publish(&self, severity: EventType, reason: &str, message: &str) {
        if !self.context.leadership.is_leader() {
            return;
        }
        let event = Event {
            type_: severity,
            reason: event_reason(reason),
            note: Some(truncate(message, 1024)),
            action: "Reconcile".into(),
            secondary: None,
        };
        let reference = self.object.object_ref(&());
        let result = self.context.events.publish(&event, &reference).await;
        self.context.metrics.wrote("Event", Verb::Event);
        if let Err(error) = result {
            tracing::warn!(namespace = %self.namespace, name = %self.name, %error,
                "publishing an Event failed");
        }
    }
}

/// A status merge patch under our field manager: `managedFields` then names isvc-ingress as the
/// writer of the URLs it wrote, which is how a later plan knows they are its own predictions
/// ([`crate::plan::status::OwnUrls`]). Without it the API server records the client's user
/// agent (`kube-rs`) as the manager.
fn status_patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

/// Event reasons are PascalCase identifiers; KServe's `Predictor Deployment NotReady` style
/// reasons lose their spaces.
fn event_reason(reason: &str) -> String {
    let reason: String = reason.chars().filter(|c| !c.is_whitespace()).collect();
    truncate(&reason, 128)
}

fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let backoff = RetryBackoff::default();
        let delays: Vec<_> = (0..12).map(|_| backoff.failed("ns", "m", false)).collect();
        assert_eq!(delays[0], Duration::from_secs(1));
        assert_eq!(delays[1], Duration::from_secs(2));
        assert_eq!(delays[8], Duration::from_secs(256));
        assert_eq!(delays[9], Duration::from_secs(300));
        assert_eq!(delays[11], Duration::from_secs(300));
        assert_eq!(backoff.failures("ns", "m"), 12);
        assert_eq!(backoff.failures("ns", "other"), 0);
        backoff.succeeded("ns", "m");
        assert_eq!(backoff.failed("ns", "m", true), Duration::from_millis(200));
        assert_eq!(backoff.failed("ns", "m", true), Duration::from_millis(400));
    }

    #[test]
    fn event_reasons_are_identifiers() {
        assert_eq!(
            event_reason("Predictor Deployment NotReady"),
            "PredictorDeploymentNotReady"
        );
        assert_eq!(truncate("ééé", 3), "é");
    }
}

#[cfg(test)]
mod recent_status_writes_tests {
    use super::RecentStatusWrites;

    #[test]
    fn a_reconcile_on_the_object_a_patch_came_from_leaves_the_status_alone_once() {
        let writes = RecentStatusWrites::default();
        assert!(!writes.cache_is_behind("ns", "m", "41"));
        writes.record("ns", "m", "41");
        assert!(writes.cache_is_behind("ns", "m", "41"));
        assert!(
            writes.cache_is_behind("ns", "m", "41"),
            "until the cache moves on"
        );
        assert!(!writes.cache_is_behind("ns", "other", "41"));
        // The patch's watch event arrived: the entry is forgotten.
        assert!(!writes.cache_is_behind("ns", "m", "42"));
        assert!(!writes.cache_is_behind("ns", "m", "41"));
        // An object without a resourceVersion (never from an API server) is never held back.
        writes.record("ns", "m", "");
        assert!(!writes.cache_is_behind("ns", "m", ""));
    }
}
