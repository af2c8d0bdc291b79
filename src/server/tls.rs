//! TLS for the webhook listener: the rustls configuration and certificate rotation.
//!
//! The configuration uses ring explicitly (never the process-default provider), offers TLS 1.3
//! and 1.2, and ALPN `h2` then `http/1.1` (kube-apiserver negotiates h2).
//!
//! Rotation polls the certificate and key files and compares their *contents* with the pair
//! last tried. Polling contents, rather than watching with inotify or comparing mtimes, is
//! what survives a Kubernetes Secret volume update: the kubelet writes a new timestamped
//! directory and atomically swaps the `..data` symlink, so the watched path never sees a
//! write event and the mtime seen through the symlink may not change. A changed pair is
//! parsed and checked (the key must match the leaf certificate) before it replaces the one in
//! service; a bad pair is logged and counted, and the old certificate keeps serving.
//! [`RustlsConfig::reload_from_config`] swaps an `Arc`, so only handshakes that start after the
//! swap see the new certificate; established connections keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// ALPN protocols offered, in order of preference.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a certificate, key or client CA could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate PEM holds no certificate, or a malformed one.
    #[error("{what}: no usable PEM certificate: {reason}")]
    Certificate {
        /// Which input (a path or "self-signed certificate").
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// The key PEM holds no private key, or a malformed one.
    #[error("{what}: no usable PEM private key: {reason}")]
    Key {
        /// Which input.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// rustls rejected the pair, e.g. the key does not match the certificate.
    #[error("certificate and key are not a usable pair: {0}")]
    Pair(#[source] rustls::Error),
    /// The client CA file could not be used to verify clients.
    #[error("client CA {path}: {reason}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// The ring provider, explicitly: the configuration does not depend on which provider the
/// process installed as default.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM chain (leaf first).
pub fn parse_certificates(
    pem: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            what: what.to_owned(),
            reason: "no CERTIFICATE block found".to_owned(),
        });
    }
    Ok(certs)
}

/// Builds the server configuration for a certificate chain and key, both PEM.
///
/// Fails when either does not parse or when the key does not belong to the leaf certificate,
/// so a broken pair is refused before it is put in service.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<ServerConfig, TlsError> {
    server_config_for(cert_pem, key_pem, client_verifier, "certificate", "key")
}

fn server_config_for(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    cert_what: &str,
    key_what: &str,
) -> Result<ServerConfig, TlsError> {
    let chain = parse_certificates(cert_pem, cert_what)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key {
        what: key_what.to_owned(),
        reason: e.to_string(),
    })?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Pair)?;
    let builder = match client_verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    // with_single_cert checks that the key's public half matches the leaf certificate.
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(TlsError::Pair)?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A verifier that requires client certificates signed by the CA(s) in `path`.
pub fn client_verifier(path: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let bad = |reason: String| TlsError::ClientCa {
        path: path.to_owned(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_certificates(&pem, &path.display().to_string())? {
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| bad(e.to_string()))
}

/// The certificate and key files and what was last read from them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PemPair {
    cert: Vec<u8>,
    key: Vec<u8>,
}

async fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
}

