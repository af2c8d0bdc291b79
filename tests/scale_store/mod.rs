//! A synthetic cluster for the scale benchmark (`benches/reconcile_scale.rs`) and its test
//! (`tests/reconcile_scale.rs`): N InferenceServices spread over a number of namespaces, held as
//! the reconciler holds them (a kube-runtime reflector store of `CachedInferenceService`s, the
//! [`RouteCache`] and the [`HostIndex`]), each with the routes and the status a settled reconcile
//! leaves. [`Store::replan`] is what a config change costs: the host index rebuilt from every ISVC
//! (what `reconcile::run` does on a re-plan trigger), then, for every ISVC, exactly the decisions
//! `reconcile::controller::reconcile` makes — parse, plan, index hosts, build the routes, diff
//! them against the cache, compute the status patch — without the API calls, which it counts.
//! `tests/reconcile_scale.rs` checks against the mock API server that the real reconcile makes
//! exactly the requests counted here.
//!
//! Self-contained (no `support`, no mock): the benchmark includes it with `#[path]`.
#![allow(dead_code)]

#[path = "../stored_routes/mod.rs"]
mod stored_routes;
pub use stored_routes::{accepted, stored};

use isvc_ingress::admission::AdmissionState;
use isvc_ingress::config::KserveConfig;
use isvc_ingress::isvc::InferenceService;
use isvc_ingress::plan::{self, Policy, RouteOwner, RoutePlan};
use isvc_ingress::reconcile::decide::{
    self, DesiredStatus, LiveRoute, Readiness, RouteChanges, StatusUrls,
};
use isvc_ingress::reconcile::{CachedInferenceService, host_claims};
use isvc_ingress::reconcile::{HostIndex, ManagedKind, RouteCache, ServedKinds};
use isvc_ingress::violation;
use kube::Resource;
use kube::api::DynamicObject;
use kube::runtime::reflector::store::{Store as Reflector, Writer};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The "now" of every status written (the mock API server's clock, so bodies compare).
pub const NOW: &str = "2025-01-01T00:00:00Z";

/// The gateway HTTPRoutes attach to before and after [`ConfigChange::GatewayMoved`].
const GATEWAY: &str = "kserve/kserve-ingress-gateway";
const MOVED_GATEWAY: &str = "kserve/kserve-gateway-v2";

/// The route shape of an ISVC of the synthetic mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Standard mode, `isvc-ingress.io/route: HTTPRoute` (10%).
    HttpRoute,
    /// Knative mode: a VirtualService and its ExternalName Service (40%).
    Knative,
    /// Standard mode, the default Ingress (50%).
    Ingress,
}

impl Shape {
    pub fn of(index: usize) -> Self {
        match index % 10 {
            0 => Self::HttpRoute,
            1..=4 => Self::Knative,
            _ => Self::Ingress,
        }
    }
}

/// Which components an ISVC of the mix has: a predictor (70%), plus a transformer (20%), plus a
/// transformer and an explainer (10%). Independent of the shape and the namespace.
pub fn components_of(index: usize) -> usize {
    match (index / 10) % 10 {
        0..=6 => 1,
        7 | 8 => 2,
        _ => 3,
    }
}

/// A config change the benchmark re-plans everything after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigChange {
    /// `deploy.maxSurge` set: a new ConfigMap (new fingerprint) that no route or status depends
    /// on. Must cost zero writes.
    Unrelated,
    /// `kserveIngressGateway` moved: every HTTPRoute's parentRef changes, nothing else (10% of
    /// the ISVCs).
    GatewayMoved,
    /// `ingressDomain` changed: every external host, so every route that names one and every
    /// status URL (the worst case).
    DomainChanged,
}

impl ConfigChange {
    pub const ALL: [Self; 3] = [Self::Unrelated, Self::GatewayMoved, Self::DomainChanged];

    pub fn name(self) -> &'static str {
        match self {
            Self::Unrelated => "unrelated_key_changed",
            Self::GatewayMoved => "gateway_moved",
            Self::DomainChanged => "ingress_domain_changed",
        }
    }

    pub fn config(self) -> KserveConfig {
        match self {
            Self::Unrelated => config(GATEWAY, "example.com", Some("25%")),
            Self::GatewayMoved => config(MOVED_GATEWAY, "example.com", None),
            Self::DomainChanged => config(GATEWAY, "models.example.com", None),
        }
    }
}

