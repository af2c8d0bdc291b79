//! isvc-ingress installed on the control plane as a user installs it: `manifests/dev` (KServe's
//! CRD, namespace and `inferenceservice-config`), then `manifests/base` as kustomize renders it,
//! with what has no meaning without a kubelet left out (Deployment, Service,
//! PodDisruptionBudget) and the webhooks' `clientConfig.service` rewritten to
//! `url: https://127.0.0.1:<port>/<path>` with the caBundle that `isvc-ingress certs` printed.
//! `isvc-ingress serve` runs with the Deployment's own arguments, as the ServiceAccount
//! `isvc-ingress` (a token from the TokenRequest API), never as admin, so a permission the
//! manifests lack fails a test.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::control_plane::{
    ControlPlane, Supervised, eventually, free_port, kubeconfig, repository,
};

/// The namespace and ServiceAccount of `manifests/base`.
pub const NAMESPACE: &str = "isvc-ingress";
pub const SERVICE_ACCOUNT: &str = "isvc-ingress";

/// The documents of `kubectl kustomize <directory>`.
pub fn kustomize(plane: &ControlPlane, directory: &str) -> Vec<Value> {
    let text = plane.kubectl_ok(&[
        "kustomize",
        &repository().join(directory).display().to_string(),
    ]);
    text.split("\n---\n")
        .filter(|document| !document.trim().is_empty())
        .map(|document| serde_yaml_ng::from_str(document).expect("kustomize prints YAML"))
        .collect()
}

/// One running `isvc-ingress serve` (a replica).
pub struct Replica {
    pub process: Supervised,
    pub webhook_port: u16,
    pub admin_port: u16,
}

