//! Certificate rotation, broken updates, handshake and header timeouts, mutual TLS.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{admin_get, cert_der, eventually, review, sample, start_echo};
use isvc_ingress::certs::CertificateAuthority;
use isvc_ingress::client::{ClientTls, HttpVersion};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn presented_certificate(server: &common::TestServer) -> CertificateDer<'static> {
    let conn = server.connect(HttpVersion::Http1).await;
    conn.info()
        .peer_certificate
        .clone()
        .expect("peer certificate")
}

async fn metric(server: &common::TestServer, series: &str) -> f64 {
    let (_, _, text) = admin_get(server.admin_addr(), "/metrics").await;
    sample(&text, series)
}

#[tokio::test]
async fn rotation_under_load_loses_no_request() {
    let mut server = start_echo(&[]).await;
    let addr = server.addr();
    let ca_pem = server.ca_pem().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let successes = Arc::new(AtomicUsize::new(0));

    // One task: a long-lived HTTP/2 connection established before any rotation, plus a new
    // HTTP/1.1 connection (a new handshake) for every request.
    let load = {
        let (stop, failures, successes) = (stop.clone(), failures.clone(), successes.clone());
        tokio::spawn(async move {
            let mut long_lived = common::connect(addr, &ca_pem, HttpVersion::Http2).await;
            let first_cert = long_lived.info().peer_certificate.clone();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let uid = format!("r-{i}");
                match long_lived.post_json("/mutate", review(&uid)).await {
                    Ok(r) if r.status == 200 => successes.fetch_add(1, Ordering::SeqCst),
                    _ => failures.fetch_add(1, Ordering::SeqCst),
                };
                let tls = ClientTls::new(ca_pem.as_bytes(), HttpVersion::Http1);
                let fresh = async {
                    let mut conn = common::try_connect(addr, &tls).await.ok()?;
                    conn.post_json("/validate", review(&uid)).await.ok()
                };
                match fresh.await {
                    Some(r) if r.status == 200 => successes.fetch_add(1, Ordering::SeqCst),
                    _ => failures.fetch_add(1, Ordering::SeqCst),
                };
            }
            // The established connection kept its original certificate throughout.
            assert_eq!(long_lived.info().peer_certificate, first_cert);
        })
    };

    let original = cert_der(&server.serving.cert_pem);
    let mut last = original.clone();
    for round in 0..4 {
        // Distinguishable: a new key, a random serial, and an extra SAN per round.
        let extra = format!("round{round}.example.test");
        let pair = server
            .ca
            .issue(&["127.0.0.1", "localhost", extra.as_str()])
            .unwrap();
        server
            .secret
            .update(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes());
        last = cert_der(&pair.cert_pem);
        let expected = last.clone();
        let seen = eventually(Duration::from_secs(5), || {
            let expected = expected.clone();
            let server = &server;
            async move { presented_certificate(server).await == expected }
        })
        .await;
        assert!(
            seen,
            "round {round}: new handshakes never saw the new certificate"
        );
    }
    assert_ne!(last, original);
    stop.store(true, Ordering::SeqCst);
    load.await.expect("load task");

    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "failed requests during rotation"
    );
    assert!(successes.load(Ordering::SeqCst) > 0);
    assert_eq!(metric(&server, "isvc_ingress_tls_reloads_total").await, 4.0);
    assert_eq!(
        metric(&server, "isvc_ingress_tls_reload_failures_total").await,
        0.0
    );
    server.stop().await;
}

