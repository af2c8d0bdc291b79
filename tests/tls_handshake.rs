//! The TLS handshake: its timeout, and mutual TLS. Certificate rotation, broken certificate
//! updates and slowloris clients, all under load, are in `faults.rs`.

mod common;

use std::time::Duration;

use common::{review, start_echo};
use isvc_ingress::certs::CertificateAuthority;
use isvc_ingress_testkit::client::{ClientTls, HttpVersion};
use tokio::io::AsyncReadExt as _;

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
