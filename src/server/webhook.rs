//! The HTTP side of the webhook port: routing, request checks, deadlines, panics, metrics.
//!
//! Order of checks for `POST /mutate` and `POST /validate`: content type (415), declared or
//! actual body size (413), then, under a deadline (504), the body, charged chunk by chunk to
//! the request-bytes budget ([`MAX_BYTES_IN_FLIGHT`], see [`super::budget`]; a request cut
//! there to make room is answered 408), and the admission handler with panics caught (500).
//! Every error body is JSON `{"error": "..."}`; every AdmissionReview answer, allowed or
//! denied, is the handler's own status (200), because a 5xx from a webhook makes the apiserver
//! apply `failurePolicy` instead of showing the user a reason.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use tracing::field::Empty;

use super::args::HandlerExecution;
use super::budget::{self, Charge, RequestBudget};
use super::{AdmissionHandler, AdmissionReply, Endpoint, Outcome};
use crate::duration::{format_duration, parse_duration};
use crate::metrics::Metrics;

/// Largest accepted request body: 3 MiB, the apiserver's own limit for an object in etcd
/// (1.5 MiB) twice over (an UPDATE review carries `object` and `oldObject`).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Most request bytes held at once, from a request's arrival to the end of its handler: its
/// headers and what has arrived of its body, never what it declares (see [`super::budget`]).
/// When a chunk does not fit, the requests whose bodies stalled longest are cut; when nobody
/// can be cut (every holder is in its handler or waiting), the chunk waits, within its
/// deadline, until bytes are given back.
///
/// Parsing multiplies a body in memory: a 3 MiB review whose object is one long JSON array
/// peaks near 60 MiB while it is decoded. Without a budget, five such requests sent at once by
/// anything that can reach the port exceed the Deployment's 256 MiB limit and get the pod
/// OOM-killed. 8 MiB admits two or three maximal bodies at a time (well under 256 MiB) and
/// hundreds of the 3-20 KB reviews kube-apiserver sends, so real traffic never waits.
pub const MAX_BYTES_IN_FLIGHT: usize = 8 * 1024 * 1024;

/// Path of the mutating webhook (ISVC create/update and `inferenceservices/status`); the
/// MutatingWebhookConfiguration in `manifests/base/webhooks.yaml` calls it.
pub const MUTATE_PATH: &str = "/mutate";
/// Path of the validating webhook (ISVCs and the `inferenceservice-config` ConfigMap).
pub const VALIDATE_PATH: &str = "/validate";

/// What the webhook routes share.
pub(crate) struct WebhookState {
    pub(crate) handler: Arc<dyn AdmissionHandler>,
    pub(crate) metrics: Metrics,
    pub(crate) request_timeout: Duration,
    pub(crate) execution: HandlerExecution,
    /// [`MAX_BYTES_IN_FLIGHT`] bytes, charged as requests arrive.
    pub(crate) budget: Arc<RequestBudget>,
}

impl WebhookState {
    pub(crate) fn new(
        handler: Arc<dyn AdmissionHandler>,
        metrics: Metrics,
        request_timeout: Duration,
        execution: HandlerExecution,
    ) -> Self {
        Self {
            handler,
            metrics,
            request_timeout,
            execution,
            budget: RequestBudget::new(MAX_BYTES_IN_FLIGHT),
        }
    }
}

/// The router of the TLS port.
pub(crate) fn router(state: Arc<WebhookState>) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route(MUTATE_PATH, post(mutate))
        .route(VALIDATE_PATH, post(validate))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed_post)
        .with_state(state)
        .layer(middleware::from_fn_with_state(metrics, count_http_errors))
}

/// A JSON error response `{"error": message}`.
pub(crate) fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() }).to_string();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

pub(crate) async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed_post() -> Response {
    let mut response = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed; use POST",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn count_http_errors(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        metrics.http_error(status.as_u16());
    }
    response
}

async fn mutate(State(state): State<Arc<WebhookState>>, request: Request) -> Response {
    admit(&state, Endpoint::Mutate, request).await
}

async fn validate(State(state): State<Arc<WebhookState>>, request: Request) -> Response {
    admit(&state, Endpoint::Validate, request).await
}

/// `application/json`, with or without parameters such as `; charset=utf-8`.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The `timeout` query parameter kube-apiserver appends (`?timeout=10s`), if present and valid.
pub(crate) fn requested_timeout(query: Option<&str>) -> Option<Duration> {
    let value = query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "timeout")?
        .1;
    match parse_duration(value) {
        Ok(d) => Some(d),
        Err(error) => {
            tracing::debug!(%error, "ignoring unparsable ?timeout=");
            None
        }
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Why a review did not reach an answer from the handler.
enum Failure {
    TooLarge,
    /// Cut while its body stalled, to make room in the request-bytes budget.
    Shed,
    BadBody(String),
    Panicked(String),
    /// The runtime is shutting down and cancelled the blocking task.
    Cancelled,
}

/// Reads the body, charging each chunk to `charge` as it arrives; the chunks are joined once
/// the body is complete (one copy, of the exact size).
async fn read_body(body: Body, charge: &mut Charge) -> Result<Bytes, Failure> {
    let mut body = Limited::new(body, MAX_BODY_BYTES);
    let mut chunks = Vec::new();
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            () = charge.shed() => return Err(Failure::Shed),
        };
        match frame {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    charge.add(data.len()).await.map_err(|_| Failure::Shed)?;
                    chunks.push(data);
                }
            }
            Some(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(Failure::TooLarge);
            }
            Some(Err(error)) => return Err(Failure::BadBody(error.to_string())),
        }
    }
    charge.received();
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().expect("one chunk"),
        _ => Bytes::from(chunks.concat()),
    })
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Runs the handler on `body`. `reserved` is the request's share of the budget: it is
/// released when the handler returns, even when the request has already been answered 504.
async fn run_handler(
    state: &WebhookState,
    endpoint: Endpoint,
    body: Bytes,
    reserved: Charge,
    span: &tracing::Span,
) -> Result<AdmissionReply, Failure> {
    let handler = Arc::clone(&state.handler);
    match state.execution {
        HandlerExecution::Blocking => {
            let span = span.clone();
            let task = tokio::task::spawn_blocking(move || {
                let _reserved = reserved;
                span.in_scope(|| handler.handle(endpoint, &body))
            });
            match task.await {
                Ok(reply) => Ok(reply),
                Err(error) if error.is_panic() => {
                    Err(Failure::Panicked(panic_message(&*error.into_panic())))
                }
                Err(_) => Err(Failure::Cancelled),
            }
        }
        HandlerExecution::Inline => {
            // The handler only gets `&self` and the body; AssertUnwindSafe is sound for
            // everything it can observe except its own interior mutability, which is its
            // responsibility (e.g. recovering poisoned locks).
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                span.in_scope(|| handler.handle(endpoint, &body))
            }))
            .map_err(|payload| Failure::Panicked(panic_message(&*payload)))
        }
    }
}

