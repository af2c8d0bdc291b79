//! Shared helpers for the loopback integration tests: the crypto provider, a server on
//! 127.0.0.1:0 with CA-signed certificates on disk, clients that verify it, and handlers with
//! controllable behaviour.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use isvc_ingress::admission::{AdmissionState, Webhook};
use isvc_ingress::certs::{CertificateAuthority, CertificateBundle};
use isvc_ingress::config::KserveConfig;
use isvc_ingress::metrics::Metrics;
use isvc_ingress::plan::Policy;
use isvc_ingress::serve::ServeArgs;
use isvc_ingress::server::echo::EchoHandler;
use isvc_ingress::server::{
    AdmissionHandler, AdmissionReply, CancellationToken, Endpoint, Readiness, RunningServer,
    start_server,
};
use isvc_ingress_testkit::client::{self, ClientTls, Connection, HttpVersion};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;

/// Installs ring as the process-wide rustls provider, once per test binary.
pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another test in the same binary may have won the race; either way ring is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[derive(Parser)]
struct ServeCli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// `ServeArgs` as the command line would produce them.
pub fn serve_args(args: &[&str]) -> ServeArgs {
    let mut argv = vec!["isvc-ingress"];
    argv.extend_from_slice(args);
    ServeCli::try_parse_from(argv)
        .expect("valid serve args")
        .serve
}

/// Hosts every loopback serving certificate covers.
pub const HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];

/// The server name clients verify.
pub const SERVER_NAME: &str = "localhost";

/// A certificate directory laid out like a mounted Secret: `tls.crt` and `tls.key` are
/// symlinks through `..data`, which is swapped atomically to a new timestamped directory.
pub struct SecretDir {
    pub dir: tempfile::TempDir,
    generation: usize,
}

impl SecretDir {
    pub fn new(cert_pem: &[u8], key_pem: &[u8]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("..data/tls.crt", dir.path().join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", dir.path().join("tls.key")).unwrap();
        let mut secret = Self { dir, generation: 0 };
        secret.update(cert_pem, key_pem);
        secret
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    /// Writes a new generation and swaps `..data` to it, as the kubelet does.
    pub fn update(&mut self, cert_pem: &[u8], key_pem: &[u8]) {
        self.generation += 1;
        let name = format!("..gen_{}", self.generation);
        let generation_dir = self.dir.path().join(&name);
        std::fs::create_dir(&generation_dir).unwrap();
        std::fs::write(generation_dir.join("tls.crt"), cert_pem).unwrap();
        std::fs::write(generation_dir.join("tls.key"), key_pem).unwrap();
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
    }
}

/// A server under test.
pub struct TestServer {
    pub running: Option<RunningServer>,
    pub shutdown: CancellationToken,
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub ca: CertificateAuthority,
    pub serving: CertificateBundle,
    pub secret: SecretDir,
}

impl TestServer {
    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.as_ref().unwrap().webhook_addr()
    }

    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.running.as_ref().unwrap().admin_addr()
    }

    pub fn ca_pem(&self) -> &str {
        self.ca.ca_pem()
    }

    pub async fn connect(&self, version: HttpVersion) -> Connection {
        connect(self.addr(), self.ca_pem(), version).await
    }

    /// The leaf certificate the server presents to a new handshake now.
    pub async fn presented_certificate(&self) -> CertificateDer<'static> {
        let conn = self.connect(HttpVersion::Http1).await;
        conn.info()
            .peer_certificate
            .clone()
            .expect("peer certificate")
    }

    /// One sample of the admin port's `/metrics` (0 when absent), e.g.
    /// `isvc_ingress_tls_reloads_total`.
    pub async fn metric(&self, series: &str) -> f64 {
        metric(self.admin_addr(), series).await
    }

    /// Cancels the shutdown token and waits (bounded) for the server to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let running = self.running.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), running.wait())
            .await
            .expect("server stops within 10s")
            .expect("server stops cleanly");
    }
}

/// Starts a server with `handler` and extra flags; caches are marked synced.
pub async fn start(handler: Arc<dyn AdmissionHandler>, extra: &[&str]) -> TestServer {
    install_provider();
    let ca = CertificateAuthority::new("isvc-ingress test CA", 1).unwrap();
    let serving = ca.issue(&HOSTS).unwrap();
    let secret = SecretDir::new(serving.cert_pem.as_bytes(), serving.key_pem.as_bytes());
    let cert = secret.cert_path();
    let key = secret.key_path();
    let defaults = [
        ("--listen", "127.0.0.1:0"),
        ("--admin-listen", "127.0.0.1:0"),
        ("--tls-cert", cert.to_str().unwrap()),
        ("--tls-key", key.to_str().unwrap()),
        ("--tls-reload-interval", "100ms"),
        ("--shutdown-grace", "5s"),
    ];
    // A flag given in `extra` replaces the default (clap refuses a flag given twice).
    let mut flags: Vec<&str> = defaults
        .iter()
        .filter(|(flag, _)| !extra.contains(flag))
        .flat_map(|(flag, value)| [*flag, *value])
        .collect();
    flags.extend_from_slice(extra);
    let args = serve_args(&flags);
    let metrics = Metrics::new();
    let readiness = Readiness::new();
    readiness.set_caches_synced(true);
    let shutdown = CancellationToken::new();
    let running = start_server(
        &args.server,
        handler,
        metrics.clone(),
        readiness.clone(),
        shutdown.clone(),
    )
    .await
    .expect("server starts");
    TestServer {
        running: Some(running),
        shutdown,
        metrics,
        readiness,
        ca,
        serving,
        secret,
    }
}

