//! The webhook port over real TLS on loopback: protocols, status codes, deadlines, panics,
//! the in-flight byte budget.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Gate, ScriptedHandler, admin_get, review, sample, start, start_echo};
use isvc_ingress::server::echo::EchoHandler;
use isvc_ingress::server::webhook::{MAX_BODY_BYTES, MAX_BYTES_IN_FLIGHT};
use isvc_ingress::server::{AdmissionHandler, AdmissionReply, Endpoint};
use isvc_ingress_testkit::client::{ClientTls, HttpVersion};
use rustls::ProtocolVersion;

#[tokio::test]
async fn answers_reviews_over_http1_and_http2() {
    let server = start_echo(&[]).await;
    for (version, alpn) in [
        (HttpVersion::Http1, b"http/1.1".as_slice()),
        (HttpVersion::Http2, b"h2".as_slice()),
    ] {
        let mut conn = server.connect(version).await;
        assert_eq!(conn.info().alpn.as_deref(), Some(alpn));
        assert_eq!(conn.is_http2(), version == HttpVersion::Http2);
        for endpoint in ["/mutate", "/validate?timeout=10s"] {
            // Several requests on one connection: keep-alive / multiplexing works.
            for i in 0..3 {
                let uid = format!("uid-{i}");
                let response = conn.post_json(endpoint, review(&uid)).await.unwrap();
                assert_eq!(response.status, 200);
                assert_eq!(response.headers["content-type"], "application/json");
                let json = response.json().unwrap();
                assert_eq!(json["response"]["uid"], uid.as_str());
                assert_eq!(json["response"]["allowed"], true);
            }
        }
    }
    let (_, _, metrics) = admin_get(server.admin_addr(), "/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            r#"isvc_ingress_admission_requests_total{endpoint="mutate",kind="InferenceService",operation="CREATE",outcome="allowed",code="200"}"#
        ),
        6.0
    );
    assert_eq!(
        sample(
            &metrics,
            r#"isvc_ingress_admission_latency_seconds_count{endpoint="validate"}"#
        ),
        6.0
    );
    server.stop().await;
}

#[tokio::test]
async fn accepts_tls_1_2_and_1_3() {
    let server = start_echo(&[]).await;
    for (versions, expected) in [
        (vec![&rustls::version::TLS12], ProtocolVersion::TLSv1_2),
        (vec![&rustls::version::TLS13], ProtocolVersion::TLSv1_3),
    ] {
        for http in [HttpVersion::Http1, HttpVersion::Http2] {
            let mut tls = ClientTls::new(server.ca_pem().as_bytes(), http);
            tls.tls_versions = versions.clone();
            let mut conn = common::try_connect(server.addr(), &tls).await.unwrap();
            assert_eq!(conn.info().tls_version, Some(expected));
            let response = conn.post_json("/mutate", review("v")).await.unwrap();
            assert_eq!(response.status, 200);
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn rejects_clients_that_do_not_trust_the_ca() {
    let server = start_echo(&[]).await;
    let other = isvc_ingress::certs::generate_for_hosts(&["localhost"]).unwrap();
    let tls = ClientTls::new(other.ca_pem.as_bytes(), HttpVersion::Http1);
    assert!(common::try_connect(server.addr(), &tls).await.is_err());
    server.stop().await;
}

fn padded_review(total_len: usize) -> String {
    padded_review_with_uid("big", total_len)
}

fn padded_review_with_uid(uid: &str, total_len: usize) -> String {
    let head = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"{uid}"}},"pad":""#
    );
    let tail = r#""}"#;
    let pad = total_len - head.len() - tail.len();
    format!("{head}{}{tail}", "a".repeat(pad))
}

#[tokio::test]
async fn error_statuses_have_json_bodies() {
    let server = start_echo(&[]).await;
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        // Exactly the limit is accepted.
        let mut conn = server.connect(version).await;
        let response = conn
            .post_json("/mutate", padded_review(MAX_BODY_BYTES))
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{version:?}");

        // One byte more is refused. HTTP/1.1 closes the connection after an unread body, so
        // each error case gets its own connection.
        let mut conn = server.connect(version).await;
        let response = conn
            .post_json("/mutate", padded_review(MAX_BODY_BYTES + 1))
            .await
            .unwrap();
        assert_eq!(response.status, 413, "{version:?}");
        assert!(response.json().unwrap()["error"].is_string());

        let mut conn = server.connect(version).await;
        for content_type in ["text/plain", "application/yaml"] {
            let response = conn
                .send(
                    http::Method::POST,
                    "/validate",
                    Some(content_type),
                    Bytes::from(review("x")),
                )
                .await
                .unwrap();
            assert_eq!(response.status, 415, "{content_type}");
            assert!(response.json().unwrap()["error"].is_string());
        }
        let response = conn
            .send(
                http::Method::POST,
                "/validate",
                Some("application/json; charset=utf-8"),
                Bytes::from(review("x")),
            )
            .await
            .unwrap();
        assert_eq!(response.status, 200);

        let response = conn.post_json("/nope", review("x")).await.unwrap();
        assert_eq!(response.status, 404);
        assert_eq!(response.json().unwrap()["error"], "not found");

        let response = conn
            .send(http::Method::GET, "/mutate", None, Bytes::new())
            .await
            .unwrap();
        assert_eq!(response.status, 405);
        assert_eq!(response.headers["allow"], "POST");
        assert!(response.json().unwrap()["error"].is_string());

        // A body that is not an AdmissionReview: the handler's 400.
        let response = conn.post_json("/mutate", "not json").await.unwrap();
        assert_eq!(response.status, 400);
        assert!(response.json().unwrap()["error"].is_string());
    }
    let (_, _, metrics) = admin_get(server.admin_addr(), "/metrics").await;
    for (code, count) in [(413, 2.0), (415, 4.0), (404, 2.0), (405, 2.0), (400, 2.0)] {
        let series = format!(r#"isvc_ingress_http_errors_total{{code="{code}"}}"#);
        assert_eq!(sample(&metrics, &series), count, "{series}\n{metrics}");
    }
    server.stop().await;
}

