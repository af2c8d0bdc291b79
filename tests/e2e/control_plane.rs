//! A real Kubernetes control plane for the end-to-end tests: etcd and kube-apiserver, built from
//! their Go modules by `scripts/control-plane.sh` (cached outside the work tree), started on
//! free loopback ports the way controller-runtime's envtest starts them (docs/testing.md).
//!
//! Certificates come from rcgen: one CA signs the API server's serving certificate (IP SAN
//! 127.0.0.1), the admin's client certificate (`CN=admin, O=system:masters`), and a separate
//! ECDSA key signs ServiceAccount tokens, so the TokenRequest API works. Authorization is RBAC.
//! There is no kubelet, scheduler or controller manager: no Pods, no garbage collection, no
//! route status unless a test writes it.
//!
//! Every process runs under a lifeline (see [`Supervised`]): it is stopped when its handle is
//! dropped, and also when the test process dies in any way, panics included.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The repository root.
pub fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding `kube-apiserver`, `kubectl` and `etcd`: built by
/// `scripts/control-plane.sh` on first use (minutes, once per version and machine), then reused.
/// Fails the test, saying what to install, where Go or the module proxy is missing: the suite
/// never skips.
pub fn binaries() -> &'static Path {
    static BINARIES: OnceLock<PathBuf> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let output = Command::new("bash")
            .arg(repository().join("scripts/control-plane.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("bash runs scripts/control-plane.sh");
        assert!(
            output.status.success(),
            "scripts/control-plane.sh could not provide kube-apiserver, kubectl and etcd \
             (its messages are above); the end-to-end tests need them"
        );
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

/// A free TCP port on 127.0.0.1 (bound, read, released: envtest's `addr.Suggest`).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A child process tied to the test process by a lifeline: a bash wrapper starts it, then
/// blocks reading a pipe from the test. When the test closes the pipe ([`Supervised::stop`],
/// drop) or dies, the read ends and the wrapper sends SIGTERM, then SIGKILL after 10 s.
pub struct Supervised {
    wrapper: Child,
    lifeline: Option<ChildStdin>,
    pid_file: PathBuf,
    /// Where the process's stdout and stderr go.
    pub log: PathBuf,
}

const LIFELINE: &str = r#"
"$@" >>"$SUPERVISED_LOG" 2>&1 </dev/null &
child=$!
echo "$child" >"$SUPERVISED_PID"
cat >/dev/null
kill -TERM "$child" 2>/dev/null
for _ in $(seq 1 100); do
  kill -0 "$child" 2>/dev/null || exit 0
  sleep 0.1
done
kill -KILL "$child" 2>/dev/null
"#;

impl Supervised {
    /// Starts `program` with `args` and `environment`, its output appended to `log`.
    pub fn spawn(
        program: &Path,
        args: &[String],
        environment: &[(&str, String)],
        log: &Path,
    ) -> Self {
        let pid_file = log.with_extension("pid");
        let _ = std::fs::remove_file(&pid_file);
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(LIFELINE)
            .arg("supervised")
            .arg(program)
            .args(args)
            .env("SUPERVISED_LOG", log)
            .env("SUPERVISED_PID", &pid_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in environment {
            command.env(name, value);
        }
        let mut wrapper = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {program:?}: {error}"));
        let lifeline = wrapper.stdin.take();
        Self {
            wrapper,
            lifeline,
            pid_file,
            log: log.to_owned(),
        }
    }

    /// The process id of the supervised program (not of its wrapper).
    pub fn pid(&self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.pid_file)
                && let Ok(pid) = text.trim().parse()
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "{:?} never started", self.log);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the supervised program still runs.
    pub fn is_running(&self) -> bool {
        Command::new("kill")
            .args(["-0", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Sends `signal` (e.g. `KILL`) to the program itself, as a crash or the kubelet would.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Stops the program (SIGTERM, SIGKILL after 10 s) and waits for it.
    pub fn stop(&mut self) {
        drop(self.lifeline.take());
        let _ = self.wrapper.wait();
    }

    /// The log so far, for assertion messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The certificates and keys of one control plane, PEM.
struct Certificates {
    ca: String,
    apiserver_cert: String,
    apiserver_key: String,
    admin_cert: String,
    admin_key: String,
    service_account_key: String,
    service_account_public_key: String,
}

fn certificates() -> Certificates {
    let mut ca_params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "isvc-ingress e2e CA");
    ca_params.distinguished_name = name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = ca_cert.pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |params: CertificateParams| {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let mut serving = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let (apiserver_cert, apiserver_key) = leaf(serving);

    let mut admin = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "admin");
    name.push(DnType::OrganizationName, "system:masters");
    admin.distinguished_name = name;
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let (admin_cert, admin_key) = leaf(admin);

    let signer = KeyPair::generate().unwrap();
    Certificates {
        ca,
        apiserver_cert,
        apiserver_key,
        admin_cert,
        admin_key,
        service_account_key: signer.serialize_pem(),
        service_account_public_key: signer.public_key_pem(),
    }
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|error| panic!("{path:?}: {error}"));
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A kubeconfig for `server`, trusting `ca_pem`, with either a client certificate or a token.
pub fn kubeconfig(server: &str, ca_pem: &str, user: &serde_json::Value) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {
            "server": server,
            "certificate-authority-data": base64(ca_pem),
        }}],
        "users": [{"name": "e2e", "user": user}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
        "current-context": "e2e",
    })
    .to_string()
}

/// etcd and kube-apiserver, running, with the repository's CRDs installed.
pub struct ControlPlane {
    directory: tempfile::TempDir,
    etcd: Supervised,
    apiserver: Option<Supervised>,
    apiserver_args: Vec<String>,
    apiserver_environment: Vec<(&'static str, String)>,
    /// The API server's port on 127.0.0.1.
    pub api_port: u16,
    /// The CA every certificate of this control plane chains to, PEM.
    pub ca_pem: String,
    /// A kubeconfig of `system:masters` (client certificate).
    pub admin_kubeconfig: PathBuf,
    /// How long from starting etcd to `/readyz` answering 200.
    pub start_to_ready: Duration,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver, waits for `/readyz`, and installs `tests/crds/`.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`ControlPlane::start`] with `extra_apiserver_args` appended to kube-apiserver's
    /// arguments (e.g. `--audit-log-path`, to see every write and who made it).
    pub fn start_with(extra_apiserver_args: &[String]) -> Self {
        Self::start_configured(extra_apiserver_args, &[])
    }

    /// [`ControlPlane::start_with`], kube-apiserver also getting `apiserver_environment` (e.g.
    /// the `OTEL_BSP_*` settings of its span exporter, for the scale benchmark's trace spans),
    /// at every start.
    pub fn start_configured(
        extra_apiserver_args: &[String],
        apiserver_environment: &[(&'static str, String)],
    ) -> Self {
        let bin = binaries();
        let directory = tempfile::Builder::new()
            .prefix("isvc-ingress-e2e-")
            .tempdir()
            .expect("a temporary directory");
        let dir = directory.path();
        let certificates = certificates();
        for (file, contents) in [
            ("ca.crt", &certificates.ca),
            ("apiserver.crt", &certificates.apiserver_cert),
            ("apiserver.key", &certificates.apiserver_key),
            ("service-account.key", &certificates.service_account_key),
            (
                "service-account.pub",
                &certificates.service_account_public_key,
            ),
        ] {
            write(&dir.join(file), contents);
        }

        let started = Instant::now();
        let etcd_port = free_port();
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let etcd = Supervised::spawn(
            &bin.join("etcd"),
            &[
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls=http://127.0.0.1:{}", free_port()),
                "--unsafe-no-fsync=true".into(),
            ],
            &[],
            &dir.join("etcd.log"),
        );

        let api_port = free_port();
        let path = |file: &str| dir.join(file).display().to_string();
        let apiserver_args: Vec<String> = [
            format!("--etcd-servers={etcd_url}"),
            format!("--cert-dir={}", dir.display()),
            format!("--tls-cert-file={}", path("apiserver.crt")),
            format!("--tls-private-key-file={}", path("apiserver.key")),
            format!("--secure-port={api_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            // Found on first use: the default endpoint reconciler refuses a loopback
            // advertise address ("may not be in the loopback range"); with no kubelet there
            // is nothing for it to reconcile anyway.
            "--endpoint-reconciler-type=none".into(),
            format!("--client-ca-file={}", path("ca.crt")),
            "--authorization-mode=RBAC".into(),
            // Nothing creates the `default` ServiceAccounts without a controller manager.
            "--disable-admission-plugins=ServiceAccount".into(),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--allow-privileged=true".into(),
            format!("--service-account-issuer=https://127.0.0.1:{api_port}/"),
            format!("--service-account-key-file={}", path("service-account.pub")),
            format!(
                "--service-account-signing-key-file={}",
                path("service-account.key")
            ),
        ]
        .into_iter()
        .chain(extra_apiserver_args.iter().cloned())
        .collect();
        let admin_kubeconfig = dir.join("admin.kubeconfig");
        write(
            &admin_kubeconfig,
            &kubeconfig(
                &format!("https://127.0.0.1:{api_port}"),
                &certificates.ca,
                &serde_json::json!({
                    "client-certificate-data": base64(&certificates.admin_cert),
                    "client-key-data": base64(&certificates.admin_key),
                }),
            ),
        );
        let mut plane = Self {
            directory,
            etcd,
            apiserver: None,
            apiserver_args,
            apiserver_environment: apiserver_environment.to_vec(),
            api_port,
            ca_pem: certificates.ca,
            admin_kubeconfig,
            start_to_ready: Duration::ZERO,
        };
        plane.start_apiserver();
        plane.start_to_ready = started.elapsed();
        plane.kubectl_ok(&[
            "apply",
            "--server-side",
            "-f",
            &repository().join("tests/crds").display().to_string(),
        ]);
        // Right after the apply a CRD may have no conditions yet, which `kubectl wait` reports
        // as an error rather than waiting: retry until every CRD is Established.
        let established = eventually(Duration::from_secs(60), || {
            plane
                .kubectl(&[
                    "wait",
                    "--for=condition=Established",
                    "crd",
                    "--all",
                    "--timeout=30s",
                ])
                .status
                .success()
        });
        assert!(
            established,
            "the CRDs of tests/crds never became Established"
        );
        plane
    }

    /// The control plane's scratch directory (certificates, logs, data).
    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.api_port)
    }

    /// Starts kube-apiserver (again) and waits until `/readyz` answers 200.
    pub fn start_apiserver(&mut self) {
        assert!(self.apiserver.is_none(), "kube-apiserver already runs");
        let log = self.directory().join("kube-apiserver.log");
        let apiserver = Supervised::spawn(
            &binaries().join("kube-apiserver"),
            &self.apiserver_args,
            &self.apiserver_environment,
            &log,
        );
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let output = self.kubectl(&["get", "--raw", "/readyz"]);
            if output.status.success() {
                break;
            }
            assert!(
                apiserver.is_running() && Instant::now() < deadline,
                "kube-apiserver did not become ready:\n{}",
                apiserver.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.apiserver = Some(apiserver);
    }

    /// The process id of kube-apiserver (for its CPU time and memory in the scale benchmark).
    #[allow(dead_code)] // benches/control_plane_scale.rs
    pub fn apiserver_pid(&self) -> u32 {
        self.apiserver.as_ref().expect("kube-apiserver runs").pid()
    }

    /// The process id of etcd.
    #[allow(dead_code)] // benches/control_plane_scale.rs
    pub fn etcd_pid(&self) -> u32 {
        self.etcd.pid()
    }

    /// Stops kube-apiserver (etcd keeps the data).
    pub fn stop_apiserver(&mut self) {
        let mut apiserver = self.apiserver.take().expect("kube-apiserver runs");
        apiserver.stop();
    }

    /// Runs the control plane's kubectl with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with_input(args, None)
    }

    /// Runs kubectl as admin with `input` on stdin.
    pub fn kubectl_with_input(&self, args: &[&str], input: Option<&str>) -> Output {
        kubectl_as(&self.admin_kubeconfig, args, input)
    }

    /// Runs kubectl as admin and returns its stdout; fails the test on a non-zero exit.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// `kubectl apply --server-side -f -` of `manifests` (YAML or JSON) as admin.
    pub fn apply(&self, manifests: &str) -> String {
        let output = self.kubectl_with_input(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(manifests),
        );
        assert!(
            output.status.success(),
            "kubectl apply failed: {}\n{manifests}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Creates the namespace `name` (idempotent).
    pub fn namespace(&self, name: &str) {
        self.apply(&format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{name}\"}}}}"
        ));
    }

    /// The object `kind/name` (in `namespace`, if any) as JSON, or `None` when it is absent.
    pub fn get(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<serde_json::Value> {
        let mut args = vec!["get", kind, name, "-o", "json", "--ignore-not-found"];
        if let Some(namespace) = namespace {
            args.extend(["-n", namespace]);
        }
        let text = self.kubectl_ok(&args);
        (!text.trim().is_empty()).then(|| serde_json::from_str(&text).expect("kubectl prints JSON"))
    }
}

/// Runs the control plane's kubectl with `kubeconfig`.
pub fn kubectl_as(kubeconfig: &Path, args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new(binaries().join("kubectl"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input.as_bytes()).unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(mut apiserver) = self.apiserver.take() {
            apiserver.stop();
        }
        self.etcd.stop();
    }
}

/// Polls `condition` every 100 ms until it holds or `limit` passes; whether it held.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