/// The config the store was settled under: isvc-ingress owns the routes, so KServe's own route
/// creation is off (docs/operations.md), Standard is the default mode.
pub fn base_config() -> KserveConfig {
    config(GATEWAY, "example.com", None)
}

fn config(gateway: &str, domain: &str, max_surge: Option<&str>) -> KserveConfig {
    let ingress = json!({
        "ingressGateway": "knative-serving/knative-ingress-gateway",
        "localGateway": "knative-serving/knative-local-gateway",
        "localGatewayService": "knative-local-gateway.istio-system.svc.cluster.local",
        "knativeLocalGatewayService": "knative-local-gateway.istio-system.svc.cluster.local",
        "ingressDomain": domain,
        "kserveIngressGateway": gateway,
        "ingressClassName": "istio",
        "disableIngressCreation": true,
        "disableIstioVirtualHost": true,
    });
    let mut deploy = json!({ "defaultDeploymentMode": "Standard" });
    if let Some(max_surge) = max_surge {
        deploy["maxSurge"] = json!(max_surge);
    }
    let config_map = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "inferenceservice-config", "namespace": "kserve" },
        "data": {
            "ingress": ingress.to_string(),
            "deploy": deploy.to_string(),
            "inferenceService": "{}",
        },
    });
    KserveConfig::from_text(&config_map.to_string()).expect("the benchmark config is valid")
}

pub fn policy() -> Policy {
    Policy {
        route_owner: RouteOwner::IsvcIngress,
        ..Policy::default()
    }
}

pub fn namespace_of(index: usize, isvcs: usize, namespaces: usize) -> String {
    format!("team-{:03}", index * namespaces / isvcs.max(1))
}

/// ISVC number `index` as the user wrote it (no status, no webhook annotations).
pub fn user_isvc(index: usize, isvcs: usize, namespaces: usize) -> Value {
    let namespace = namespace_of(index, isvcs, namespaces);
    let shape = Shape::of(index);
    let mode = if shape == Shape::Knative {
        "Knative"
    } else {
        "Standard"
    };
    let mut annotations = json!({ "serving.kserve.io/deploymentMode": mode });
    if shape == Shape::HttpRoute {
        annotations["isvc-ingress.io/route"] = json!("HTTPRoute");
        if index.is_multiple_of(20) {
            annotations["isvc-ingress.io/timeout"] = json!("45s");
        }
    }
    let mut spec = json!({ "predictor": {
        "minReplicas": 1,
        "model": {
            "modelFormat": { "name": "sklearn" },
            "protocolVersion": "v2",
            "storageUri": format!("s3://models/{namespace}/model-{index:05}/v3"),
            "resources": { "requests": { "cpu": "1", "memory": "2Gi" },
                           "limits": { "cpu": "2", "memory": "4Gi" } },
        },
    }});
    let components = components_of(index);
    if components >= 2 {
        spec["transformer"] = json!({ "containers": [{
            "name": "kserve-container",
            "image": format!("registry.example.com/{namespace}/transformer:1.4.2"),
            "args": ["--model_name", format!("model-{index:05}")],
        }]});
    }
    if components >= 3 {
        spec["explainer"] = json!({ "containers": [{
            "name": "kserve-container",
            "image": "registry.example.com/explainers/anchor:0.9",
        }]});
    }
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": format!("model-{index:05}"),
            "namespace": namespace,
            "uid": format!("5f0c2b1e-0000-4000-8000-{index:012}"),
            "resourceVersion": format!("{}", 100_000 + index),
            "generation": 1,
            "creationTimestamp": format!("2024-06-01T{:02}:{:02}:{:02}Z",
                (index / 3600) % 24, (index / 60) % 60, index % 60),
            "labels": { "app.kubernetes.io/part-of": namespace, "team": namespace },
            "annotations": annotations,
        },
        "spec": spec,
    })
}