impl Replica {
    /// `GET http://127.0.0.1:<admin>/<path>`: the status code, or 0 when nothing answers.
    pub fn admin_status(&self, path: &str) -> u16 {
        admin_get(self.admin_port, path).0
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> String {
        admin_get(self.admin_port, "/metrics").1
    }
}

/// A minimal HTTP/1.1 GET on the plain-HTTP admin port: (status, body).
pub fn admin_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `isvc-ingress certs` for the Service `service` in `namespace` and for 127.0.0.1 (the
/// webhooks are called by URL here), written to `out` (`ca.crt`, `tls.crt`, `tls.key`); returns
/// the caBundle it printed (base64 of the CA PEM).
pub fn webhook_certificates(service: &str, namespace: &str, out: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_isvc-ingress"))
        .args([
            "certs",
            "--service",
            service,
            "--namespace",
            namespace,
            "--ip-address",
            "127.0.0.1",
            "--out",
        ])
        .arg(out)
        .output()
        .expect("isvc-ingress certs runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// isvc-ingress as installed: its certificates, the ServiceAccount's kubeconfig, its replicas.
pub struct Installation {
    /// The webhook configurations of `manifests/base`, as kustomize renders them.
    webhook_configurations: Vec<Value>,
    pub certificates: PathBuf,
    /// The caBundle `isvc-ingress certs` printed (base64 of the CA PEM).
    pub ca_bundle: String,
    /// A kubeconfig with a token of the ServiceAccount `isvc-ingress`.
    pub service_account_kubeconfig: PathBuf,
    /// The Deployment's container arguments (after `serve`), as `manifests/base` renders them.
    pub deployment_args: Vec<String>,
    pub replicas: Vec<Replica>,
}

/// Installs `manifests/dev` and `manifests/base`, starts one replica with `extra_args` and
/// registers the webhooks on it. Waits until the API server calls the webhook.
pub fn install(plane: &ControlPlane, extra_args: &[&str]) -> Installation {
    let output = plane.kubectl(&[
        "apply",
        "--server-side",
        "-k",
        &repository().join("manifests/dev").display().to_string(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let documents = kustomize(plane, "manifests/base");
    let without_kubelet = ["Deployment", "Service", "PodDisruptionBudget"];
    let (webhooks, rest): (Vec<Value>, Vec<Value>) = documents
        .iter()
        .filter(|document| !without_kubelet.contains(&document["kind"].as_str().unwrap_or("")))
        .cloned()
        .partition(|document| {
            document["kind"]
                .as_str()
                .unwrap_or("")
                .ends_with("WebhookConfiguration")
        });
    plane.apply(&json!({"apiVersion": "v1", "kind": "List", "items": rest}).to_string());

    let deployment = documents
        .iter()
        .find(|document| document["kind"] == "Deployment")
        .expect("manifests/base has a Deployment");
    let container_args: Vec<String> =
        deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .expect("the container has args")
            .iter()
            .map(|arg| arg.as_str().unwrap().to_owned())
            .collect();
    assert_eq!(container_args.first().map(String::as_str), Some("serve"));

    let certificates = plane.directory().join("webhook-certs");
    let ca_bundle = webhook_certificates(SERVICE_ACCOUNT, NAMESPACE, &certificates);

    let token = plane.kubectl_ok(&[
        "create",
        "token",
        SERVICE_ACCOUNT,
        "-n",
        NAMESPACE,
        "--duration=2h",
    ]);
    let service_account_kubeconfig = plane.directory().join("service-account.kubeconfig");
    std::fs::write(
        &service_account_kubeconfig,
        kubeconfig(
            &plane.server_url(),
            &plane.ca_pem,
            &json!({"token": token.trim()}),
        ),
    )
    .unwrap();

    let mut installation = Installation {
        webhook_configurations: webhooks,
        certificates,
        ca_bundle,
        service_account_kubeconfig,
        deployment_args: container_args[1..].to_vec(),
        replicas: Vec::new(),
    };
    let replica = installation.start_replica(plane, extra_args);
    let port = replica.webhook_port;
    installation.replicas.push(replica);

    installation.register_webhooks(plane, port);
    installation
}

impl Installation {
    /// The names of the webhooks of `manifests/base` (each once, sorted).
    #[allow(dead_code)] // benches/control_plane_scale.rs
    pub fn webhook_names(&self) -> Vec<String> {
        let names: std::collections::BTreeSet<String> = self
            .webhook_configurations
            .iter()
            .filter_map(|configuration| configuration["webhooks"].as_array())
            .flatten()
            .filter_map(|webhook| webhook["name"].as_str().map(str::to_owned))
            .collect();
        names.into_iter().collect()
    }

    /// Registers the webhooks of `manifests/base` on the replica listening on `port`: each
    /// `clientConfig.service` becomes `url: https://127.0.0.1:<port>/<path>` with the caBundle
    /// of `isvc-ingress certs` (what a Service's endpoints do in a cluster, done by hand).
    /// Waits until the API server calls the webhook.
    pub fn register_webhooks(&self, plane: &ControlPlane, port: u16) {
        let rewritten: Vec<Value> = self
            .webhook_configurations
            .iter()
            .cloned()
            .map(|mut configuration| {
                for webhook in configuration["webhooks"].as_array_mut().unwrap() {
                    let path = webhook["clientConfig"]["service"]["path"]
                        .as_str()
                        .expect("the base's webhooks name a Service path")
                        .to_owned();
                    webhook["clientConfig"] = json!({
                        "url": format!("https://127.0.0.1:{port}{path}"),
                        "caBundle": self.ca_bundle,
                    });
                }
                configuration
            })
            .collect();
        plane.apply(&json!({"apiVersion": "v1", "kind": "List", "items": rewritten}).to_string());
        wait_until_the_webhook_is_called(plane);
    }

    /// Starts another `isvc-ingress serve` with the Deployment's arguments (certificate paths
    /// pointed at this installation's files) plus `extra_args`, as the ServiceAccount, and waits
    /// until its `/readyz` answers 200.
    pub fn start_replica(&self, plane: &ControlPlane, extra_args: &[&str]) -> Replica {
        self.start_replica_on(plane, free_port(), free_port(), extra_args)
    }

    /// [`Self::start_replica`] on given ports: a replica restarted on the ports of the one it
    /// replaces keeps the registered webhooks pointing at it (a Pod behind the same Service).
    pub fn start_replica_on(
        &self,
        plane: &ControlPlane,
        webhook_port: u16,
        admin_port: u16,
        extra_args: &[&str],
    ) -> Replica {
        let mut args: Vec<String> = vec!["serve".into()];
        for arg in &self.deployment_args {
            let arg = if let Some(file) = arg.strip_prefix("--tls-cert=") {
                format!(
                    "--tls-cert={}",
                    self.certificates
                        .join(file.rsplit('/').next().unwrap())
                        .display()
                )
            } else if let Some(file) = arg.strip_prefix("--tls-key=") {
                format!(
                    "--tls-key={}",
                    self.certificates
                        .join(file.rsplit('/').next().unwrap())
                        .display()
                )
            } else {
                arg.clone()
            };
            args.push(arg);
        }
        args.push(format!("--listen=127.0.0.1:{webhook_port}"));
        args.push(format!("--admin-listen=127.0.0.1:{admin_port}"));
        args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
        // One log per process, also when a replica is restarted on the same ports.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let started = STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = plane
            .directory()
            .join(format!("serve-{webhook_port}-{started}.log"));
        let process = Supervised::spawn(
            std::path::Path::new(env!("CARGO_BIN_EXE_isvc-ingress")),
            &args,
            &[
                (
                    "KUBECONFIG",
                    self.service_account_kubeconfig.display().to_string(),
                ),
                ("POD_NAMESPACE", NAMESPACE.to_owned()),
                (
                    "RUST_LOG",
                    std::env::var("E2E_SERVE_LOG").unwrap_or_else(|_| "info".to_owned()),
                ),
            ],
            &log,
        );
        let replica = Replica {
            process,
            webhook_port,
            admin_port,
        };
        assert!(
            // Generous: at 10,000 ISVCs (benches/control_plane_scale.rs) on a busy machine the
            // initial lists take seconds.
            eventually(Duration::from_secs(180), || replica.admin_status("/readyz")
                == 200),
            "serve never became ready:\n{}",
            replica.process.log_tail(40)
        );
        replica
    }
}

/// A new webhook configuration takes effect some time after it is created, and nothing says
/// when (kubernetes#54712): dry-run a probe ISVC until our annotation shows. The probe carries a
/// label `team`, which the KServe-alongside suite's domain template reads.
fn wait_until_the_webhook_is_called(plane: &ControlPlane) {
    let probe = json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "probe", "namespace": "kserve", "labels": {"team": "probe"}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
    })
    .to_string();
    let called = eventually(Duration::from_secs(30), || {
        let output = plane.kubectl_with_input(
            &["create", "--dry-run=server", "-o", "json", "-f", "-"],
            Some(&probe),
        );
        output.status.success()
            && serde_json::from_slice::<Value>(&output.stdout).is_ok_and(|object| {
                object["metadata"]["annotations"]["isvc-ingress.io/url"].is_string()
            })
    });
    assert!(called, "the API server never called the webhook");
}