#[tokio::test]
async fn overrunning_the_deadline_answers_504() {
    let handler = Arc::new(ScriptedHandler::new(Duration::from_millis(1500)));
    let server = start(handler, &["--request-timeout", "400ms"]).await;
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let mut conn = server.connect(version).await;
        // The apiserver's ?timeout= shortens the deadline...
        let started = Instant::now();
        let response = conn
            .post_json("/mutate?timeout=200ms", review("slow"))
            .await
            .unwrap();
        assert_eq!(response.status, 504);
        assert!(response.json().unwrap()["error"].is_string());
        assert!(
            started.elapsed() < Duration::from_millis(1400),
            "did not wait for the handler"
        );
        // ...and the server cap applies without it, or when it asks for more.
        for path in ["/validate", "/validate?timeout=30s"] {
            let response = conn.post_json(path, review("slow")).await.unwrap();
            assert_eq!(response.status, 504, "{path}");
        }
        // The connection still serves fast requests.
        let response = conn.post_json("/mutate", review("fast")).await.unwrap();
        assert_eq!(response.status, 200);
    }
    let (_, _, metrics) = admin_get(server.admin_addr(), "/metrics").await;
    assert_eq!(
        sample(&metrics, r#"isvc_ingress_http_errors_total{code="504"}"#),
        6.0
    );
    server.stop().await;
}

async fn panics_are_answered_500(extra: &[&str]) {
    let handler = Arc::new(ScriptedHandler::new(Duration::ZERO));
    let server = start(handler, extra).await;
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let mut conn = server.connect(version).await;
        let response = conn.post_json("/mutate", review("panic")).await.unwrap();
        assert_eq!(response.status, 500);
        assert!(response.json().unwrap()["error"].is_string());
        // The next request, on the same connection and on a new one, succeeds.
        let response = conn.post_json("/mutate", review("after")).await.unwrap();
        assert_eq!(response.status, 200);
        let mut fresh = server.connect(version).await;
        let response = fresh.post_json("/validate", review("fresh")).await.unwrap();
        assert_eq!(response.status, 200);
    }
    let (_, _, metrics) = admin_get(server.admin_addr(), "/metrics").await;
    assert_eq!(
        sample(
            &metrics,
            r#"isvc_ingress_handler_panics_total{endpoint="mutate"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(&metrics, r#"isvc_ingress_http_errors_total{code="500"}"#),
        2.0
    );
    assert_eq!(sample(&metrics, "isvc_ingress_admission_in_flight"), 0.0);
    server.stop().await;
}

#[tokio::test]
async fn handler_panic_on_blocking_pool_is_answered_500() {
    panics_are_answered_500(&[]).await;
}

#[tokio::test]
async fn handler_panic_inline_is_answered_500() {
    panics_are_answered_500(&["--handler-execution", "inline"]).await;
}

/// Echo; a body whose uid is `hold` is counted while it runs and waits for the gate.
#[derive(Default)]
struct HoldingHandler {
    running: AtomicUsize,
    most: AtomicUsize,
    gate: Gate,
}

impl AdmissionHandler for HoldingHandler {
    fn handle(&self, endpoint: Endpoint, body: &[u8]) -> AdmissionReply {
        let held = body.starts_with(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"hold"}"#);
        if held {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            self.gate.wait();
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
        EchoHandler.handle(endpoint, body)
    }
}

#[tokio::test]
async fn large_bodies_wait_for_the_in_flight_byte_budget() {
    // How many maximal bodies fit in the budget at once (2), with room left for small ones.
    let fit = MAX_BYTES_IN_FLIGHT / MAX_BODY_BYTES;
    assert!(fit >= 1 && MAX_BYTES_IN_FLIGHT % MAX_BODY_BYTES > 100_000);
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let handler = Arc::new(HoldingHandler::default());
        let server = start(handler.clone(), &["--request-timeout", "20s"]).await;
        let send_held = |mut conn: isvc_ingress_testkit::client::Connection| {
            tokio::spawn(async move {
                conn.post_json("/mutate", padded_review_with_uid("hold", MAX_BODY_BYTES))
                    .await
                    .unwrap()
                    .status
            })
        };
        let running = |count: usize| {
            let handler = Arc::clone(&handler);
            async move {
                let started = Instant::now();
                while handler.running.load(Ordering::SeqCst) < count {
                    assert!(started.elapsed() < Duration::from_secs(10));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        // As many maximal bodies as fit reach the handler together...
        let mut sent = Vec::new();
        for _ in 0..fit {
            sent.push(send_held(server.connect(version).await));
        }
        running(fit).await;
        // ...a review of ordinary size fits in what is left, and is answered...
        let mut conn = server.connect(version).await;
        let response = conn.post_json("/validate", review("small")).await.unwrap();
        assert_eq!(response.status, 200, "{version:?}");
        // ...and one more maximal body waits outside the handler until they are done.
        sent.push(send_held(server.connect(version).await));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(handler.running.load(Ordering::SeqCst), fit, "{version:?}");

        handler.gate.open();
        for request in sent {
            assert_eq!(request.await.unwrap(), 200, "{version:?}");
        }
        assert_eq!(handler.most.load(Ordering::SeqCst), fit, "{version:?}");
        server.stop().await;
    }
}