/// The plan and desired routes of an ISVC object under `config` (the reconciler's policy, only
/// the kinds it writes).
pub fn plan_of(object: &Value, config: &KserveConfig) -> (RoutePlan, Vec<Value>) {
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let isvc = InferenceService::from_json(object, namespace).expect("a well-formed ISVC");
    let policy = policy();
    let planned = plan::plan(&isvc, config, &policy)
        .unwrap_or_else(|rejection| panic!("the synthetic ISVC is valid: {rejection:?}"));
    let routes = plan::routes(&planned, &isvc, config)
        .iter()
        .filter(|route| policy.route_owner.writes(route.kind()))
        .map(|route| route.to_value())
        .collect();
    (planned, routes)
}

/// ISVC number `index` as the cache holds it after the webhook and a settled reconcile: the
/// webhook's output annotations, KServe's status fields and conditions, and the URLs and
/// `IngressReady=True` the reconciler wrote.
pub fn settled_isvc(index: usize, isvcs: usize, namespaces: usize, config: &KserveConfig) -> Value {
    let mut object = user_isvc(index, isvcs, namespaces);
    let (plan, _) = plan_of(&object, config);
    for (key, value) in &plan.annotations {
        object["metadata"]["annotations"][*key] = json!(value);
    }
    let desired = DesiredStatus {
        urls: Some(StatusUrls::of(&plan, None, Default::default()).0),
        readiness: Some(Readiness::Ready),
    };
    let patch = decide::status_patch(None, None, &desired, NOW).expect("a first status");
    let mut status = patch["status"].clone();
    let condition = |kind: &str| json!({ "type": kind, "status": "True", "lastTransitionTime": "2024-06-01T00:05:00Z" });
    let ingress_ready = status["conditions"][0].clone();
    status["conditions"] = json!([
        condition("PredictorReady"),
        ingress_ready,
        condition("LatestDeploymentReady"),
        condition("Ready"),
    ]);
    status["deploymentMode"] = json!(plan.mode.as_str());
    status["observedGeneration"] = json!(1);
    status["modelStatus"] = json!({
        "states": { "activeModelState": "Loaded", "targetModelState": "Loaded" },
        "transitionStatus": "UpToDate",
        "copies": { "failedCopies": 0, "totalCopies": 1 },
    });
    object["status"] = status;
    object
}

/// The uid the API server gave a route.
pub fn route_uid(route: &Value) -> String {
    format!(
        "{}-{}-{}-uid",
        route["metadata"]["namespace"].as_str().unwrap_or_default(),
        route["kind"].as_str().unwrap_or_default().to_lowercase(),
        route["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

/// The live copy of a route after the reconcile that created it.
pub fn live_route(route: &Value) -> Value {
    let mut object = stored(route, &route_uid(route));
    if object["kind"] == "HTTPRoute" {
        object["status"] = accepted();
    }
    object
}

fn kind_of(object: &Value) -> ManagedKind {
    ManagedKind::of(
        object["apiVersion"].as_str().unwrap_or_default(),
        object["kind"].as_str().unwrap_or_default(),
    )
    .expect("a managed kind")
}

/// What the reconcile of one ISVC would do.
#[derive(Debug, Clone)]
pub struct Decision {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub changes: RouteChanges,
    /// The API server's answer to each apply (the applied object, stored; server-side apply
    /// keeps the status of an existing object).
    pub responses: Vec<Value>,
    pub status_patch: Option<Value>,
    /// (reason, message) of the Event published with the status patch.
    pub event: Option<(String, String)>,
    /// The note of the `PlatformUrlKept` Event published before the status patch.
    pub kept: Option<String>,
    /// The ISVC could not be planned (InvalidRouting) or its routes were blocked.
    pub not_written: bool,
}

impl Decision {
    /// API calls this reconcile makes (every one a write: reads come from the caches).
    pub fn calls(&self) -> usize {
        self.changes.apply.len()
            + self.changes.delete.len()
            + usize::from(self.status_patch.is_some())
            + usize::from(self.event.is_some())
            + usize::from(self.kept.is_some())
    }
}

/// What a re-plan of every ISVC would write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub isvcs: usize,
    /// ISVCs whose reconcile makes at least one API call.
    pub isvcs_written: usize,
    pub applies: usize,
    pub deletes: usize,
    pub status_patches: usize,
    pub events: usize,
    pub not_written: usize,
}

impl Counts {
    pub fn calls(&self) -> usize {
        self.applies + self.deletes + self.status_patches + self.events
    }

    fn add(&mut self, decision: &Decision) {
        self.isvcs += 1;
        self.isvcs_written += usize::from(decision.calls() > 0);
        self.applies += decision.changes.apply.len();
        self.deletes += decision.changes.delete.len();
        self.status_patches += usize::from(decision.status_patch.is_some());
        self.events += usize::from(decision.event.is_some());
        self.not_written += usize::from(decision.not_written);
    }
}

/// Size of the synthetic cluster, in serialised JSON (a cross-check of the RSS measurement).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSize {
    pub isvcs: usize,
    pub isvc_bytes: usize,
    pub routes: usize,
    pub route_bytes: usize,
    /// Bytes the cached documents take deflated.
    pub isvc_held_bytes: usize,
    pub route_held_bytes: usize,
    pub hosts: usize,
}

/// The reconciler's in-memory state over the synthetic cluster.
pub struct Store {
    pub state: Arc<AdmissionState>,
    pub served: ServedKinds,
    /// The ISVC reflector store the Controller reads (same type, same map).
    pub isvcs: Reflector<CachedInferenceService>,
    pub routes: RouteCache,
    pub hosts: HostIndex,
    /// Kept so the reflector store is owned as in the reconciler.
    _writer: Writer<CachedInferenceService>,
}

/// The build stages [`Store::build_with`] reports, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Isvcs,
    Routes,
    Hosts,
}