pub async fn start_echo(extra: &[&str]) -> TestServer {
    start(Arc::new(EchoHandler), extra).await
}

/// The real admission handler: the configuration KServe ships, the default policy.
pub fn real_webhook() -> Arc<Webhook> {
    let state = AdmissionState::new(KserveConfig::shipped(), Policy::default(), "kserve");
    Arc::new(Webhook::new(Arc::new(state)))
}

/// Starts a server with the real admission handler.
pub async fn start_webhook(extra: &[&str]) -> TestServer {
    start(real_webhook(), extra).await
}

/// An AdmissionReview of `tests/fixtures/admission`, as kube-apiserver sends it.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/admission/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The object of `review` after the JSON Patch of the admission `response` (a base64 string
/// on the wire) is applied to it; why not, when the response carries no usable patch.
pub fn patched(review: &Value, response: &Value) -> Result<Value, String> {
    if response["patchType"] != "JSONPatch" {
        return Err(format!(
            "patchType is {}, not JSONPatch",
            response["patchType"]
        ));
    }
    let encoded = response["patch"]
        .as_str()
        .ok_or("the patch is not a base64 string")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|error| format!("the patch is not base64: {error}"))?;
    let patch: json_patch::Patch = serde_json::from_slice(&bytes)
        .map_err(|error| format!("the patch is not a JSON Patch: {error}"))?;
    let mut object = review["request"]["object"].clone();
    json_patch::patch(&mut object, &patch)
        .map_err(|error| format!("the patch does not apply to the request object: {error}"))?;
    Ok(object)
}

/// A verified connection to `addr` for [`SERVER_NAME`].
pub async fn connect(addr: std::net::SocketAddr, ca_pem: &str, version: HttpVersion) -> Connection {
    try_connect(addr, &ClientTls::new(ca_pem.as_bytes(), version))
        .await
        .expect("connect")
}

pub async fn try_connect(
    addr: std::net::SocketAddr,
    tls: &ClientTls,
) -> Result<Connection, client::ClientError> {
    client::connect(addr, SERVER_NAME, tls.build()?).await
}

/// DER of the first certificate in a PEM string.
pub fn cert_der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("certificate PEM")
}

/// A plain-HTTP GET on the admin port: status, content type, body.
pub async fn admin_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("admin connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("admin handshake");
    tokio::spawn(conn);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.expect("admin request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// The value of one sample line in the `/metrics` text, e.g.
/// `isvc_ingress_tls_reloads_total`; 0 when absent.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// One sample of the `/metrics` of the admin port at `admin` (0 when absent).
pub async fn metric(admin: std::net::SocketAddr, series: &str) -> f64 {
    let (_, _, text) = admin_get(admin, "/metrics").await;
    sample(&text, series)
}

/// Polls `condition` every 20ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gate the test opens to let blocked handler calls continue.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }

    /// Blocks the calling (blocking-pool) thread until opened, at most 30s.
    pub fn wait(&self) {
        let guard = self.open.lock().unwrap();
        let _unused = self
            .changed
            .wait_timeout_while(guard, Duration::from_secs(30), |open| !*open)
            .unwrap();
    }
}

/// Echo, except for bodies containing a marker:
/// `"panic"` panics, `"slow"` sleeps `slow`, `"gate"` waits for the gate.
pub struct ScriptedHandler {
    pub slow: Duration,
    pub gate: Arc<Gate>,
}

impl ScriptedHandler {
    pub fn new(slow: Duration) -> Self {
        Self {
            slow,
            gate: Arc::new(Gate::default()),
        }
    }
}

impl AdmissionHandler for ScriptedHandler {
    fn handle(&self, endpoint: Endpoint, body: &[u8]) -> AdmissionReply {
        let text = String::from_utf8_lossy(body);
        if text.contains("\"panic\"") {
            panic!("scripted panic");
        }
        if text.contains("\"slow\"") {
            std::thread::sleep(self.slow);
        }
        if text.contains("\"gate\"") {
            self.gate.wait();
        }
        EchoHandler.handle(endpoint, body)
    }
}

/// An AdmissionReview whose uid is `uid` (use the markers of [`ScriptedHandler`] as uid).
pub fn review(uid: &str) -> String {
    client::sample_review(uid, "InferenceService", "CREATE")
}
