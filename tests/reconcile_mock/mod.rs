//! A scripted mock API server for reconcile tests (the tower-test pattern of kube's
//! `mock_tests.rs`): each test lists the requests the reconcile must make, in order, with method,
//! path, query and body pinned, and the answers to give; a request beyond the script fails the
//! test, and so does one that is missing.
#![allow(dead_code)]

#[path = "../stored_routes/mod.rs"]
mod stored_routes;
pub use stored_routes::{accepted, stored};

use http::{Method, Request, Response, StatusCode};
use isvc_ingress::admission::AdmissionState;
use isvc_ingress::config::KserveConfig;
use isvc_ingress::plan::{Policy, RouteOwner};
use isvc_ingress::reconcile::decide::{DesiredStatus, Readiness, StatusUrls, status_patch};
use isvc_ingress::reconcile::{
    CachedInferenceService, Context, HostIndex, Leadership, ReconcileMetrics, RouteCache,
    ServedKinds, reconcile,
};
use kube::api::DynamicObject;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::support;

/// The fixed "now" of every test, so `lastTransitionTime` is pinned.
pub const NOW: &str = "2025-01-01T00:00:00Z";
pub const UID: &str = "0c7a4a3e-uid";
pub const RESOURCE_VERSION: &str = "41";

pub fn now() -> String {
    NOW.to_string()
}

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// A check of a request body beyond (or instead of) exact equality.
pub type BodyCheck = Box<dyn Fn(&Value) + Send>;

/// One expected request and the answer to it.
pub struct Step {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: Option<&'static str>,
    /// The exact body, or None to skip the check (then `check` may inspect it).
    pub body: Option<Value>,
    pub check: Option<BodyCheck>,
    pub status: StatusCode,
    pub response: Value,
    /// Run when the request arrives, before answering (e.g. lose the lease).
    pub on_request: Option<Box<dyn FnOnce() + Send>>,
}

impl Step {
    fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            content_type: None,
            body: None,
            check: None,
            status: StatusCode::OK,
            response: json!({}),
            on_request: None,
        }
    }

    pub fn respond(mut self, status: StatusCode, response: Value) -> Self {
        self.status = status;
        self.response = response;
        self
    }

    pub fn then(mut self, action: impl FnOnce() + Send + 'static) -> Self {
        self.on_request = Some(Box::new(action));
        self
    }

    pub fn checking(mut self, check: impl Fn(&Value) + Send + 'static) -> Self {
        self.check = Some(Box::new(check));
        self
    }
}

/// Path of a namespaced object of `api_version` and `plural`.
pub fn object_path(api_version: &str, plural: &str, namespace: &str, name: &str) -> String {
    let prefix = if api_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{api_version}")
    };
    format!("{prefix}/namespaces/{namespace}/{plural}/{name}")
}

pub fn plural_of(kind: &str) -> &'static str {
    match kind {
        "Ingress" => "ingresses",
        "HTTPRoute" => "httproutes",
        "VirtualService" => "virtualservices",
        "Service" => "services",
        "DomainMapping" => "domainmappings",
        other => panic!("no plural for {other}"),
    }
}

/// Server-side apply of `route` (a generated route's JSON): the body is the object exactly.
/// The answer is the object as the API server would return it (uid, resourceVersion added).
pub fn apply(route: &Value) -> Step {
    let (namespace, name) = namespaced_name(route);
    let mut step = Step::new(
        Method::PATCH,
        object_path(
            route["apiVersion"].as_str().unwrap(),
            plural_of(route["kind"].as_str().unwrap()),
            &namespace,
            &name,
        ),
    );
    step.query = pairs(&[("fieldManager", "isvc-ingress"), ("force", "true")]);
    step.content_type = Some("application/apply-patch+yaml");
    step.body = Some(route.clone());
    step.response = stored(route, &format!("{name}-uid"));
    step
}

/// A delete of the route `kind` `namespace/name`, preconditioned on `uid`.
pub fn delete(api_version: &str, kind: &str, namespace: &str, name: &str, uid: &str) -> Step {
    let mut step = Step::new(
        Method::DELETE,
        object_path(api_version, plural_of(kind), namespace, name),
    );
    step.body = Some(json!({ "preconditions": { "uid": uid } }));
    step.response = json!({ "kind": "Status", "apiVersion": "v1", "status": "Success" });
    step
}