impl Store {
    pub fn build(isvcs: usize, namespaces: usize) -> Self {
        Self::build_with(isvcs, namespaces, |_| {})
    }

    /// Builds the store, calling `after` once each part is complete (the ISVC objects, then the
    /// route cache, then the host index), with no temporary of the finished part still alive:
    /// the memory benchmark reads the RSS there.
    pub fn build_with(isvcs: usize, namespaces: usize, mut after: impl FnMut(Stage)) -> Self {
        let config = base_config();
        let mut writer = Writer::<CachedInferenceService>::default();
        for index in 0..isvcs {
            let object: CachedInferenceService =
                serde_json::from_value(settled_isvc(index, isvcs, namespaces, &config))
                    .expect("an ISVC object");
            writer.apply_watcher_event(&watcher::Event::Apply(object));
        }
        let reader = writer.as_reader();
        after(Stage::Isvcs);
        let routes = RouteCache::with_objects(std::iter::empty());
        for object in reader.state() {
            let value = object.to_value().expect("a JSON document");
            for route in plan_of(&value, &config).1 {
                let live: DynamicObject =
                    serde_json::from_value(live_route(&route)).expect("a route object");
                routes.insert(kind_of(&route), &live);
            }
        }
        after(Stage::Routes);
        let state = Arc::new(AdmissionState::new(config, policy(), "kserve"));
        let hosts = HostIndex::new();
        host_claims::rebuild_host_index(
            &hosts,
            reader.state().iter().map(|object| object.as_ref()),
            &state,
        );
        after(Stage::Hosts);
        Self {
            state,
            served: ServedKinds::all(),
            isvcs: reader,
            routes,
            hosts,
            _writer: writer,
        }
    }

    /// Every ISVC object, by namespace and name.
    pub fn objects(&self) -> Vec<Arc<CachedInferenceService>> {
        let mut objects = self.isvcs.state();
        objects.sort_by(|a, b| {
            (&a.meta().namespace, &a.meta().name).cmp(&(&b.meta().namespace, &b.meta().name))
        });
        objects
    }

    /// The live routes of one ISVC, as JSON.
    pub fn live_routes_of(&self, namespace: &str, name: &str) -> Vec<Value> {
        self.routes
            .owned_by(namespace, name)
            .iter()
            .map(|route| route.object.to_value().expect("a JSON document"))
            .collect()
    }