#[tokio::test]
async fn broken_updates_keep_the_old_certificate() {
    let mut server = start_echo(&[]).await;
    let original = cert_der(&server.serving.cert_pem);
    let failures = "isvc_ingress_tls_reload_failures_total";

    // Garbage certificate PEM, valid key.
    let key = server.serving.key_pem.clone();
    server.secret.update(
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        key.as_bytes(),
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            metric(&server, failures).await >= 1.0
        })
        .await
    );
    assert_eq!(presented_certificate(&server).await, original);

    // A valid certificate with another certificate's key.
    let a = server.ca.issue(&["127.0.0.1", "localhost"]).unwrap();
    let b = server.ca.issue(&["127.0.0.1", "localhost"]).unwrap();
    server
        .secret
        .update(a.cert_pem.as_bytes(), b.key_pem.as_bytes());
    assert!(
        eventually(Duration::from_secs(5), || async {
            metric(&server, failures).await >= 2.0
        })
        .await
    );
    assert_eq!(presented_certificate(&server).await, original);

    // Not a PEM file at all.
    server.secret.update(b"", b"");
    assert!(
        eventually(Duration::from_secs(5), || async {
            metric(&server, failures).await >= 3.0
        })
        .await
    );
    let mut conn = server.connect(HttpVersion::Http2).await;
    assert_eq!(conn.info().peer_certificate.as_ref(), Some(&original));
    assert_eq!(
        conn.post_json("/mutate", review("still"))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(metric(&server, "isvc_ingress_tls_reloads_total").await, 0.0);

    // A good pair afterwards is taken.
    let good = server.ca.issue(&["127.0.0.1", "localhost"]).unwrap();
    server
        .secret
        .update(good.cert_pem.as_bytes(), good.key_pem.as_bytes());
    let expected = cert_der(&good.cert_pem);
    assert!(
        eventually(Duration::from_secs(5), || {
            let expected = expected.clone();
            let server = &server;
            async move { presented_certificate(server).await == expected }
        })
        .await
    );
    assert_eq!(metric(&server, "isvc_ingress_tls_reloads_total").await, 1.0);
    assert_eq!(metric(&server, failures).await, 3.0);
    server.stop().await;
}

#[tokio::test]
async fn silent_tcp_clients_are_cut_after_the_handshake_timeout() {
    let server = start_echo(&["--handshake-timeout", "300ms"]).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("server closes a silent connection well before 5s");
    // EOF or reset: either way the server hung up.
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    server.stop().await;
}

#[tokio::test]
async fn slowloris_headers_are_cut_after_the_header_read_timeout() {
    let server = start_echo(&["--header-read-timeout", "500ms"]).await;
    let config = ClientTls::new(server.ca_pem().as_bytes(), HttpVersion::Http1)
        .build()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let trickle = async {
        // One header byte every 100ms: never completes the head.
        loop {
            if tls.write_all(b"X").await.is_err() || tls.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut buf = [0u8; 256];
            let read = tokio::time::timeout(Duration::from_millis(1), tls.read(&mut buf)).await;
            if let Ok(Ok(0) | Err(_)) = read {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), trickle)
        .await
        .expect("server cuts a trickling client well before 5s");
    server.stop().await;
}

#[tokio::test]
async fn client_ca_requires_a_client_certificate() {
    let client_ca = CertificateAuthority::new("apiserver clients", 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("client-ca.crt");
    std::fs::write(&ca_path, client_ca.ca_pem()).unwrap();
    let server = start_echo(&["--client-ca", ca_path.to_str().unwrap()]).await;

    // Without a certificate: refused (during the handshake or on the first read).
    let anonymous = ClientTls::new(server.ca_pem().as_bytes(), HttpVersion::Http1);
    let refused = match common::try_connect(server.addr(), &anonymous).await {
        Err(_) => true,
        Ok(mut conn) => conn.post_json("/mutate", review("anon")).await.is_err(),
    };
    assert!(refused);

    // With a certificate from another CA: refused.
    let stranger = CertificateAuthority::new("strangers", 1)
        .unwrap()
        .issue_client("mallory")
        .unwrap();
    let mut tls = ClientTls::new(server.ca_pem().as_bytes(), HttpVersion::Http1);
    tls.client_identity = Some((
        stranger.cert_pem.into_bytes(),
        stranger.key_pem.into_bytes(),
    ));
    let refused = match common::try_connect(server.addr(), &tls).await {
        Err(_) => true,
        Ok(mut conn) => conn.post_json("/mutate", review("mallory")).await.is_err(),
    };
    assert!(refused);

    // With a certificate from the client CA: served, over both protocols.
    let apiserver = client_ca.issue_client("kube-apiserver").unwrap();
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let mut tls = ClientTls::new(server.ca_pem().as_bytes(), version);
        tls.client_identity = Some((
            apiserver.cert_pem.clone().into_bytes(),
            apiserver.key_pem.clone().into_bytes(),
        ));
        let mut conn = common::try_connect(server.addr(), &tls).await.unwrap();
        assert_eq!(
            conn.post_json("/mutate", review("ok"))
                .await
                .unwrap()
                .status,
            200
        );
    }
    server.stop().await;
}