/// A merge patch of the ISVC status with exactly `body`.
pub fn patch_status(namespace: &str, name: &str, body: Value) -> Step {
    let mut step = Step::new(
        Method::PATCH,
        format!(
            "/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}/status"
        ),
    );
    step.content_type = Some("application/merge-patch+json");
    // Under our field manager, so managedFields names isvc-ingress as the URLs' writer.
    step.query = pairs(&[("fieldManager", "isvc-ingress")]);
    step.body = Some(body);
    step.response = json!({ "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                            "metadata": { "name": name, "namespace": namespace } });
    step
}

/// An `events.k8s.io/v1` Event on the ISVC `name` with this type, reason and note.
pub fn event(namespace: &str, name: &str, kind: &str, reason: &str, note_contains: &str) -> Step {
    event_on(namespace, name, UID, kind, reason, note_contains)
}

/// [`event`] on the ISVC with this uid.
pub fn event_on(
    namespace: &str,
    name: &str,
    uid: &str,
    kind: &str,
    reason: &str,
    note_contains: &str,
) -> Step {
    let uid = uid.to_string();
    let mut step = Step::new(
        Method::POST,
        format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events"),
    );
    let (kind, reason, note, name) = (
        kind.to_string(),
        reason.to_string(),
        note_contains.to_string(),
        name.to_string(),
    );
    step.check = Some(Box::new(move |body: &Value| {
        assert_eq!(body["type"], kind.as_str(), "{body:#}");
        assert_eq!(body["reason"], reason.as_str(), "{body:#}");
        assert_eq!(body["action"], "Reconcile");
        assert_eq!(body["reportingController"], "isvc-ingress");
        assert_eq!(body["regarding"]["kind"], "InferenceService");
        assert_eq!(body["regarding"]["name"], name.as_str());
        assert_eq!(body["regarding"]["uid"], uid.as_str());
        let text = body["note"].as_str().unwrap_or_default();
        assert!(text.contains(&note), "note {text:?} lacks {note:?}");
    }));
    step.status = StatusCode::CREATED;
    step
}

/// An API error answer.
pub fn api_error(code: u16, reason: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": format!("mock {reason}") })
}

fn namespaced_name(object: &Value) -> (String, String) {
    (
        object["metadata"]["namespace"]
            .as_str()
            .unwrap()
            .to_string(),
        object["metadata"]["name"].as_str().unwrap().to_string(),
    )
}

/// An ISVC as the reconciler's reflector holds it.
pub fn cached(value: Value) -> CachedInferenceService {
    CachedInferenceService::from_value(value).expect("an ISVC object")
}

pub fn dynamic(value: Value) -> DynamicObject {
    serde_json::from_value(value).expect("a Kubernetes object")
}

pub fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = expected
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    pairs.sort();
    pairs
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let query = query.unwrap_or_default();
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_string(), value.to_string())
        })
        .collect();
    pairs.sort();
    pairs
}

/// Serves `steps` in order, then fails on any further request until `done` resolves.
async fn serve(mut handle: Handle, steps: Vec<Step>) -> Handle {
    for (index, step) in steps.into_iter().enumerate() {
        let next = tokio::time::timeout(Duration::from_secs(5), handle.next_request()).await;
        let (request, respond) = next
            .unwrap_or_else(|_| {
                panic!(
                    "step {index}: expected {} {}, no request came",
                    step.method, step.path
                )
            })
            .unwrap_or_else(|| {
                panic!(
                    "step {index}: the client went away before {} {}",
                    step.method, step.path
                )
            });
        let (parts, body) = request.into_parts();
        assert_eq!(
            (parts.method.clone(), parts.uri.path().to_string()),
            (step.method.clone(), step.path.clone()),
            "step {index}: wrong request"
        );
        assert_eq!(
            query_pairs(parts.uri.query()),
            step.query,
            "step {index}: query of {}",
            step.path
        );
        if let Some(content_type) = step.content_type {
            assert_eq!(
                parts
                    .headers
                    .get("content-type")
                    .and_then(|value| value.to_str().ok()),
                Some(content_type),
                "step {index}: content type"
            );
        }
        let bytes = body.collect_bytes().await.expect("request body");
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        if let Some(expected) = &step.body {
            assert_eq!(
                &body, expected,
                "step {index}: body of {} {}",
                step.method, step.path
            );
        }
        if let Some(check) = &step.check {
            check(&body);
        }
        if let Some(action) = step.on_request {
            action();
        }
        let response = Response::builder()
            .status(step.status)
            .body(Body::from(serde_json::to_vec(&step.response).unwrap()))
            .unwrap();
        respond.send_response(response);
    }
    handle
}

/// A test harness: a mock client, the reconciler's context, and the leader switch.
pub struct Harness {
    pub context: Arc<Context>,
    pub leader: watch::Sender<bool>,
    pub state: Arc<AdmissionState>,
    pub metrics: Arc<ReconcileMetrics>,
    pub hosts: HostIndex,
    handle: Option<Handle>,
}

impl Harness {
    pub fn new(config: KserveConfig, live: Vec<Value>) -> Self {
        Self::with(config, live, ServedKinds::all())
    }

