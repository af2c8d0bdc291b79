//! The plain-HTTP admin port: `/livez`, `/readyz`, `/metrics`.
//!
//! It is separate from the webhook port so that kubelet probes and Prometheus scrapes need no
//! TLS client setup, and so that readiness stays observable while the webhook port drains: the
//! admin listener stops only after the webhook listener has finished.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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

/// Serves the admin router on `listener` until `stop` is cancelled.
pub async fn serve_admin(
    listener: TcpListener,
    metrics: Metrics,
    readiness: Readiness,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, readiness))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

/// Binds the admin address (separately from serving, so the caller learns the port first).
pub async fn bind_admin(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
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
