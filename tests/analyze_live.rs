//! `analyze` against a scripted mock API server (the tower-test pattern of
//! tests/reconcile_mock): the reads are exactly one paginated GET list per kind (each version in
//! turn until one is served) and a GET of each ConfigMap, nothing else; a kind whose CRD is
//! absent is recorded as absent; a refused read is an error that names the resource and the
//! ClusterRole to bind. The snapshot read this way analyses like the dump it came from.

use http::{Method, Request, Response, StatusCode};
use isvc_ingress::analyze::{self, Kind, Scope, Snapshot};
use isvc_ingress::cluster_snapshot::{self, ConfigLocations, PAGE_SIZE};
use isvc_ingress::plan::Policy;
use kube::client::Body;
use serde::Deserialize as _;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected request (always a GET) and its answer.
struct Step {
    path: String,
    query: Option<String>,
    status: StatusCode,
    answer: Value,
}

fn prefix(kind: Kind, version: &str) -> String {
    match kind.group() {
        "" => format!("/api/{version}"),
        group => format!("/apis/{group}/{version}"),
    }
}

/// A list of `kind` at `version` answered with `items` (one page).
fn list(kind: Kind, version: &str, items: Vec<Value>) -> Step {
    page(kind, version, None, items, None)
}

fn page(
    kind: Kind,
    version: &str,
    continue_token: Option<&str>,
    items: Vec<Value>,
    next: Option<&str>,
) -> Step {
    let mut query = format!("&limit={PAGE_SIZE}");
    if let Some(token) = continue_token {
        query.push_str(&format!("&continue={token}"));
    }
    Step {
        path: format!("{}/{}", prefix(kind, version), kind.plural()),
        query: Some(query),
        status: StatusCode::OK,
        answer: json!({
            "apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": "7", "continue": next.unwrap_or("")},
            "items": items,
        }),
    }
}

fn status(code: StatusCode, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
           "message": format!("the server says {reason}"), "reason": reason,
           "code": code.as_u16()})
}

/// A list of a kind the cluster does not serve at `version`: 404.
fn not_served(kind: Kind, version: &str) -> Step {
    let mut step = list(kind, version, Vec::new());
    step.status = StatusCode::NOT_FOUND;
    step.answer = status(StatusCode::NOT_FOUND, "NotFound");
    step
}

fn config_map(namespace: &str, name: &str, object: Option<Value>) -> Step {
    let found = object.is_some();
    Step {
        path: format!("/api/v1/namespaces/{namespace}/configmaps/{name}"),
        query: None,
        status: if found {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        },
        answer: object.unwrap_or_else(|| status(StatusCode::NOT_FOUND, "NotFound")),
    }
}

/// Serves `steps` in order; every request must be a GET of the next step.
async fn serve(mut handle: Handle, steps: Vec<Step>) -> Handle {
    for (index, step) in steps.into_iter().enumerate() {
        let (request, respond) =
            tokio::time::timeout(Duration::from_secs(5), handle.next_request())
                .await
                .unwrap_or_else(|_| panic!("step {index}: no request for {}", step.path))
                .unwrap_or_else(|| panic!("step {index}: the client left before {}", step.path));
        assert_eq!(
            request.method(),
            Method::GET,
            "read-only: {}",
            request.uri()
        );
        assert_eq!(
            (request.uri().path(), request.uri().query()),
            (step.path.as_str(), step.query.as_deref()),
            "step {index}"
        );
        let body = serde_json::to_vec(&step.answer).unwrap();
        respond.send_response(
            Response::builder()
                .status(step.status)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        );
    }
    handle
}

/// Reads the cluster while the mock serves `steps`; fails on a request beyond them.
async fn read(steps: Vec<Step>) -> Result<Snapshot, cluster_snapshot::ReadError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let locations = ConfigLocations {
        kserve_namespace: "kserve".to_string(),
        knative_namespace: "knative-serving".to_string(),
    };
    let server = tokio::spawn(serve(handle, steps));
    let result = cluster_snapshot::read(&client, &locations).await;
    let mut handle = server.await.expect("the script ran");
    drop(client);
    assert!(
        handle.next_request().await.is_none(),
        "no request beyond the script"
    );
    result
}

/// The objects of a fixture dump, by kind.
fn fixture(name: &str) -> Vec<(Kind, Value)> {
    let path = format!(
        "{}/tests/fixtures/analyze/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let value = Value::deserialize(document).unwrap();
        let items = match value["kind"].as_str() {
            Some("List") => value["items"].as_array().unwrap().clone(),
            _ => vec![value],
        };
        for item in items {
            let kind = Kind::of(
                item["apiVersion"].as_str().unwrap(),
                item["kind"].as_str().unwrap(),
            )
            .unwrap();
            objects.push((kind, item));
        }
    }
    objects
}

fn of_kind(objects: &[(Kind, Value)], kind: Kind) -> Vec<Value> {
    objects
        .iter()
        .filter(|(candidate, _)| *candidate == kind)
        .map(|(_, object)| object.clone())
        .collect()
}

fn config_of(objects: &[(Kind, Value)], name: &str) -> Option<Value> {
    of_kind(objects, Kind::ConfigMap)
        .into_iter()
        .find(|object| object["metadata"]["name"] == name)
}

