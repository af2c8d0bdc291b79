//! The admission layer: decode a review, dispatch on (group, kind, sub-resource, operation),
//! plan, and answer with a denial naming every violation or a JSON Patch.
//!
//! Pure CPU and no I/O: the current config and policy are read from memory ([`AdmissionState`]),
//! which a config watcher may swap at any time; nothing here calls the API server.

pub mod patch;
pub mod respond;
pub mod review;

/// The state admission reads; it lives in [`crate::cluster_view`], which the reconciler and the
/// config watch write.
pub use crate::cluster_view::AdmissionState;
use crate::config::{CONFIG_MAP_NAME, ConfigError, KserveConfig};
use crate::isvc::{self, InferenceService, ReadError};
use crate::plan::{self, Rejection};
use crate::violation::{self, Violation};
use respond::Denial;
use review::{Request, Unusable};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which admission endpoint a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Mutate,
    Validate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mutate => "mutate",
            Self::Validate => "validate",
        }
    }
}

/// What a review came to, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allowed,
    Denied,
    Patched,
    /// The body or the request could not be used.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Patched => "patched",
            Self::Error => "error",
        }
    }
}

/// What the admission layer answered, plus the labels the server records in metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionReply {
    /// 200 for every AdmissionReview answer; 400 for a body that is not an AdmissionReview.
    pub http_status: u16,
    /// JSON, sent with content type `application/json`.
    pub body: Vec<u8>,
    /// `InferenceService`, `ConfigMap`, another kind, or `unknown`.
    pub kind: String,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT` or `unknown`.
    pub operation: String,
    pub outcome: Outcome,
}

/// The admission logic, called by the server for every review. Pure CPU: microseconds.
pub trait AdmissionHandler: Send + Sync + 'static {
    fn handle(&self, endpoint: Endpoint, body: &[u8]) -> AdmissionReply;
}

/// The webhook: [`AdmissionHandler`] over an [`AdmissionState`].
pub struct Webhook {
    state: Arc<AdmissionState>,
}

impl Webhook {
    pub fn new(state: Arc<AdmissionState>) -> Self {
        Self { state }
    }
}

impl AdmissionHandler for Webhook {
    fn handle(&self, endpoint: Endpoint, body: &[u8]) -> AdmissionReply {
        if let Some(review) = review::TypedReview::decode(body) {
            return self.handle_inference_service(endpoint, review.request);
        }
        let request = match review::decode(body) {
            Err(error) => {
                return AdmissionReply {
                    http_status: 400,
                    body: respond::error_body(&error.to_string()),
                    kind: "unknown".into(),
                    operation: "unknown".into(),
                    outcome: Outcome::Error,
                };
            }
            Ok(Err(Unusable { uid, message })) => {
                return AdmissionReply {
                    http_status: 200,
                    body: respond::deny(&uid, Denial::BadRequest, &message, &[]),
                    kind: "unknown".into(),
                    operation: "unknown".into(),
                    outcome: Outcome::Error,
                };
            }
            Ok(Ok(request)) => request,
        };
        record_identity(
            &request.uid,
            request.namespace.as_deref(),
            request.name.as_deref(),
        );
        let answer = answer(endpoint, &request, &self.state);
        AdmissionReply {
            http_status: 200,
            body: answer.body(&request.uid),
            kind: request.kind.kind.clone(),
            operation: request.operation.clone(),
            outcome: answer.outcome(),
        }
    }
}

impl Webhook {
    /// The hot path: an ISVC create or update whose object the review decoding already read.
    fn handle_inference_service(
        &self,
        endpoint: Endpoint,
        request: Request<crate::isvc::TypedObject>,
    ) -> AdmissionReply {
        record_identity(
            &request.uid,
            request.namespace.as_deref(),
            request.name.as_deref(),
        );
        let namespace = request.namespace.as_deref().unwrap_or("default");
        let object = request
            .object
            .expect("TypedReview::decode keeps only requests with an object");
        let answer = match InferenceService::from_typed(object, namespace) {
            Ok((isvc, facts)) => inference_service_answer(endpoint, &isvc, facts, &self.state),
            Err(error) => unreadable_answer(error),
        };
        AdmissionReply {
            http_status: 200,
            body: answer.body(&request.uid),
            kind: request.kind.kind,
            operation: request.operation,
            outcome: answer.outcome(),
        }
    }
}

/// Fills the server's `review` span (see `server`) with what only the decoded request has.
fn record_identity(uid: &str, namespace: Option<&str>, name: Option<&str>) {
    let span = tracing::Span::current();
    span.record("uid", uid);
    span.record("namespace", namespace.unwrap_or_default());
    span.record("name", name.unwrap_or_default());
}

/// The decision for one request, before serialisation.
#[derive(Debug)]
enum Answer {
    Allow {
        patch: Option<json_patch::Patch>,
        warnings: Vec<String>,
    },
    Deny {
        denial: Denial,
        message: String,
        warnings: Vec<String>,
    },
}

impl Answer {
    fn allow() -> Self {
        Self::Allow {
            patch: None,
            warnings: Vec::new(),
        }
    }

    fn unusable(message: impl Into<String>) -> Self {
        Self::Deny {
            denial: Denial::BadRequest,
            message: message.into(),
            warnings: Vec::new(),
        }
    }

    fn rejected(violations: &[Violation], warnings: Vec<String>) -> Self {
        // 403 when every problem is a policy refusal; any malformed input makes it 422.
        let denial = if violations.iter().all(|violation| violation.forbidden) {
            Denial::Forbidden
        } else {
            Denial::Invalid
        };
        Self::Deny {
            denial,
            message: violation::join(violations),
            warnings,
        }
    }

    fn outcome(&self) -> Outcome {
        match self {
            Self::Allow {
                patch: Some(patch), ..
            } if !patch.0.is_empty() => Outcome::Patched,
            Self::Allow { .. } => Outcome::Allowed,
            Self::Deny {
                denial: Denial::BadRequest,
                ..
            } => Outcome::Error,
            Self::Deny { .. } => Outcome::Denied,
        }
    }

    fn body(&self, uid: &str) -> Vec<u8> {
        match self {
            Self::Allow { patch, warnings } => respond::allow(uid, patch.as_ref(), warnings),
            Self::Deny {
                denial,
                message,
                warnings,
            } => respond::deny(uid, *denial, message, warnings),
        }
    }
}

fn answer(endpoint: Endpoint, request: &Request, state: &AdmissionState) -> Answer {
    let writes = matches!(request.operation.as_str(), "CREATE" | "UPDATE");
    let group = request.kind.group.as_str();
    let kind = request.kind.kind.as_str();
    match (group, kind, request.sub_resource.as_deref()) {
        _ if !writes => Answer::allow(),
        ("serving.kserve.io", isvc::KIND, None) => inference_service(endpoint, request, state),
        ("serving.kserve.io", isvc::KIND, Some("status")) if endpoint == Endpoint::Mutate => {
            status(request, state)
        }
        ("", "ConfigMap", None)
            if request.name.as_deref() == Some(CONFIG_MAP_NAME)
                && request.namespace.as_deref() == Some(state.config_namespace()) =>
        {
            config_map(request)
        }
        _ => Answer::allow(),
    }
}

/// The raw JSON of the request's object, which CREATE and UPDATE must carry.
fn raw_object(request: &Request) -> Result<&str, Answer> {
    match request.object.as_deref().map(RawValue::get) {
        Some(text) if text != "null" => Ok(text),
        _ => Err(Answer::unusable(format!(
            "request.object is missing from a {} request",
            request.operation
        ))),
    }
}

/// The request's object as a JSON object, for the paths that patch or read it whole.
fn object(request: &Request) -> Result<Value, Answer> {
    let text = raw_object(request)?;
    match serde_json::from_str::<Value>(text) {
        Ok(object @ Value::Object(_)) => Ok(object),
        _ => Err(Answer::unusable(NOT_AN_OBJECT)),
    }
}

const NOT_AN_OBJECT: &str = "request.object is not a JSON object";

/// Plans an ISVC; `Err` is the answer to give instead.
fn plan_isvc(isvc: &InferenceService, state: &AdmissionState) -> Result<plan::RoutePlan, Answer> {
    plan::plan(isvc, &state.config(), state.policy()).map_err(
        |Rejection {
             violations,
             warnings,
         }| Answer::rejected(&violations, warnings),
    )
}

fn inference_service(endpoint: Endpoint, request: &Request, state: &AdmissionState) -> Answer {
    let text = match raw_object(request) {
        Ok(text) => text,
        Err(answer) => return answer,
    };
    let namespace = request.namespace.as_deref().unwrap_or("default");
    match InferenceService::from_json_text(text, namespace) {
        Ok((isvc, facts)) => inference_service_answer(endpoint, &isvc, facts, state),
        Err(error) => unreadable_answer(error),
    }
}

/// The answer for an ISVC that cannot be read. An object being deleted is still allowed: it
/// only sheds finalizers, and refusing it could leave it undeletable.
fn unreadable_answer(error: ReadError) -> Answer {
    match error {
        ReadError::Invalid { facts, .. } if facts.being_deleted => Answer::allow(),
        ReadError::Invalid { violations, .. } => Answer::rejected(&violations, Vec::new()),
        ReadError::NotJson(_) | ReadError::NotAnObject => Answer::unusable(NOT_AN_OBJECT),
    }
}

/// Validation and mutation of an ISVC create or update, shared by both decoding paths.
fn inference_service_answer(
    endpoint: Endpoint,
    isvc: &InferenceService,
    facts: isvc::ObjectFacts,
    state: &AdmissionState,
) -> Answer {
    // An object being deleted only sheds finalizers: never block it on routing rules, or a
    // config change could leave it undeletable.
    if facts.being_deleted {
        return Answer::allow();
    }
    let planned = match plan_isvc(isvc, state) {
        Ok(planned) => planned,
        Err(answer) => return answer,
    };
    if let Some(refusal) = host_conflicts(&planned, isvc, state) {
        return refusal;
    }
    let patch = match endpoint {
        Endpoint::Mutate => Some(patch::annotations(
            &isvc.annotations,
            facts.has_annotations,
            &planned,
        )),
        Endpoint::Validate => None,
    };
    Answer::Allow {
        patch,
        warnings: planned.warnings,
    }
}

/// One team must not take another team's traffic: a host another ISVC already holds is refused
/// (403), naming the holder.
fn host_conflicts(
    planned: &plan::RoutePlan,
    isvc: &InferenceService,
    state: &AdmissionState,
) -> Option<Answer> {
    let index = state.host_index()?;
    let conflicts = index.conflicts(&planned.namespace, &planned.name, &planned.hosts);
    if conflicts.is_empty() {
        return None;
    }
    let overrides_host = isvc.annotations.contains_key(plan::annotations::HOST);
    let field = if overrides_host {
        plan::annotations::annotation_field(plan::annotations::HOST)
    } else {
        "metadata.name".to_string()
    };
    let violations: Vec<Violation> = conflicts
        .into_iter()
        .map(|(host, holder)| {
            Violation::forbidden(
                field.clone(),
                format!("the host \"{host}\" is already held by InferenceService {holder}"),
            )
        })
        .collect();
    Some(Answer::rejected(&violations, planned.warnings.clone()))
}

/// The status mutator: whoever writes the status, its URLs say what the routes serve. An ISVC
/// that does not plan (the config changed under it) keeps its status as written. With
/// `--route-owner isvc-ingress`, another writer's `IngressReady` gives way to the one
/// isvc-ingress wrote ([`patch::keep_ingress_ready`]).
fn status(request: &Request, state: &AdmissionState) -> Answer {
    let object = match object(request) {
        Ok(object) => object,
        Err(answer) => return answer,
    };
    let namespace = request.namespace.as_deref().unwrap_or("default");
    let Ok(isvc) = InferenceService::from_json(&object, namespace) else {
        return Answer::allow();
    };
    match plan_isvc(&isvc, state) {
        Ok(planned) => {
            let (patch, disagreements) = patch::status(&object, &planned);
            if let Some(message) = plan::status::kept_message(&disagreements) {
                tracing::warn!(
                    namespace = %isvc.namespace,
                    name = %isvc.name,
                    %message,
                    "status URLs kept as the platform wrote them"
                );
            }
            for disagreement in &disagreements {
                state.count_kept_url(&disagreement.field);
            }
            let mut patch = patch;
            if state.policy().route_owner == plan::RouteOwner::IsvcIngress
                && !written_by_isvc_ingress(request)
            {
                let old = request
                    .old_object
                    .as_ref()
                    .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
                // Against the object as the URL operations leave it, so both apply in turn.
                let mut patched = object.clone();
                if json_patch::patch(&mut patched, &patch).is_ok() {
                    let kept = patch::keep_ingress_ready(
                        old.as_ref().and_then(|old| old.get("status")),
                        patched.get("status"),
                    );
                    patch.0.extend(kept.0);
                }
            }
            Answer::Allow {
                patch: Some(patch),
                warnings: Vec::new(),
            }
        }
        Err(_) => Answer::allow(),
    }
}

/// Whether the request is a write of isvc-ingress's reconciler: its `fieldManager`.
fn written_by_isvc_ingress(request: &Request) -> bool {
    request
        .options
        .as_ref()
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .is_some_and(|options| options["fieldManager"] == plan::FIELD_MANAGER)
}

/// Refuses an `inferenceservice-config` whose routing keys KServe would choke on.
fn config_map(request: &Request) -> Answer {
    let object = match object(request) {
        Ok(object) => object,
        Err(answer) => return answer,
    };
    let data = match object.get("data") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(data) => match serde_json::from_value::<BTreeMap<String, String>>(data.clone()) {
            Ok(data) => data,
            Err(error) => {
                return Answer::unusable(format!("data is not a map of strings: {error}"));
            }
        },
    };
    match KserveConfig::from_config_map_data(&data) {
        Ok(config) => Answer::Allow {
            patch: None,
            warnings: config.warnings,
        },
        Err(ConfigError::Invalid {
            violations,
            warnings,
        }) => Answer::rejected(&violations, warnings),
        Err(error @ ConfigError::Unreadable(_)) => Answer::unusable(error.to_string()),
    }
}