    pub fn with(config: KserveConfig, live: Vec<Value>, served: ServedKinds) -> Self {
        Self::with_policy(config, live, served, writer_policy())
    }

    pub fn with_policy(
        config: KserveConfig,
        live: Vec<Value>,
        served: ServedKinds,
        policy: Policy,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let state = Arc::new(AdmissionState::new(config, policy, "kserve"));
        let (leader, receiver) = watch::channel(true);
        let metrics = Arc::new(ReconcileMetrics::default());
        let hosts = HostIndex::new();
        let context = Context::new(
            client,
            state.clone(),
            served,
            RouteCache::with_objects(live.into_iter().map(dynamic)),
            hosts.clone(),
            Leadership::from_receiver(receiver),
            metrics.clone(),
        )
        .with_clock(now);
        Self {
            context: Arc::new(context),
            leader,
            state,
            metrics,
            hosts,
            handle: Some(handle),
        }
    }

    /// Reconciles `isvc` while the mock serves exactly `steps`; fails on a request beyond them.
    pub async fn reconcile(
        &mut self,
        isvc: &Value,
        steps: Vec<Step>,
    ) -> Result<Action, isvc_ingress::reconcile::Error> {
        let handle = self.handle.take().expect("the mock handle");
        let object = Arc::new(cached(isvc.clone()));
        let running = tokio::spawn(reconcile(object, self.context.clone()));
        let mut handle = serve(handle, steps).await;
        let result = tokio::select! {
            result = running => result.expect("reconcile does not panic"),
            extra = handle.next_request() => {
                let (request, _) = extra.expect("a request");
                panic!("unexpected request: {} {}", request.method(), request.uri());
            }
        };
        self.handle = Some(handle);
        result
    }
}

/// The policy of the harness: isvc-ingress writes the routes (so there are routes to write).
pub fn writer_policy() -> Policy {
    Policy {
        route_owner: RouteOwner::IsvcIngress,
        ..Policy::default()
    }
}

/// An ISVC object as the cache holds it: uid, resourceVersion and creationTimestamp set.
pub fn isvc_object(name: &str, namespace: &str, spec: Value) -> Value {
    let mut object = support::isvc_json(name, namespace, spec);
    object["metadata"]["resourceVersion"] = json!(RESOURCE_VERSION);
    object["metadata"]["creationTimestamp"] = json!("2024-06-01T00:00:00Z");
    object
}

/// The desired routes of `isvc` under `config`, as JSON, each checked against its CRD schema.
pub fn planned_routes(isvc: &Value, config: &KserveConfig) -> Vec<Value> {
    support::plan_ok_with(isvc, config, &writer_policy()).1
}

/// The ISVC with the status a finished reconcile leaves (URLs and `IngressReady`), so a
/// reconcile of it has nothing to write.
pub fn settled(isvc: &Value, config: &KserveConfig, readiness: Readiness) -> Value {
    let (plan, _) = support::plan_ok_with(isvc, config, &writer_policy());
    let desired = DesiredStatus {
        urls: Some(StatusUrls::of(&plan, None, Default::default()).0),
        readiness: Some(readiness),
    };
    let patch = status_patch(None, None, &desired, NOW).expect("a status");
    let mut settled = isvc.clone();
    settled["status"] = patch["status"].clone();
    settled
}

/// The routes `isvc` would have after a first reconcile, as stored (HTTPRoutes accepted by
/// their Gateway).
pub fn live_routes(isvc: &Value, config: &KserveConfig) -> Vec<Value> {
    planned_routes(isvc, config)
        .iter()
        .map(|route| {
            let name = route["metadata"]["name"].as_str().unwrap();
            let mut object = stored(route, &format!("{name}-uid"));
            if object["kind"] == "HTTPRoute" {
                object["status"] = accepted();
            }
            object
        })
        .collect()
}

/// Status patch body of a first reconcile: URLs of the plan and `IngressReady` as given.
pub fn first_status(isvc: &Value, config: &KserveConfig, readiness: Readiness) -> Value {
    first_status_with(isvc, config, Some(readiness))
}

/// Status patch body of a first reconcile: URLs of the plan, and `IngressReady` as given or,
/// with None, left alone (another controller writes it).
pub fn first_status_with(
    isvc: &Value,
    config: &KserveConfig,
    readiness: Option<Readiness>,
) -> Value {
    let (plan, _) = support::plan_ok_with(isvc, config, &writer_policy());
    let desired = DesiredStatus {
        urls: Some(StatusUrls::of(&plan, None, Default::default()).0),
        readiness,
    };
    status_patch(None, Some(RESOURCE_VERSION), &desired, NOW).expect("a status patch")
}
