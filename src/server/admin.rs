//! The plain-HTTP admin port: `/livez`, `/readyz`, `/metrics`.
//!
//! It is separate from the webhook port so that kubelet probes and Prometheus scrapes need no
//! TLS client setup, and so that readiness stays observable while the webhook port drains: the
//! admin listener stops only after the webhook listener has finished.
//!
//! It has the webhook port's limits (see [`super::limits`]): a cap on connections with
//! eviction, the header-read and idle timeouts, and a deadline on a new connection's first
//! bytes, so that nothing that reaches it can starve kubelet's probes.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::limits::{self, Connections, SlotAcceptor};
use super::preface::PrefaceAcceptor;
use super::readiness::Readiness;
use super::webhook::{json_error, not_found};
use crate::metrics::Metrics;

/// Content type of `/metrics`: what prometheus-client's text encoder produces.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Liveness path of the admin port (the Deployment's livenessProbe).
pub const LIVEZ_PATH: &str = "/livez";
/// Readiness path of the admin port (the Deployment's readinessProbe).
pub const READYZ_PATH: &str = "/readyz";
/// Prometheus scrape path of the admin port.
pub const METRICS_PATH: &str = "/metrics";

#[derive(Clone)]
struct AdminState {
    metrics: Metrics,
    readiness: Readiness,
}

/// The admin router.
pub fn router(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route(LIVEZ_PATH, get(livez))
        .route(READYZ_PATH, get(readyz))
        .route(METRICS_PATH, get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed_get)
        .with_state(AdminState { metrics, readiness })
}

/// How long a probe or scrape under way may take to finish once the admin port stops (they
/// take milliseconds); then its connection is closed.
const DRAIN: Duration = Duration::from_secs(1);

/// The limits of the admin port.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    /// `--admin-max-connections`.
    pub max_connections: usize,
    /// `--idle-timeout`.
    pub idle_timeout: Duration,
    /// `--header-read-timeout`.
    pub header_read_timeout: Duration,
}

/// The server of the admin router on `listener`, which runs until `stop` is cancelled; fails
/// at once if the listener cannot be made non-blocking.
pub fn serve_admin(
    listener: std::net::TcpListener,
    limits: AdminLimits,
    metrics: Metrics,
    readiness: Readiness,
    stop: CancellationToken,
) -> std::io::Result<impl Future<Output = std::io::Result<()>> + Send + 'static> {
    listener.set_nonblocking(true)?;
    let connections = Connections::new("admin", limits.max_connections);
    let handle = axum_server::Handle::new();
    let mut server = axum_server::from_tcp(listener)?
        .acceptor(PrefaceAcceptor::new(
            SlotAcceptor::new(connections.clone()),
            limits.header_read_timeout,
        ))
        .handle(handle.clone());
    limits::configure_http(server.http_builder(), limits.header_read_timeout);
    tokio::spawn(connections.sweep(limits.idle_timeout, stop.clone()));
    tokio::spawn(async move {
        stop.cancelled().await;
        handle.graceful_shutdown(Some(DRAIN));
    });
    Ok(server.serve(router(metrics, readiness).into_make_service()))
}

/// Live while the process can answer at all.
async fn livez() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let reasons = state.readiness.unready_reasons();
    if reasons.is_empty() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", reasons.join(", ")),
        )
            .into_response()
    }
}

async fn metrics_text(State(state): State<AdminState>) -> Response {
    match state.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        Err(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics"),
    }
}

async fn method_not_allowed_get() -> Response {
    let mut response = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed; use GET",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
    response
}