/// The script of a cluster holding `objects`, serving the kinds of `served` (newest version)
/// and no version of the others; Services come in two pages.
fn script(objects: &[(Kind, Value)], served: &[Kind]) -> Vec<Step> {
    let mut steps = Vec::new();
    for kind in Kind::ALL {
        if kind == Kind::ConfigMap {
            continue;
        }
        let version = kind.versions()[0];
        if !served.contains(&kind) {
            steps.extend(
                kind.versions()
                    .iter()
                    .map(|version| not_served(kind, version)),
            );
            continue;
        }
        let items = of_kind(objects, kind);
        if kind == Kind::Service && items.len() > 1 {
            let (first, second) = items.split_at(1);
            steps.push(page(kind, version, None, first.to_vec(), Some("page-2")));
            steps.push(page(kind, version, Some("page-2"), second.to_vec(), None));
        } else {
            steps.push(list(kind, version, items));
        }
    }
    steps.push(config_map(
        "kserve",
        "inferenceservice-config",
        config_of(objects, "inferenceservice-config"),
    ));
    steps.push(config_map(
        "knative-serving",
        "config-network",
        config_of(objects, "config-network"),
    ));
    steps
}

fn codes(snapshot: &Snapshot) -> BTreeSet<&'static str> {
    analyze::analyze(snapshot, None, &Policy::default(), &Scope::default())
        .findings
        .iter()
        .map(|finding| finding.code.as_str())
        .collect()
}

const WITHOUT_ISTIO_AND_KNATIVE: [Kind; 7] = [
    Kind::InferenceService,
    Kind::Ingress,
    Kind::HttpRoute,
    Kind::Gateway,
    Kind::Service,
    Kind::IngressClass,
    Kind::Namespace,
];

#[tokio::test]
async fn a_healthy_cluster_read_live_gives_no_finding() {
    let objects = fixture("healthy-gateway");
    let snapshot = read(script(&objects, &WITHOUT_ISTIO_AND_KNATIVE))
        .await
        .expect("the cluster is read");
    assert_eq!(
        snapshot.absent,
        BTreeSet::from([
            Kind::VirtualService,
            Kind::IstioGateway,
            Kind::DomainMapping
        ]),
        "kinds whose CRD is absent"
    );
    assert_eq!(
        snapshot.list(Kind::Service).len(),
        of_kind(&objects, Kind::Service).len(),
        "both pages of Services"
    );
    assert_eq!(codes(&snapshot), BTreeSet::new());
}

#[tokio::test]
async fn an_older_version_is_read_when_the_newest_is_not_served() {
    let objects = fixture("healthy-gateway");
    let mut steps = script(&objects, &WITHOUT_ISTIO_AND_KNATIVE);
    let at = steps
        .iter()
        .position(|step| step.path == "/apis/gateway.networking.k8s.io/v1/gateways")
        .unwrap();
    steps[at] = not_served(Kind::Gateway, "v1");
    steps.insert(
        at + 1,
        list(Kind::Gateway, "v1beta1", of_kind(&objects, Kind::Gateway)),
    );
    let snapshot = read(steps).await.unwrap();
    assert!(!snapshot.absent.contains(&Kind::Gateway));
    assert_eq!(codes(&snapshot), BTreeSet::new());
}

#[tokio::test]
async fn a_route_kind_the_cluster_does_not_serve_is_named_in_ia0301() {
    // Knative mode with VirtualServices, on a cluster without Istio.
    let objects = fixture("healthy-virtualservice");
    let served = [
        Kind::InferenceService,
        Kind::Ingress,
        Kind::Service,
        Kind::IngressClass,
        Kind::Namespace,
    ];
    let snapshot = read(script(&objects, &served)).await.unwrap();
    let report = analyze::analyze(&snapshot, None, &Policy::default(), &Scope::default());
    let codes: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["IA0301"]);
    assert!(
        report.findings[0]
            .message
            .contains("the cluster does not serve virtualservices.networking.istio.io"),
        "{}",
        report.findings[0].message
    );
    assert!(report.findings[0].fix.contains("install Istio"));
}

#[tokio::test]
async fn a_refused_list_names_the_resource_and_the_cluster_role() {
    let mut steps = vec![list(Kind::InferenceService, "v1beta1", Vec::new())];
    let mut refused = list(Kind::Ingress, "v1", Vec::new());
    refused.status = StatusCode::FORBIDDEN;
    refused.answer = status(StatusCode::FORBIDDEN, "Forbidden");
    steps.push(refused);
    let error = read(steps).await.expect_err("a 403 ends the read");
    let message = error.to_string();
    assert!(
        message.contains("cannot read ingresses (networking.k8s.io/v1)"),
        "{message}"
    );
    assert!(message.contains("manifests/analyze"), "{message}");
}

#[tokio::test]
async fn a_failed_config_map_read_is_an_error() {
    let objects = fixture("healthy-gateway");
    let mut steps = script(&objects, &WITHOUT_ISTIO_AND_KNATIVE);
    steps.pop();
    let failing = steps.last_mut().unwrap();
    failing.status = StatusCode::INTERNAL_SERVER_ERROR;
    failing.answer = status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError");
    let error = read(steps).await.expect_err("a 500 ends the read");
    assert!(
        error
            .to_string()
            .contains("cannot read ConfigMap kserve/inferenceservice-config"),
        "{error}"
    );
}
