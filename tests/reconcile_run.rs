//! `reconcile::run` end to end against a mock API server that answers by path (the requests of
//! discovery, the lease, the watchers and the reconciles interleave): the replica discovers the
//! served kinds, wins an empty Lease, lists ISVCs and routes, reports synced, and — once it
//! leads — applies the ISVC's route and writes its status; on shutdown it releases the lease.
//! A second test holds the answers to writes and counts how many the reconciler has in flight
//! at once (`--concurrent-reconciles`).

mod reconcile_mock;
mod support;

use http::{Method, Request, Response, StatusCode};
use isvc_ingress::admission::AdmissionState;
use isvc_ingress::plan::{Policy, RouteOwner};
use isvc_ingress::reconcile::{self, HostIndex, ReconcileMetrics, ReconcilerArgs, ReplanTrigger};
use kube::client::Body;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

type Responder = tower_test::mock::SendResponse<Response<Body>>;

/// What the mock API server saw and holds.
#[derive(Default)]
struct Cluster {
    lease: Option<Value>,
    writes: Vec<(Method, String, Value)>,
    /// Watch requests are never answered: held here so they stay open.
    watches: Vec<Responder>,
    /// When set, writes are answered only by [`release_writes`]; until then they wait here.
    hold_writes: bool,
    held: Vec<(Responder, Value)>,
}

fn reply(respond: Responder, status: StatusCode, body: &Value) {
    respond.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({ "apiVersion": "v1", "kind": format!("{kind}List"), "metadata": { "resourceVersion": "1" }, "items": items })
}

fn resources(group_version: &str, names: &[&str]) -> Value {
    let resources: Vec<Value> = names
        .iter()
        .map(|name| json!({ "name": name, "singularName": "", "namespaced": true, "kind": "K", "verbs": [] }))
        .collect();
    json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources })
}

/// Merges `patch` into `target` as a JSON merge patch (null removes), enough for the Lease.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

async fn answer(
    cluster: &Mutex<Cluster>,
    isvcs: &[Value],
    request: Request<Body>,
    respond: Responder,
) {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let bytes = body.collect_bytes().await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/isvc-ingress";
    let mut cluster = cluster.lock().unwrap();
    match (parts.method.clone(), path.as_str()) {
        (Method::GET, "/apis/networking.k8s.io/v1") => reply(
            respond,
            StatusCode::OK,
            &resources("networking.k8s.io/v1", &["ingresses"]),
        ),
        (Method::GET, "/api/v1") => reply(respond, StatusCode::OK, &resources("v1", &["services"])),
        (Method::GET, path) if path.starts_with("/apis/") && path.matches('/').count() == 3 => {
            reply(
                respond,
                StatusCode::NOT_FOUND,
                &reconcile_mock::api_error(404, "NotFound"),
            )
        }
        (Method::GET, path) if path == lease_path => match &cluster.lease {
            Some(lease) => reply(respond, StatusCode::OK, lease),
            None => reply(
                respond,
                StatusCode::NOT_FOUND,
                &reconcile_mock::api_error(404, "NotFound"),
            ),
        },
        (Method::POST, "/apis/coordination.k8s.io/v1/namespaces/ops/leases") => {
            let mut lease = body.clone();
            lease["metadata"]["namespace"] = json!("ops");
            lease["metadata"]["resourceVersion"] = json!("1");
            cluster.lease = Some(lease.clone());
            reply(respond, StatusCode::CREATED, &lease);
        }
        (Method::PATCH, path) if path == lease_path => {
            let lease = cluster.lease.as_mut().expect("the lease exists");
            merge(lease, &json!({ "spec": body["spec"] }));
            let lease = lease.clone();
            reply(respond, StatusCode::OK, &lease);
        }
        (Method::GET, _) if query.contains("watch=true") => cluster.watches.push(respond),
        (Method::GET, "/apis/serving.kserve.io/v1beta1/inferenceservices") => reply(
            respond,
            StatusCode::OK,
            &list("InferenceService", isvcs.to_vec()),
        ),
        (Method::GET, "/apis/networking.k8s.io/v1/ingresses" | "/api/v1/services") => {
            assert!(
                query.contains("labelSelector=app.kubernetes.io%2Fmanaged-by%3Disvc-ingress"),
                "route watchers select our objects only: {query}"
            );
            reply(respond, StatusCode::OK, &list("Route", vec![]))
        }
        (Method::PATCH, path) => {
            assert!(
                path.starts_with("/apis/networking.k8s.io/v1/namespaces/ns/ingresses/")
                    || path.ends_with("/status"),
                "unexpected write {path}"
            );
            let mut stored = body.clone();
            stored["metadata"]["uid"] = json!("route-uid");
            cluster
                .writes
                .push((parts.method.clone(), format!("{path}?{query}"), body));
            if cluster.hold_writes {
                cluster.held.push((respond, stored));
            } else {
                reply(respond, StatusCode::OK, &stored);
            }
        }
        (method, path) => panic!("unexpected request {method} {path}?{query}"),
    }
}