    pub fn json_size(&self) -> JsonSize {
        let mut size = JsonSize {
            hosts: self.hosts.len(),
            ..JsonSize::default()
        };
        for object in self.isvcs.state() {
            size.isvcs += 1;
            size.isvc_bytes += object.document().expect("a document").len();
            size.isvc_held_bytes += object.held_bytes();
            let (namespace, name) = identity(&object);
            for route in self.routes.owned_by(&namespace, &name) {
                size.routes += 1;
                size.route_bytes += route.object.document().expect("a document").len();
                size.route_held_bytes += route.object.held_bytes();
            }
        }
        size
    }

    /// A config change, as the reconciler handles it: the host index is rebuilt from every ISVC,
    /// then every ISVC is reconciled (here: decided, its writes counted). Call after
    /// `self.state.replace_config(...)`.
    pub fn replan(&self) -> Counts {
        let objects = self.isvcs.state();
        host_claims::rebuild_host_index(
            &self.hosts,
            objects.iter().map(|object| object.as_ref()),
            &self.state,
        );
        self.decide_all(&objects)
    }

    /// The reconcile decisions alone, for every ISVC in `objects`.
    pub fn decide_all(&self, objects: &[Arc<CachedInferenceService>]) -> Counts {
        let mut counts = Counts::default();
        for object in objects {
            counts.add(&self.decide(object));
        }
        counts
    }

    /// The host index rebuild alone.
    pub fn rebuild_hosts(&self) {
        let objects = self.isvcs.state();
        host_claims::rebuild_host_index(
            &self.hosts,
            objects.iter().map(|object| object.as_ref()),
            &self.state,
        );
    }

    /// What `reconcile::controller::reconcile` decides for `object`, step for step (see
    /// `Reconcile::run`, `Reconcile::routes` and `Reconcile::status`), with the config in force.
    pub fn decide(&self, object: &CachedInferenceService) -> Decision {
        let (namespace, name) = identity(object);
        let uid = object.meta().uid.clone().expect("an ISVC uid");
        let mut decision = Decision {
            namespace: namespace.clone(),
            name: name.clone(),
            uid: uid.clone(),
            changes: RouteChanges::default(),
            responses: Vec::new(),
            status_patch: None,
            event: None,
            kept: None,
            not_written: false,
        };
        let value = object.to_value().expect("a JSON document");
        let live_status = value.get("status");
        let config = self.state.config();
        let policy = self.state.policy();
        let planned = InferenceService::from_json(&value, &namespace)
            .map_err(|violations| violation::join(&violations))
            .and_then(|isvc| {
                plan::plan(&isvc, &config, policy)
                    .map(|plan| (isvc, plan))
                    .map_err(|rejection| violation::join(&rejection.violations))
            });
        let created = object.meta().creation_timestamp.as_ref().map(|t| t.0);
        let hosts = planned
            .as_ref()
            .map(|(_, plan)| plan.hosts.clone())
            .unwrap_or_default();
        self.hosts.set(&namespace, &name, created, hosts);
        let desired = match planned {
            Err(message) => {
                decision.not_written = true;
                DesiredStatus {
                    urls: None,
                    readiness: Some(Readiness::not_ready(
                        decide::reason::INVALID_ROUTING,
                        message,
                    )),
                }
            }
            Ok((isvc, plan)) => {
                let ingress_ready_is_ours =
                    policy.route_owner.writes_ingress_ready(plan.route_kind);
                let mut desired = plan::routes(&plan, &isvc, &config);
                desired.retain(|route| policy.route_owner.writes(route.kind()));
                let live = self.routes.owned_by(&namespace, &name);
                let blocked = if plan.stopped {
                    None
                } else {
                    decide::missing_kind(&desired, &self.served).or_else(|| {
                        decide::host_conflict(&self.hosts.conflicts(&namespace, &name, &plan.hosts))
                    })
                };
                match blocked {
                    Some(readiness) => {
                        decision.not_written = true;
                        DesiredStatus {
                            urls: None,
                            readiness: Some(readiness).filter(|_| ingress_ready_is_ours),
                        }
                    }
                    None => {
                        decision.changes = decide::route_changes(&desired, &live, &uid);
                        let mut applied: HashMap<String, Value> = HashMap::new();
                        for route in &decision.changes.apply {
                            let response = response_to_apply(&route.object, &live);
                            applied.insert(route.name.clone(), response.clone());
                            decision.responses.push(response);
                        }
                        if plan.stopped {
                            DesiredStatus {
                                urls: None,
                                readiness: Some(Readiness::not_ready(
                                    decide::reason::STOPPED,
                                    format!(
                                        "{} is true: every route of this InferenceService was \
                                         removed",
                                        plan::STOP_ANNOTATION
                                    ),
                                ))
                                .filter(|_| ingress_ready_is_ours),
                            }
                        } else {
                            let live_value = |route_name: &str| {
                                applied.get(route_name).cloned().or_else(|| {
                                    live.iter()
                                        .find(|route: &&LiveRoute| {
                                            route.kind == ManagedKind::HttpRoute
                                                && route.name() == route_name
                                        })
                                        .and_then(|route| route.object.to_value().ok())
                                })
                            };
                            let (urls, kept) =
                                StatusUrls::of(&plan, live_status, object.own_urls());
                            decision.kept = plan::status::kept_message(&kept);
                            DesiredStatus {
                                urls: Some(urls),
                                readiness: Some(decide::written_readiness(
                                    &plan, &desired, live_value,
                                ))
                                .filter(|_| ingress_ready_is_ours),
                            }
                        }
                    }
                }
            }
        };
        decision.status_patch = decide::status_patch(
            live_status,
            object.meta().resource_version.as_deref(),
            &desired,
            NOW,
        );
        if decision.status_patch.is_some()
            && let Some(readiness @ Readiness::NotReady { reason, message }) = &desired.readiness
            && decide::live_readiness(live_status).as_ref() != Some(readiness)
        {
            decision.event = Some((reason.clone(), message.clone()));
        }
        decision
    }
}

