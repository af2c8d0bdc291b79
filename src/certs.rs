//! Certificates for the webhook: a private CA and a serving certificate it signs.
//!
//! `isvc-ingress certs` writes them for a cluster install (the Service's DNS names as SANs, the
//! CA as the webhook configuration's `caBundle`); `serve --self-signed` and the tests make them
//! in memory for loopback names. Keys are ECDSA P-256, generated with ring through rcgen.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use ring::rand::SecureRandom as _;
use time::{Duration as TimeDuration, OffsetDateTime};

/// Flags of `isvc-ingress certs`.
#[derive(Debug, Clone, Args)]
pub struct CertsArgs {
    /// Name of the webhook Service.
    #[arg(long)]
    pub service: String,

    /// Namespace of the webhook Service.
    #[arg(long)]
    pub namespace: String,

    /// Directory to write ca.crt, tls.crt and tls.key into (created if missing).
    #[arg(long)]
    pub out: PathBuf,

    /// An IP address the serving certificate is also valid for (repeatable), e.g. 127.0.0.1
    /// when the API server reaches the webhook by `clientConfig.url` instead of the Service.
    #[arg(long = "ip-address", value_name = "IP")]
    pub ip_addresses: Vec<std::net::IpAddr>,

    /// Validity of the CA and the serving certificate, in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
}

/// Certificates are valid from one hour in the past, so a node whose clock is slightly behind
/// still accepts a freshly generated certificate.
const BACKDATE: TimeDuration = TimeDuration::hours(1);

/// Why certificates could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// rcgen refused the parameters or failed to sign.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Random,
    /// A service or namespace name that cannot be part of a DNS name.
    #[error("invalid {what} {value:?}: must be a DNS-1123 label (lowercase letters, digits, '-')")]
    InvalidName {
        /// `service` or `namespace`.
        what: &'static str,
        /// The rejected value.
        value: String,
    },
    /// No host name was given.
    #[error("at least one host name is required")]
    NoHosts,
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A CA certificate and a serving certificate with its key, all PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateBundle {
    /// The CA certificate: what clients trust (`caBundle`).
    pub ca_pem: String,
    /// The serving certificate, signed by the CA.
    pub cert_pem: String,
    /// The serving certificate's private key (PKCS#8).
    pub key_pem: String,
}

/// A CA that can issue several serving certificates, e.g. to rotate them in tests while
/// clients keep trusting the same CA.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    days: u32,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("days", &self.days)
            .finish_non_exhaustive()
    }
}

fn random_serial() -> Result<SerialNumber, CertsError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CertsError::Random)?;
    // A positive DER INTEGER of at most 20 octets, as RFC 5280 asks.
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + TimeDuration::days(i64::from(days));
}

impl CertificateAuthority {
    /// A new self-signed CA named `common_name`, valid for `days`; certificates it issues have
    /// the same validity.
    pub fn new(common_name: &str, days: u32) -> Result<Self, CertsError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial()?);
        validity(&mut params, days);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            days,
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Signs a leaf certificate with a fresh key, a random serial and this CA's validity.
    fn sign_leaf(&self, mut params: CertificateParams) -> Result<CertificateBundle, CertsError> {
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        validity(&mut params, self.days);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertificateBundle {
            ca_pem: self.ca_pem.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a client certificate named `common_name` (extended key usage clientAuth), for a
    /// server started with `--client-ca`.
    pub fn issue_client(&self, common_name: &str) -> Result<CertificateBundle, CertsError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign_leaf(params)
    }

    /// Issues a serving certificate for `hosts` (DNS names or IP addresses; the first one is
    /// also the common name) with a fresh key and a random serial.
    pub fn issue(&self, hosts: &[&str]) -> Result<CertificateBundle, CertsError> {
        let first = hosts.first().ok_or(CertsError::NoHosts)?;
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, *first);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        // ECDSA keys sign; keyEncipherment would only be meaningful for RSA key transport.
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign_leaf(params)
    }
}

