//! A fleet of InferenceServices on the real control plane, shared by the count tests
//! (`scale.rs`) and the scale benchmark (`benches/control_plane_scale.rs`): the synthetic mix of
//! `tests/scale_store` (Standard/Ingress, Standard/HTTPRoute, Knative/VirtualService; predictor,
//! transformer, explainer) plus cluster-local ISVCs, loaded with parallel `kubectl create` of
//! List documents, and the counters that say what was written: the API server's own
//! `apiserver_request_total` and `serve`'s `isvc_ingress_reconcile_*` metrics.
#![allow(dead_code)]

#[path = "../scale_store/mod.rs"]
mod scale_store;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use isvc_ingress::config::KserveConfig;
use isvc_ingress::reconcile::decide::StatusUrls;
use serde_json::{Value, json};

use crate::control_plane::{ControlPlane, repository};
use crate::install::Replica;

/// ISVCs per namespace (`team-000`, `team-001`, ...), as in `tests/scale_store`.
pub const PER_NAMESPACE: usize = 50;
/// The label selector of every route isvc-ingress writes.
pub const MANAGED: &str = "app.kubernetes.io/managed-by=isvc-ingress";
/// Every kind the reconciler writes under `manifests/dev`'s config, as kubectl names them.
pub const ROUTE_KINDS: &str = "ingresses.networking.k8s.io,httproutes.gateway.networking.k8s.io,virtualservices.networking.istio.io,services,domainmappings.serving.knative.dev";
/// The resources (`apiserver_request_total`'s `resource` label) the reconciler writes.
const RECONCILER_RESOURCES: [&str; 7] = [
    "ingresses",
    "httproutes",
    "virtualservices",
    "services",
    "domainmappings",
    "inferenceservices",
    "events",
];
/// ISVCs in one `kubectl create -f` List, and kubectl processes run at once.
const CHUNK: usize = 250;
const PARALLEL_KUBECTL: usize = 4;

/// The namespace of ISVC number `index`.
pub fn namespace_of(index: usize) -> String {
    scale_store::namespace_of(index, PER_NAMESPACE, 1)
}

/// Whether ISVC number `index` is cluster-local (`networking.kserve.io/visibility`): every
/// tenth, all of them Standard/Ingress ISVCs of the mix (a route annotation and the label
/// together are refused at admission). They have no external host, so an `ingressDomain`
/// change leaves them alone.
pub fn is_cluster_local(index: usize) -> bool {
    index % 10 == 9
}

/// ISVC number `index` as a user creates it: `tests/scale_store`'s mix (10% Standard with
/// HTTPRoutes, 40% Knative with a VirtualService and its ExternalName Service, 50% Standard with
/// an Ingress, of which a fifth cluster-local; 70% predictor only, 20% with a transformer, 10%
/// with a transformer and an explainer).
pub fn isvc(index: usize) -> Value {
    let mut object = scale_store::user_isvc(index, PER_NAMESPACE, 1);
    let metadata = object["metadata"].as_object_mut().expect("metadata");
    for field in ["uid", "resourceVersion", "generation", "creationTimestamp"] {
        metadata.remove(field);
    }
    if is_cluster_local(index) {
        assert_eq!(scale_store::Shape::of(index), scale_store::Shape::Ingress);
        object["metadata"]["labels"]["networking.kserve.io/visibility"] = json!("cluster-local");
    }
    object
}

/// Runs `work` on every item, [`PARALLEL_KUBECTL`] at once.
fn in_parallel<T: Sync>(items: &[T], work: impl Fn(&T) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_KUBECTL {
            scope.spawn(|| {
                while let Some(item) = items.get(next.fetch_add(1, Ordering::SeqCst)) {
                    work(item);
                }
            });
        }
    });
}