/// The API server's answer to a server-side apply of `object`: the object as stored, with the
/// status of the live copy kept (an apply of the spec does not touch the status).
fn response_to_apply(object: &Value, live: &[LiveRoute]) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let mut response = stored(object, &route_uid(object));
    let live_status = live
        .iter()
        .find(|route| route.kind.kind() == kind && route.name() == name)
        .and_then(|route| route.object.to_value().ok())
        .and_then(|mut route| route.get_mut("status").map(Value::take));
    if let Some(status) = live_status {
        response["status"] = status;
    }
    response
}

fn identity(object: &CachedInferenceService) -> (String, String) {
    (
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default(),
    )
}

/// The route objects that differ between two configs, computed independently of the
/// reconciler's diff: for every ISVC, the desired routes under `before` and under `after`,
/// compared as JSON. (changed or new routes, removed routes, ISVCs whose status URLs differ.)
pub fn expected_changes(
    objects: &[Arc<CachedInferenceService>],
    before: &KserveConfig,
    after: &KserveConfig,
) -> (usize, usize, usize, usize) {
    let (mut changed, mut removed, mut statuses, mut isvcs) = (0, 0, 0, 0);
    for object in objects {
        let value = object.to_value().expect("a JSON document");
        let (old_plan, old_routes) = plan_of(&value, before);
        let (new_plan, new_routes) = plan_of(&value, after);
        let key = |route: &Value| (route["kind"].clone(), route["metadata"]["name"].clone());
        let differing = new_routes
            .iter()
            .filter(|route| !old_routes.contains(route))
            .count();
        let gone = old_routes
            .iter()
            .filter(|old| !new_routes.iter().any(|new| key(new) == key(old)))
            .count();
        let status = usize::from(
            StatusUrls::of(&old_plan, None, Default::default()).0
                != StatusUrls::of(&new_plan, None, Default::default()).0,
        );
        changed += differing;
        removed += gone;
        statuses += status;
        isvcs += usize::from(differing + gone + status > 0);
    }
    (changed, removed, statuses, isvcs)
}

/// Time this thread has spent on a CPU, in nanoseconds (`/proc/thread-self/schedstat`).
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resident set size of this process, in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