/// Answers every held write; returns how many there were.
fn release_writes(cluster: &Mutex<Cluster>) -> usize {
    let held = std::mem::take(&mut cluster.lock().unwrap().held);
    let count = held.len();
    for (respond, stored) in held {
        reply(respond, StatusCode::OK, &stored);
    }
    count
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// `reconcile::run` of a replica with `args` against the mock API server `cluster`, which
/// lists `isvcs`.
struct Running {
    cluster: Arc<Mutex<Cluster>>,
    hosts: HostIndex,
    metrics: Arc<ReconcileMetrics>,
    synced: Arc<AtomicBool>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<Result<(), reconcile::Error>>,
    server: tokio::task::JoinHandle<()>,
}

fn start(isvcs: Vec<Value>, cluster: Cluster, args: ReconcilerArgs) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let config = support::config_with(json!({}), "Standard");
    let state = Arc::new(AdmissionState::new(
        config,
        Policy {
            route_owner: RouteOwner::IsvcIngress,
            ..Policy::default()
        },
        "kserve",
    ));
    let cluster = Arc::new(Mutex::new(cluster));
    let server = tokio::spawn({
        let cluster = cluster.clone();
        async move {
            while let Some((request, respond)) = handle.next_request().await {
                answer(&cluster, &isvcs, request, respond).await;
            }
        }
    });

    let hosts = HostIndex::new();
    let metrics = Arc::new(ReconcileMetrics::default());
    let synced = Arc::new(AtomicBool::new(false));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (state, hosts, metrics, synced, shutdown) = (
            state.clone(),
            hosts.clone(),
            metrics.clone(),
            synced.clone(),
            shutdown.clone(),
        );
        async move {
            reconcile::run(
                client,
                state,
                hosts,
                &args,
                metrics,
                ReplanTrigger::new(),
                move || synced.store(true, Ordering::SeqCst),
                shutdown,
            )
            .await
        }
    });
    Running {
        cluster,
        hosts,
        metrics,
        synced,
        shutdown,
        running,
        server,
    }
}

impl Running {
    /// Cancels the run, checks that it stops within 10 s without an error, and stops the mock
    /// API server; returns what the mock holds.
    async fn stop(self) -> Arc<Mutex<Cluster>> {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), self.running)
            .await
            .expect("run stops on shutdown")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
        self.server.abort();
        self.cluster
    }
}

fn lease_in_ops() -> ReconcilerArgs {
    ReconcilerArgs {
        lease_namespace: Some("ops".into()),
        ..ReconcilerArgs::default()
    }
}

#[tokio::test]
async fn run_syncs_leads_applies_and_releases_the_lease_on_shutdown() {
    let isvc = reconcile_mock::isvc_object("m", "ns", support::predictor_only());
    let run = start(vec![isvc], Cluster::default(), lease_in_ops());

    eventually("the caches to sync", || run.synced.load(Ordering::SeqCst)).await;
    eventually("the host index", || {
        run.hosts.holder_of("m-ns.example.com") == Some(("ns".into(), "m".into()))
    })
    .await;
    eventually("the route and the status to be written", || {
        run.cluster.lock().unwrap().writes.len() >= 2
    })
    .await;
    {
        let cluster = run.cluster.lock().unwrap();
        let (_, apply, body) = &cluster.writes[0];
        assert_eq!(
            apply,
            "/apis/networking.k8s.io/v1/namespaces/ns/ingresses/m?&force=true&fieldManager=isvc-ingress"
        );
        assert_eq!(body["kind"], "Ingress");
        let (_, status, body) = &cluster.writes[1];
        assert!(status.starts_with(
            "/apis/serving.kserve.io/v1beta1/namespaces/ns/inferenceservices/m/status"
        ));
        assert_eq!(body["status"]["conditions"][0]["status"], "True");
        let lease = cluster.lease.as_ref().unwrap();
        assert!(
            lease["spec"]["holderIdentity"].is_string(),
            "this replica holds the lease: {lease:#}"
        );
    }
    assert_eq!(run.metrics.leader.get(), 1);

    let cluster = run.stop().await;
    let lease = cluster.lock().unwrap().lease.clone().unwrap();
    assert!(
        lease["spec"].get("holderIdentity").is_none(),
        "the lease is released for the next leader: {lease:#}"
    );
}

/// The most writes the reconciler of `args` had in flight at once while it wrote the routes and
/// statuses of six new ISVCs (an Ingress apply and a status patch each), answered in rounds:
/// each round waits 300 ms for writes to arrive, counts those waiting, then answers them.
async fn most_writes_in_flight(args: ReconcilerArgs) -> usize {
    let isvcs = (0..6)
        .map(|index| {
            reconcile_mock::isvc_object(&format!("m{index}"), "ns", support::predictor_only())
        })
        .collect();
    let holding = Cluster {
        hold_writes: true,
        ..Cluster::default()
    };
    let run = start(isvcs, holding, args);
    let (mut most, mut answered, mut rounds) = (0, 0, 0);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let waiting = release_writes(&run.cluster);
        most = most.max(waiting);
        answered += waiting;
        if answered >= 12 && waiting == 0 {
            break;
        }
        rounds += 1;
        assert!(
            rounds < 100,
            "the reconciler stopped writing: {answered} writes answered"
        );
    }
    run.stop().await;
    most
}

#[tokio::test]
async fn one_reconcile_at_a_time_keeps_one_write_in_flight_unless_configured() {
    assert_eq!(
        most_writes_in_flight(lease_in_ops()).await,
        1,
        "the default, --concurrent-reconciles 1: each write waits for the answer to the one before"
    );
    let four = ReconcilerArgs {
        concurrent_reconciles: 4,
        ..lease_in_ops()
    };
    assert_eq!(
        most_writes_in_flight(four).await,
        4,
        "--concurrent-reconciles 4: four ISVCs reconciled at once, each waiting for its write"
    );
}