/// The names the webhook Service answers to: `S`, `S.N`, `S.N.svc`, `S.N.svc.cluster.local`.
pub fn service_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

fn check_label(what: &'static str, value: &str) -> Result<(), CertsError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(CertsError::InvalidName {
            what,
            value: value.to_owned(),
        })
    }
}

/// CA + serving certificate for the webhook Service `service` in `namespace`, plus
/// `ip_addresses` as IP SANs (for an API server that reaches the webhook by
/// `clientConfig.url: https://<ip>:<port>/...`: TLS clients match an IP host only against IP
/// SANs, never against the common name).
pub fn generate(
    service: &str,
    namespace: &str,
    ip_addresses: &[std::net::IpAddr],
    days: u32,
) -> Result<CertificateBundle, CertsError> {
    check_label("service", service)?;
    check_label("namespace", namespace)?;
    let ca = CertificateAuthority::new(&format!("isvc-ingress CA ({service}.{namespace})"), days)?;
    let mut names = service_dns_names(service, namespace);
    names.extend(ip_addresses.iter().map(ToString::to_string));
    let hosts: Vec<&str> = names.iter().map(String::as_str).collect();
    ca.issue(&hosts)
}

/// CA + serving certificate for arbitrary hosts (e.g. `127.0.0.1`, `localhost`), valid one
/// day. For loopback tests and `--self-signed`.
pub fn generate_for_hosts(hosts: &[&str]) -> Result<CertificateBundle, CertsError> {
    CertificateAuthority::new("isvc-ingress local CA", 1)?.issue(hosts)
}

/// The `caBundle` value: base64 of the CA PEM, as the webhook configuration wants it.
pub fn ca_bundle(bundle: &CertificateBundle) -> String {
    base64::engine::general_purpose::STANDARD.encode(bundle.ca_pem.as_bytes())
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), CertsError> {
    let err = |source| CertsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    // `mode` only applies when the file is created; tighten an existing file too.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)
}

/// Writes `ca.crt`, `tls.crt` (0644) and `tls.key` (0600) into `dir`, creating it if needed.
pub fn write_bundle(dir: &Path, bundle: &CertificateBundle) -> Result<(), CertsError> {
    fs::create_dir_all(dir).map_err(|source| CertsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    write_file(&dir.join("ca.crt"), &bundle.ca_pem, 0o644)?;
    write_file(&dir.join("tls.crt"), &bundle.cert_pem, 0o644)?;
    write_file(&dir.join("tls.key"), &bundle.key_pem, 0o600)
}

/// `isvc-ingress certs`: generates, writes the files and returns the `caBundle` to print.
pub fn run_certs(args: &CertsArgs) -> Result<String, CertsError> {
    let bundle = generate(
        &args.service,
        &args.namespace,
        &args.ip_addresses,
        args.days,
    )?;
    write_bundle(&args.out, &bundle)?;
    Ok(ca_bundle(&bundle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_names_that_are_not_dns_labels() {
        assert!(matches!(
            generate("Webhook", "ns", &[], 1),
            Err(CertsError::InvalidName {
                what: "service",
                ..
            })
        ));
        assert!(matches!(
            generate("svc", "a.b", &[], 1),
            Err(CertsError::InvalidName {
                what: "namespace",
                ..
            })
        ));
        assert!(matches!(
            CertificateAuthority::new("ca", 1).unwrap().issue(&[]),
            Err(CertsError::NoHosts)
        ));
    }

    #[test]
    fn issues_distinct_certificates_from_one_ca() {
        let ca = CertificateAuthority::new("test", 1).unwrap();
        let a = ca.issue(&["localhost"]).unwrap();
        let b = ca.issue(&["localhost"]).unwrap();
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_ne!(a.cert_pem, b.cert_pem);
        assert_ne!(a.key_pem, b.key_pem);
    }
}
