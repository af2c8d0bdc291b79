//! Admin endpoints, readiness transitions and graceful shutdown.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ScriptedHandler, admin_get, eventually, review, sample, start};
use isvc_ingress::metrics::Metrics;
use isvc_ingress::server::admin::{AdminLimits, OPENMETRICS_CONTENT_TYPE, serve_admin};
use isvc_ingress::server::{CancellationToken, Readiness};
use isvc_ingress_testkit::client::HttpVersion;

#[tokio::test]
async fn admin_endpoints_report_liveness_readiness_and_metrics() {
    common::install_provider();
    // Before the server has loaded a certificate: live, not ready.
    let metrics = Metrics::new();
    let readiness = Readiness::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let limits = AdminLimits {
        max_connections: 64,
        idle_timeout: Duration::from_secs(60),
        header_read_timeout: Duration::from_secs(10),
    };
    let admin = tokio::spawn(
        serve_admin(
            listener,
            limits,
            metrics.clone(),
            readiness.clone(),
            stop.clone(),
        )
        .unwrap(),
    );
    assert_eq!(
        admin_get(addr, "/livez").await,
        (200, "text/plain; charset=utf-8".into(), "ok".into())
    );
    let (status, _, body) = admin_get(addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("serving certificate not loaded"), "{body}");
    assert!(body.contains("caches not synced"), "{body}");
    // Labelled families appear with their first sample; record one of each.
    metrics.observe_admission(
        isvc_ingress::server::Endpoint::Validate,
        "ConfigMap",
        "UPDATE",
        isvc_ingress::server::Outcome::Denied,
        200,
        Duration::from_micros(80),
    );
    metrics.handler_panicked(isvc_ingress::server::Endpoint::Mutate);
    metrics.http_error(413);
    let (status, content_type, body) = admin_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, OPENMETRICS_CONTENT_TYPE);
    for family in [
        "# TYPE isvc_ingress_admission_requests counter",
        "# TYPE isvc_ingress_admission_latency_seconds histogram",
        "# TYPE isvc_ingress_admission_in_flight gauge",
        "# TYPE isvc_ingress_tls_reloads counter",
        "# TYPE isvc_ingress_tls_reload_failures counter",
        "# TYPE isvc_ingress_handler_panics counter",
        "# TYPE isvc_ingress_http_errors counter",
    ] {
        assert!(body.contains(family), "missing {family}\n{body}");
    }
    assert!(body.contains(
        r#"isvc_ingress_admission_requests_total{endpoint="validate",kind="ConfigMap",operation="UPDATE",outcome="denied",code="200"} 1"#
    ));
    assert!(body.ends_with("# EOF\n"));
    assert_eq!(admin_get(addr, "/nope").await.0, 404);
    stop.cancel();
    admin.await.unwrap().unwrap();
}

#[tokio::test]
async fn readiness_follows_caches_and_shutdown_and_in_flight_requests_drain() {
    let handler = Arc::new(ScriptedHandler::new(Duration::from_millis(500)));
    let gate = handler.gate.clone();
    let mut server = start(handler, &[]).await;
    let admin = server.admin_addr();

    // Certificate loaded; caches are what the caller says.
    assert_eq!(admin_get(admin, "/readyz").await.0, 200);
    server.readiness.set_caches_synced(false);
    let (status, _, body) = admin_get(admin, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: caches not synced")
    );
    server.readiness.set_caches_synced(true);
    assert_eq!(admin_get(admin, "/readyz").await.0, 200);

    // A request that sleeps 500ms, and one held until the test opens the gate.
    let mut slow_conn = server.connect(HttpVersion::Http1).await;
    let slow = tokio::spawn(async move { slow_conn.post_json("/mutate", review("slow")).await });
    let mut gated_conn = server.connect(HttpVersion::Http2).await;
    let gated =
        tokio::spawn(async move { gated_conn.post_json("/validate", review("gate")).await });
    assert!(
        eventually(Duration::from_secs(5), || async {
            let (_, _, text) = admin_get(admin, "/metrics").await;
            sample(&text, "isvc_ingress_admission_in_flight") == 2.0
        })
        .await,
        "both requests in flight"
    );

    let shutdown_started = Instant::now();
    server.shutdown.cancel();
    let running = server.running.take().unwrap();
    let addr = running.webhook_addr();
    let wait = tokio::spawn(running.wait());

    // Unready at once, while the admin port keeps answering during the drain.
    let (status, _, body) = admin_get(admin, "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "not ready: shutting down"));
    assert_eq!(admin_get(admin, "/livez").await.0, 200);
    // New connections are refused once the listener is closed.
    assert!(
        eventually(Duration::from_secs(5), || async {
            tokio::net::TcpStream::connect(addr).await.is_err()
        })
        .await,
        "listener still accepting after shutdown"
    );

    // In-flight requests complete normally.
    let response = slow.await.unwrap().expect("slow request completes");
    assert_eq!(response.status, 200);
    assert_eq!(response.json().unwrap()["response"]["uid"], "slow");
    gate.open();
    let response = gated.await.unwrap().expect("gated request completes");
    assert_eq!(response.status, 200);

    // The server returns Ok within the grace (5s).
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("server returns within the grace")
        .unwrap()
        .expect("server returns Ok");
    assert!(shutdown_started.elapsed() < Duration::from_secs(5));
    // And the admin port is closed after the drain.
    assert!(tokio::net::TcpStream::connect(admin).await.is_err());
}

#[tokio::test]
async fn grace_bounds_a_request_that_never_finishes() {
    let handler = Arc::new(ScriptedHandler::new(Duration::ZERO));
    let gate = handler.gate.clone();
    let mut server = start(handler, &["--shutdown-grace", "300ms"]).await;
    let mut conn = server.connect(HttpVersion::Http1).await;
    let stuck = tokio::spawn(async move { conn.post_json("/mutate", review("gate")).await });
    let admin = server.admin_addr();
    assert!(
        eventually(Duration::from_secs(5), || async {
            let (_, _, text) = admin_get(admin, "/metrics").await;
            sample(&text, "isvc_ingress_admission_in_flight") == 1.0
        })
        .await
    );
    server.shutdown.cancel();
    let running = server.running.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), running.wait())
        .await
        .expect("grace expiry ends the server")
        .expect("server returns Ok");
    // The connection was closed under the stuck request.
    assert!(stuck.await.unwrap().is_err());
    gate.open();
}