/// Loads the certificate files once, at start, and builds the configuration in service.
pub(crate) async fn load_from_files(
    cert_path: &Path,
    key_path: &Path,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<(RustlsConfig, CertificateFiles), TlsError> {
    let pair = PemPair {
        cert: read_file(cert_path).await?,
        key: read_file(key_path).await?,
    };
    let config = server_config_for(
        &pair.cert,
        &pair.key,
        client_verifier.clone(),
        &cert_path.display().to_string(),
        &key_path.display().to_string(),
    )?;
    let rustls = RustlsConfig::from_config(Arc::new(config));
    let files = CertificateFiles {
        cert_path: cert_path.to_owned(),
        key_path: key_path.to_owned(),
        client_verifier,
        rustls: rustls.clone(),
        last_tried: pair,
        last_read_error: None,
    };
    Ok((rustls, files))
}

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PollOutcome {
    /// The files hold the pair last tried.
    Unchanged,
    /// A new pair is in service.
    Reloaded,
    /// A new pair (or a read error) was rejected; the old certificate stays.
    Rejected,
}

/// The certificate files being watched and the configuration they feed.
pub(crate) struct CertificateFiles {
    cert_path: PathBuf,
    key_path: PathBuf,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    rustls: RustlsConfig,
    /// The contents last parsed, good or bad: a bad pair is reported once, not every poll.
    last_tried: PemPair,
    /// The last read error reported, so a missing file is reported once, not every poll.
    last_read_error: Option<String>,
}

impl CertificateFiles {
    /// Reads both files; `None` when they changed while being read. The kubelet swaps the
    /// `..data` symlink at any moment, so now and then the certificate is read from one
    /// generation and the key from the next: that torn pair does not match and would be
    /// reported as a failed rotation. Reading the certificate again after the key tells a torn
    /// read (it changed meanwhile; the next poll reads the new pair whole) from a pair as written.
    async fn read_pair(&self) -> Result<Option<PemPair>, TlsError> {
        let cert = read_file(&self.cert_path).await?;
        let key = read_file(&self.key_path).await?;
        if read_file(&self.cert_path).await? != cert {
            return Ok(None);
        }
        Ok(Some(PemPair { cert, key }))
    }

    /// Reads both files once and puts a changed, valid pair in service.
    pub(crate) async fn poll(&mut self, metrics: &Metrics) -> PollOutcome {
        let pair = match self.read_pair().await {
            Ok(Some(pair)) => pair,
            Ok(None) => {
                tracing::debug!(
                    "the certificate files changed while being read; reading them at the next poll"
                );
                return PollOutcome::Unchanged;
            }
            Err(error) => {
                let message = error.to_string();
                if self.last_read_error.as_deref() == Some(message.as_str()) {
                    return PollOutcome::Unchanged;
                }
                tracing::error!(%error, "cannot read the serving certificate; keeping the one in service");
                metrics.tls_reload_failed();
                self.last_read_error = Some(message);
                return PollOutcome::Rejected;
            }
        };
        self.last_read_error = None;
        if pair == self.last_tried {
            return PollOutcome::Unchanged;
        }
        let result = server_config_for(
            &pair.cert,
            &pair.key,
            self.client_verifier.clone(),
            &self.cert_path.display().to_string(),
            &self.key_path.display().to_string(),
        );
        self.last_tried = pair;
        match result {
            Ok(config) => {
                self.rustls.reload_from_config(Arc::new(config));
                metrics.tls_reloaded();
                tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                PollOutcome::Reloaded
            }
            Err(error) => {
                metrics.tls_reload_failed();
                tracing::error!(%error, "new serving certificate rejected; keeping the one in service");
                PollOutcome::Rejected
            }
        }
    }

    /// Polls every `interval` until `stop` is cancelled.
    pub(crate) async fn watch(
        mut self,
        interval: Duration,
        metrics: Metrics,
        stop: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once; the files were just loaded.
        ticker.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {
                    self.poll(&metrics).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{CertificateAuthority, generate_for_hosts};

    #[test]
    fn builds_config_with_alpn_and_rejects_bad_pairs() {
        let a = generate_for_hosts(&["localhost"]).unwrap();
        let b = generate_for_hosts(&["localhost"]).unwrap();
        let config = server_config(a.cert_pem.as_bytes(), a.key_pem.as_bytes(), None).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(matches!(
            server_config(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), None),
            Err(TlsError::Pair(_))
        ));
        assert!(matches!(
            server_config(b"garbage", a.key_pem.as_bytes(), None),
            Err(TlsError::Certificate { .. })
        ));
        assert!(matches!(
            server_config(a.cert_pem.as_bytes(), b"garbage", None),
            Err(TlsError::Key { .. })
        ));
    }

    /// Writes `cert` and `key` into a new directory and swaps the `..data` symlink to it, as
    /// the kubelet updates a Secret volume.
    fn swap_generation(dir: &Path, generation: usize, cert: &str, key: &str) {
        let name = format!("..gen_{generation}");
        std::fs::create_dir(dir.join(&name)).unwrap();
        std::fs::write(dir.join(&name).join("tls.crt"), cert).unwrap();
        std::fs::write(dir.join(&name).join("tls.key"), key).unwrap();
        std::os::unix::fs::symlink(&name, dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    }

    #[tokio::test]
    async fn a_pair_swapped_while_being_read_is_not_a_failed_rotation() {
        let ca = CertificateAuthority::new("rotation", 1).unwrap();
        let pairs: Vec<_> = (0..40).map(|_| ca.issue(&["localhost"]).unwrap()).collect();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("..data/tls.crt", dir.path().join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", dir.path().join("tls.key")).unwrap();
        swap_generation(dir.path(), 0, &pairs[0].cert_pem, &pairs[0].key_pem);
        let (_, mut files) = load_from_files(
            &dir.path().join("tls.crt"),
            &dir.path().join("tls.key"),
            None,
        )
        .await
        .unwrap();

        // Swap through every pair, each once (a pair never comes back), as fast as possible,
        // while polling without pause: reads straddle swaps again and again.
        let swapping = {
            let (dir, pairs) = (dir.path().to_owned(), pairs.clone());
            std::thread::spawn(move || {
                for (generation, pair) in pairs.iter().enumerate().skip(1) {
                    swap_generation(&dir, generation, &pair.cert_pem, &pair.key_pem);
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        let metrics = Metrics::new();
        let mut outcomes = Vec::new();
        while !swapping.is_finished() {
            outcomes.push(files.poll(&metrics).await);
        }
        swapping.join().unwrap();
        outcomes.push(files.poll(&metrics).await);
        assert!(
            !outcomes.contains(&PollOutcome::Rejected),
            "a torn read was reported as a bad pair: {outcomes:?}"
        );
        assert!(outcomes.contains(&PollOutcome::Reloaded));
        // The last pair was put in service (a rejected one would be in the outcomes).
        let last = pairs.last().unwrap();
        assert_eq!(files.last_tried.cert, last.cert_pem.as_bytes());
        assert_eq!(files.poll(&metrics).await, PollOutcome::Unchanged);
    }
}