fn list(items: Vec<Value>) -> String {
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// Creates ISVCs `indexes` (and their namespaces): Lists of [`CHUNK`] ISVCs, [`PARALLEL_KUBECTL`]
/// `kubectl create` at once, each ISVC through the webhooks. Fails on any refusal.
pub fn load(plane: &ControlPlane, indexes: Range<usize>) {
    if indexes.is_empty() {
        return;
    }
    let namespaces: BTreeSet<String> = indexes.clone().map(namespace_of).collect();
    plane.apply(&list(
        namespaces
            .iter()
            .map(
                |name| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            )
            .collect(),
    ));
    let indexes: Vec<usize> = indexes.collect();
    let chunks: Vec<String> = indexes
        .chunks(CHUNK)
        .map(|chunk| list(chunk.iter().map(|index| isvc(*index)).collect()))
        .collect();
    in_parallel(&chunks, |chunk| {
        let output = plane.kubectl_with_input(&["create", "-f", "-", "-o", "name"], Some(chunk));
        assert!(
            output.status.success(),
            "kubectl create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// Deletes every route isvc-ingress manages (the label selector), one `kubectl delete` per
/// namespace, [`PARALLEL_KUBECTL`] at once. Returns how many of each kind were deleted.
pub fn delete_managed_routes(plane: &ControlPlane) -> BTreeMap<String, usize> {
    let routes = managed_routes(plane);
    let mut deleted: BTreeMap<String, usize> = BTreeMap::new();
    for route in &routes {
        *deleted.entry(kind_of(route)).or_default() += 1;
    }
    let namespaces: Vec<String> = routes
        .iter()
        .map(|route| namespace(route).to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    in_parallel(&namespaces, |namespace| {
        plane.kubectl_ok(&[
            "delete",
            ROUTE_KINDS,
            "-n",
            namespace,
            "-l",
            MANAGED,
            "--wait=false",
        ]);
    });
    assert!(
        managed_routes(plane).is_empty(),
        "managed routes are left after the delete"
    );
    deleted
}

fn items(plane: &ControlPlane, kinds: &str, selector: Option<&str>) -> Vec<Value> {
    let mut args = vec!["get", kinds, "-A", "-o", "json"];
    if let Some(selector) = selector {
        args.extend(["-l", selector]);
    }
    let list: Value = serde_json::from_str(&plane.kubectl_ok(&args)).expect("kubectl prints JSON");
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Every route isvc-ingress manages, in every namespace.
pub fn managed_routes(plane: &ControlPlane) -> Vec<Value> {
    items(plane, ROUTE_KINDS, Some(MANAGED))
}

/// Every stored ISVC of the fleet (the `team-*` namespaces).
pub fn stored_isvcs(plane: &ControlPlane) -> Vec<Value> {
    items(plane, "inferenceservices.serving.kserve.io", None)
        .into_iter()
        .filter(|object| namespace(object).starts_with("team-"))
        .collect()
}

pub fn kind_of(object: &Value) -> String {
    object["kind"].as_str().unwrap_or_default().to_owned()
}

fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

/// (kind, namespace, name) of an object.
pub type Identity = (String, String, String);

pub fn identity(object: &Value) -> Identity {
    (
        kind_of(object),
        namespace(object).to_owned(),
        object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Identity → resourceVersion of each object.
pub fn resource_versions(objects: &[Value]) -> BTreeMap<Identity, String> {
    objects
        .iter()
        .map(|object| {
            (
                identity(object),
                object["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// `manifests/dev`'s `inferenceservice-config` ConfigMap with `ingressDomain` set to `domain`.
pub fn config_map(domain: &str) -> Value {
    let path = repository().join("manifests/dev/inferenceservice-config.yaml");
    let mut config_map: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("the dev config"))
            .expect("YAML");
    let ingress = config_map["data"]["ingress"].as_str().expect("ingress");
    let replaced = ingress.replace("\"example.com\"", &format!("\"{domain}\""));
    assert!(
        replaced != ingress || domain == "example.com",
        "manifests/dev's ingressDomain is example.com"
    );
    config_map["data"]["ingress"] = json!(replaced);
    config_map
}

/// The config `serve` reads from [`config_map`]`(domain)`.
pub fn config(domain: &str) -> KserveConfig {
    KserveConfig::from_text(&config_map(domain).to_string()).expect("the dev config is valid")
}

/// The routes isvc-ingress plans for the stored `isvcs` under `config` (what `serve
/// --route-owner isvc-ingress` writes), by identity.
pub fn planned_routes(isvcs: &[Value], config: &KserveConfig) -> BTreeMap<Identity, Value> {
    isvcs
        .iter()
        .flat_map(|object| scale_store::plan_of(object, config).1)
        .map(|route| (identity(&route), route))
        .collect()
}

/// What a config change must write, computed from the plans alone (not from the reconciler's
/// diff): the routes whose planned object differs, and the ISVCs whose status URLs differ.
#[derive(Debug, Default)]
pub struct Changes {
    /// Route identities whose object changes (one apply each).
    pub routes: BTreeSet<Identity>,
    /// Planned routes per kind that change.
    pub routes_by_kind: BTreeMap<String, usize>,
    /// ISVCs (as `InferenceService`, namespace, name) whose status URLs change (one status
    /// patch each).
    pub statuses: BTreeSet<Identity>,
}

pub fn changes(isvcs: &[Value], before: &KserveConfig, after: &KserveConfig) -> Changes {
    let mut changes = Changes::default();
    for object in isvcs {
        let (old_plan, old_routes) = scale_store::plan_of(object, before);
        let (new_plan, new_routes) = scale_store::plan_of(object, after);
        let old_identities: BTreeSet<Identity> = old_routes.iter().map(identity).collect();
        for route in new_routes
            .iter()
            .filter(|route| !old_routes.contains(route))
        {
            changes.routes.insert(identity(route));
            *changes.routes_by_kind.entry(kind_of(route)).or_default() += 1;
        }
        assert!(
            new_routes
                .iter()
                .all(|route| old_identities.contains(&identity(route)))
                && old_routes.len() == new_routes.len(),
            "a config change of ingressDomain neither adds nor removes routes"
        );
        if StatusUrls::of(&old_plan, None, Default::default()).0
            != StatusUrls::of(&new_plan, None, Default::default()).0
        {
            changes.statuses.insert(identity(object));
        }
    }
    changes
}

/// A Prometheus text line: (name, labels, value); None for comments and other lines.
fn sample(line: &str) -> Option<(&str, BTreeMap<&str, &str>, f64)> {
    if line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series, BTreeMap::new(), value));
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest.strip_suffix('}')?;
    while let Some((key, after)) = rest.split_once("=\"") {
        let end = after.find('"')?;
        labels.insert(key.trim_start_matches(','), &after[..end]);
        rest = &after[end + 1..];
    }
    Some((name, labels, value))
}

/// The sum of every sample of `name` whose labels satisfy `keep`, in Prometheus text.
pub fn sum(text: &str, name: &str, keep: impl Fn(&BTreeMap<&str, &str>) -> bool) -> f64 {
    text.lines()
        .filter_map(sample)
        .filter(|(series, labels, _)| *series == name && keep(labels))
        .map(|(_, _, value)| value)
        .sum()
}

/// The API server's request counters (`apiserver_request_total`), dry runs left out:
/// (verb, resource, subresource, code) → requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiRequests(pub BTreeMap<(String, String, String, String), f64>);

impl ApiRequests {
    pub fn read(plane: &ControlPlane) -> Self {
        let text = plane.kubectl_ok(&["get", "--raw", "/metrics"]);
        let mut counts = BTreeMap::new();
        for (name, labels, value) in text.lines().filter_map(sample) {
            if name != "apiserver_request_total"
                || labels
                    .get("dry_run")
                    .is_some_and(|dry_run| !dry_run.is_empty())
            {
                continue;
            }
            let label = |key: &str| labels.get(key).copied().unwrap_or_default().to_owned();
            *counts
                .entry((
                    label("verb"),
                    label("resource"),
                    label("subresource"),
                    label("code"),
                ))
                .or_default() += value;
        }
        Self(counts)
    }

    /// The requests counted after `before` was read.
    pub fn since(&self, before: &Self) -> Self {
        Self(
            self.0
                .iter()
                .map(|(key, count)| {
                    (
                        key.clone(),
                        count - before.0.get(key).copied().unwrap_or(0.0),
                    )
                })
                .filter(|(_, count)| *count > 0.0)
                .collect(),
        )
    }

    /// Every request, reads and watches included.
    pub fn total(&self) -> f64 {
        // From +0.0: an empty `sum` of floats is -0.0, which prints as "-0".
        self.0.values().fold(0.0, |total, count| total + count)
    }

    /// Write requests (every verb but GET, LIST and WATCH) to the resources the reconciler
    /// writes whose answer's code satisfies `code`, as "VERB resource[/subresource]" →
    /// requests. Leases (leader election) are left out.
    fn writes(&self, code: impl Fn(&str) -> bool, with_code: bool) -> BTreeMap<String, f64> {
        let mut writes = BTreeMap::new();
        for ((verb, resource, subresource, answer), count) in &self.0 {
            if matches!(verb.as_str(), "GET" | "LIST" | "WATCH")
                || !RECONCILER_RESOURCES.contains(&resource.as_str())
                || !code(answer)
            {
                continue;
            }
            let resource = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let key = if with_code {
                format!("{verb} {resource} {answer}")
            } else {
                format!("{verb} {resource}")
            };
            *writes.entry(key).or_default() += count;
        }
        writes
    }

    /// The reconciler's writes the API server carried out (2xx).
    pub fn reconciler_writes(&self) -> BTreeMap<String, f64> {
        self.writes(|code| code.starts_with('2'), false)
    }

    /// The reconciler's writes the API server refused, as "VERB resource code" → requests.
    pub fn refused_writes(&self) -> BTreeMap<String, f64> {
        self.writes(|code| !code.starts_with('2'), true)
    }
}

/// What `serve`'s `/metrics` says about its reconciler.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciler {
    pub leader: bool,
    /// Reconciles that ran as the leader (outcome `Changed`, `Unchanged` or `Error`).
    pub runs: f64,
    pub errors: f64,
    /// `isvc_ingress_reconcile_api_writes_total`: "verb kind" → writes.
    pub writes: BTreeMap<String, f64>,
}

impl Reconciler {
    pub fn read(replica: &Replica) -> Self {
        let text = replica.metrics();
        let mut writes = BTreeMap::new();
        for (name, labels, value) in text.lines().filter_map(sample) {
            if name == "isvc_ingress_reconcile_api_writes_total" && value > 0.0 {
                let label = |key: &str| labels.get(key).copied().unwrap_or_default();
                *writes
                    .entry(format!("{} {}", label("verb"), label("kind")))
                    .or_default() += value;
            }
        }
        Self {
            leader: sum(&text, "isvc_ingress_reconcile_leader", |_| true) == 1.0,
            runs: sum(&text, "isvc_ingress_reconcile_runs_total", |labels| {
                labels.get("outcome") != Some(&"NotLeader")
            }),
            errors: sum(&text, "isvc_ingress_reconcile_runs_total", |labels| {
                labels.get("outcome") == Some(&"Error")
            }),
            writes,
        }
    }

    pub fn total_writes(&self) -> f64 {
        self.writes.values().sum()
    }

    /// The writes counted after `before`, "verb kind" → writes.
    pub fn writes_since(&self, before: &Self) -> BTreeMap<String, f64> {
        self.writes
            .iter()
            .map(|(key, count)| {
                (
                    key.clone(),
                    count - before.writes.get(key).copied().unwrap_or(0.0),
                )
            })
            .filter(|(_, count)| *count > 0.0)
            .collect()
    }
}

/// What [`settle`] saw.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The counters once nothing was pending.
    pub reading: Reconciler,
    /// When the counters last moved.
    pub moved: Instant,
    /// When the replica was first seen holding the lease.
    pub led: Instant,
}

/// Waits until `replica` holds the lease, has run at least `runs` reconciles as the leader,
/// and neither its reconcile nor its write counters have moved for `quiet`: no reconcile is
/// pending. Fails after `limit`.
pub fn settle(replica: &Replica, runs: f64, quiet: Duration, limit: Duration) -> Settled {
    let started = Instant::now();
    let mut last = Reconciler::read(replica);
    let mut moved = Instant::now();
    let mut led = last.leader.then(Instant::now);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = Reconciler::read(replica);
        if (now.runs, now.total_writes()) != (last.runs, last.total_writes())
            || now.leader != last.leader
        {
            moved = Instant::now();
        }
        if now.leader && led.is_none() {
            led = Some(Instant::now());
        }
        last = now;
        if let Some(led) = led
            && last.leader
            && last.runs >= runs
            && moved.elapsed() >= quiet
        {
            return Settled {
                reading: last,
                moved,
                led,
            };
        }
        assert!(
            started.elapsed() < limit,
            "the reconciler did not settle within {limit:?} (wanted {runs} runs as leader): \
             {last:?}\n{}",
            replica.process.log_tail(30)
        );
    }
}

/// Waits until every stored ISVC of the fleet has its status settled (an `IngressReady`
/// condition and URLs) and the managed routes are exactly the planned ones under `config`;
/// then returns the ISVCs and the routes. Fails after `limit`.
pub fn wait_converged(
    plane: &ControlPlane,
    replica: &Replica,
    isvcs: usize,
    config: &KserveConfig,
    limit: Duration,
) -> (Vec<Value>, Vec<Value>) {
    let started = Instant::now();
    loop {
        let remaining = limit.saturating_sub(started.elapsed());
        settle(replica, 0.0, Duration::from_secs(3), remaining);
        let stored = stored_isvcs(plane);
        let routes = managed_routes(plane);
        let unsettled = stored
            .iter()
            .filter(|object| {
                !object["status"]["conditions"]
                    .as_array()
                    .is_some_and(|conditions| {
                        conditions
                            .iter()
                            .any(|condition| condition["type"] == "IngressReady")
                    })
                    || !object["status"]["url"].is_string()
            })
            .count();
        let planned: BTreeSet<Identity> = planned_routes(&stored, config).into_keys().collect();
        let live: BTreeSet<Identity> = routes.iter().map(identity).collect();
        if stored.len() == isvcs && unsettled == 0 && planned == live {
            return (stored, routes);
        }
        assert!(
            started.elapsed() < limit,
            "not converged after {limit:?}: {} of {isvcs} ISVCs stored, {unsettled} without \
             IngressReady and URLs, {} planned routes missing, {} unplanned routes",
            stored.len(),
            planned.difference(&live).count(),
            live.difference(&planned).count()
        );
    }
}

/// The buckets of the histogram `name` (without `_bucket`) in Prometheus text, over the
/// samples whose labels satisfy `keep`: upper bound (s) → cumulative count, summed.
pub fn histogram(
    text: &str,
    name: &str,
    keep: impl Fn(&BTreeMap<&str, &str>) -> bool,
) -> BTreeMap<String, f64> {
    let bucket = format!("{name}_bucket");
    let mut buckets: BTreeMap<String, f64> = BTreeMap::new();
    for (series, labels, count) in text.lines().filter_map(sample) {
        if series == bucket && keep(&labels) {
            let bound = labels.get("le").copied().unwrap_or_default();
            *buckets.entry(bound.to_owned()).or_default() += count;
        }
    }
    buckets
}

/// Calls kube-apiserver made to the webhook named `webhook` (its
/// `apiserver_admission_webhook_admission_duration_seconds` count, every label summed).
pub fn webhook_calls(plane: &ControlPlane, webhook: &str) -> f64 {
    histogram(
        &plane.kubectl_ok(&["get", "--raw", "/metrics"]),
        "apiserver_admission_webhook_admission_duration_seconds",
        |labels| labels.get("name") == Some(&webhook),
    )
    .get("+Inf")
    .copied()
    .unwrap_or(0.0)
}

/// `apiserver_admission_webhook_admission_duration_seconds` buckets for our ISVC webhooks:
/// upper bound (s) → cumulative count, summed over mutating and validating.
pub fn webhook_latency_histogram(plane: &ControlPlane) -> BTreeMap<String, f64> {
    histogram(
        &plane.kubectl_ok(&["get", "--raw", "/metrics"]),
        "apiserver_admission_webhook_admission_duration_seconds",
        |labels| labels.get("name") == Some(&"inferenceservices.isvc-ingress.io"),
    )
}

/// The calls between two readings of [`webhook_latency_histogram`]: (upper bound in seconds,
/// cumulative count), ascending.
fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> Vec<(f64, String, f64)> {
    let mut bounds: Vec<(f64, String, f64)> = after
        .iter()
        .map(|(bound, count)| {
            let value = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().expect("a bucket bound")
            };
            (
                value,
                bound.clone(),
                count - before.get(bound).copied().unwrap_or(0.0),
            )
        })
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    bounds
}

/// (calls, p50 bound, p99 bound) of the calls between two histogram readings.
pub fn percentiles(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> (f64, String, String) {
    let bounds = delta(before, after);
    let total = bounds.last().map(|bound| bound.2).unwrap_or(0.0);
    let at = |share: f64| {
        bounds
            .iter()
            .find(|bound| bound.2 >= share * total)
            .map(|bound| bound.1.clone())
            .unwrap_or_default()
    };
    (total, at(0.5), at(0.99))
}

/// The `quantile` (0..1) of the calls between two histogram readings in seconds, interpolated
/// linearly within its bucket as Prometheus' `histogram_quantile` does; None without calls.
/// The API server's buckets are coarse (5 ms, 25 ms, 100 ms, ...), so this is an estimate.
pub fn interpolated_quantile(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    quantile: f64,
) -> Option<f64> {
    let bounds = delta(before, after);
    let total = bounds.last()?.2;
    if total <= 0.0 {
        return None;
    }
    let rank = quantile * total;
    let mut lower = (0.0, 0.0);
    for (bound, _, count) in &bounds {
        if *count >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = (rank - lower.1) / (count - lower.1).max(f64::MIN_POSITIVE);
            return Some(lower.0 + (bound - lower.0) * within);
        }
        lower = (*bound, *count);
    }
    None
}

/// Every Event of the fleet's namespaces: name → (reason, the object it regards, its
/// resourceVersion), to see which were created or updated.
pub fn events(plane: &ControlPlane) -> BTreeMap<String, (String, String, String)> {
    items(plane, "events.events.k8s.io", None)
        .iter()
        .filter(|event| namespace(event).starts_with("team-"))
        .map(|event| {
            let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
            (
                format!("{}/{}", namespace(event), text(&event["metadata"]["name"])),
                (
                    text(&event["reason"]),
                    text(&event["regarding"]["name"]),
                    text(&event["metadata"]["resourceVersion"]),
                ),
            )
        })
        .collect()
}