/// Reads, checks and answers one admission request.
///
/// The span `review` is opened here with `uid`, `kind`, `namespace`, `name`, `operation` and
/// `outcome` declared empty and entered around [`AdmissionHandler::handle`], so the handler
/// can fill `uid`, `namespace` and `name` with `tracing::Span::current().record(..)`; the
/// server records `kind`, `operation` and `outcome` from the reply.
async fn admit(state: &WebhookState, endpoint: Endpoint, request: Request) -> Response {
    let started = Instant::now();
    let _in_flight = state.metrics.in_flight();
    if !is_json(request.headers()) {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type must be application/json",
        );
    }
    if declared_length(request.headers()).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let deadline = requested_timeout(request.uri().query())
        .map_or(state.request_timeout, |t| t.min(state.request_timeout));
    let span = tracing::info_span!(
        "review",
        endpoint = endpoint.as_str(),
        uid = Empty,
        kind = Empty,
        namespace = Empty,
        name = Empty,
        operation = Empty,
        outcome = Empty,
    );
    let head = budget::header_bytes(request.headers()) + budget::REQUEST_OVERHEAD_BYTES;
    let work = async {
        let mut charge = state.budget.open();
        charge.add(head).await.map_err(|_| Failure::Shed)?;
        let body = read_body(request.into_body(), &mut charge).await?;
        run_handler(state, endpoint, body, charge, &span).await
    };
    let result = tokio::time::timeout(deadline, work).await;
    let elapsed = started.elapsed();
    let metrics = &state.metrics;
    let _entered = span.enter();
    match result {
        Ok(Ok(reply)) => {
            span.record("kind", reply.kind.as_str());
            span.record("operation", reply.operation.as_str());
            span.record("outcome", reply.outcome.as_str());
            metrics.observe_admission(
                endpoint,
                &reply.kind,
                &reply.operation,
                reply.outcome,
                reply.http_status,
                elapsed,
            );
            tracing::debug!(
                code = reply.http_status,
                latency_us = elapsed.as_micros() as u64,
                "admission review answered"
            );
            reply_response(reply)
        }
        Ok(Err(Failure::TooLarge)) => too_large(),
        Ok(Err(Failure::Shed)) => {
            tracing::debug!("request cut: its body stalled while the byte budget was full");
            json_error(
                StatusCode::REQUEST_TIMEOUT,
                "request body stalled while the server was at its request-bytes budget",
            )
        }
        Ok(Err(Failure::BadBody(error))) => json_error(
            StatusCode::BAD_REQUEST,
            format!("cannot read request body: {error}"),
        ),
        Ok(Err(Failure::Panicked(message))) => {
            span.record("outcome", Outcome::Error.as_str());
            metrics.handler_panicked(endpoint);
            metrics.observe_admission(endpoint, "unknown", "unknown", Outcome::Error, 500, elapsed);
            tracing::error!(panic = %message, "admission handler panicked");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the admission handler panicked",
            )
        }
        Ok(Err(Failure::Cancelled)) => {
            span.record("outcome", Outcome::Error.as_str());
            json_error(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down")
        }
        Err(_elapsed) => {
            span.record("outcome", Outcome::Error.as_str());
            metrics.observe_admission(endpoint, "unknown", "unknown", Outcome::Error, 504, elapsed);
            tracing::warn!(deadline = %format_duration(deadline), "admission review timed out");
            json_error(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "admission review not answered within {}",
                    format_duration(deadline)
                ),
            )
        }
    }
}

fn too_large() -> Response {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body larger than {MAX_BODY_BYTES} bytes"),
    )
}

fn reply_response(reply: AdmissionReply) -> Response {
    let status =
        StatusCode::from_u16(reply.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        reply.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_accepts_parameters_only_on_json() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (value, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON;charset=UTF-8", true),
            ("application/jsonx", false),
            ("text/plain", false),
            ("application/yaml", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&h), ok, "{value}");
        }
    }

    #[test]
    fn timeout_query() {
        assert_eq!(
            requested_timeout(Some("timeout=10s")),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            requested_timeout(Some("a=b&timeout=500ms")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            requested_timeout(Some("timeout=1m0s")),
            Some(Duration::from_secs(60))
        );
        assert_eq!(requested_timeout(Some("timeout=soon")), None);
        assert_eq!(requested_timeout(Some("other=1s")), None);
        assert_eq!(requested_timeout(None), None);
    }
}
