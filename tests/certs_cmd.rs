//! `isvc-ingress certs` and the certificate generators.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use isvc_ingress::certs::{self, CertificateBundle};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::{ServerName, UnixTime};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

const SERVICE_NAMES: [&str; 4] = [
    "isvc-ingress",
    "isvc-ingress.isvc-system",
    "isvc-ingress.isvc-system.svc",
    "isvc-ingress.isvc-system.svc.cluster.local",
];

fn sans(cert_pem: &str) -> Vec<String> {
    let der = common::cert_der(cert_pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let san = cert
        .subject_alternative_name()
        .unwrap()
        .expect("SAN extension");
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(d) => (*d).to_owned(),
            GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
            other => format!("{other:?}"),
        })
        .collect()
}

/// Verifies the serving certificate against the CA for `name`, as a TLS client would.
fn verifies_for(bundle: &CertificateBundle, name: &str) -> bool {
    common::install_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(common::cert_der(&bundle.ca_pem)).unwrap();
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    verifier
        .verify_server_cert(
            &common::cert_der(&bundle.cert_pem),
            &[],
            &ServerName::try_from(name.to_owned()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .is_ok()
}

#[test]
fn service_certificate_covers_every_service_name() {
    let bundle = certs::generate("isvc-ingress", "isvc-system", &[], 30).unwrap();
    assert_eq!(sans(&bundle.cert_pem), SERVICE_NAMES);
    for name in SERVICE_NAMES {
        assert!(verifies_for(&bundle, name), "{name}");
    }
    assert!(!verifies_for(&bundle, "isvc-ingress.other.svc"));
    assert!(!verifies_for(&bundle, "localhost"));

    let ca_der = common::cert_der(&bundle.ca_pem);
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    assert!(ca.is_ca());
    let leaf_der = common::cert_der(&bundle.cert_pem);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
    assert!(!leaf.is_ca());
    assert_eq!(leaf.issuer(), ca.subject());
    let days =
        (leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 30, "30 days plus the one-hour backdate, rounded down");
}

#[test]
fn service_certificate_with_an_ip_address_also_covers_that_address() {
    let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let bundle = certs::generate("isvc-ingress", "isvc-system", &[loopback], 30).unwrap();
    assert!(verifies_for(&bundle, "127.0.0.1"));
    assert!(verifies_for(&bundle, "isvc-ingress.isvc-system.svc"));
    assert!(!verifies_for(&bundle, "127.0.0.2"));
    let mut expected: Vec<String> = SERVICE_NAMES.iter().map(|name| name.to_string()).collect();
    expected.push("ip:[127, 0, 0, 1]".into());
    assert_eq!(sans(&bundle.cert_pem), expected);
}

#[test]
fn loopback_certificate_covers_ip_and_localhost() {
    let bundle = certs::generate_for_hosts(&["127.0.0.1", "localhost"]).unwrap();
    assert!(verifies_for(&bundle, "127.0.0.1"));
    assert!(verifies_for(&bundle, "localhost"));
    assert!(!verifies_for(&bundle, "example.com"));
    assert_eq!(sans(&bundle.cert_pem), ["ip:[127, 0, 0, 1]", "localhost"]);
}

#[test]
fn certs_command_writes_files_and_prints_the_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/certs");
    let output = Command::new(env!("CARGO_BIN_EXE_isvc-ingress"))
        .args([
            "certs",
            "--service",
            "isvc-ingress",
            "--namespace",
            "isvc-system",
            "--out",
            out.to_str().unwrap(),
            "--days",
            "7",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    let ca = std::fs::read_to_string(out.join("ca.crt")).unwrap();
    let cert = std::fs::read_to_string(out.join("tls.crt")).unwrap();
    let key = std::fs::read_to_string(out.join("tls.key")).unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout.trim_end(),
        base64::engine::general_purpose::STANDARD.encode(ca.as_bytes())
    );
    let mode = std::fs::metadata(out.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let bundle = CertificateBundle {
        ca_pem: ca,
        cert_pem: cert,
        key_pem: key,
    };
    assert_eq!(sans(&bundle.cert_pem), SERVICE_NAMES);
    assert!(verifies_for(&bundle, "isvc-ingress.isvc-system.svc"));
    // The key belongs to the certificate: the server accepts the pair.
    isvc_ingress::server::tls::server_config(
        bundle.cert_pem.as_bytes(),
        bundle.key_pem.as_bytes(),
        None,
    )
    .expect("usable pair");

    // Rerunning over an existing, loosened key file tightens it again.
    std::fs::set_permissions(out.join("tls.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_isvc-ingress"))
        .args(["certs", "--service", "a", "--namespace", "b", "--out"])
        .arg(&out)
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let mode = std::fs::metadata(out.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn certs_command_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--service", "Bad_Name", "--namespace", "ns"],
        vec!["--service", "svc", "--namespace", "ns", "--days", "0"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_isvc-ingress"))
            .arg("certs")
            .args(&args)
            .arg("--out")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty());
    }
}
