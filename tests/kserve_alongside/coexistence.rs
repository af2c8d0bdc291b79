//! Coexistence (issue 15, item 2): KServe's manager and `isvc-ingress serve --route-owner
//! kserve` (the default) on one control plane, both webhooks registered, through create, an
//! update of a label the domain template reads, a transformer added, `serving.kserve.io/stop`,
//! cluster-local and delete; once with Ingresses, once with Gateway API HTTPRoutes.
//!
//! After every step: the status URLs (`status.url`, `status.address.url`, each component's
//! `url`) name hosts KServe's routes serve (or the cluster-local Service), and equal the URL
//! isvc-ingress's webhook annotated; `IngressReady` does not go back and forth. Over a quiet
//! minute no ISVC changes, no route is written, no object is written by both controllers (the
//! audit log counts writes per object and writer), and no write of KServe's was refused by our
//! webhook.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::audit::{
    Audit, Write, audit, controller_writes, count_by_object_and_writer, written_by_both,
};
use crate::control_plane::{ControlPlane, Supervised, binaries, eventually};
use crate::differential::flatten;
use crate::inputs::render_input;
use crate::install::{Installation, install};
use crate::kserve::{
    Manager, install_kserve, kserve_config, models_namespace, settle, start_manager,
};

pub const MODELS: &str = "models";

/// The domain template of these tests reads the label `team`, so a label update moves hosts.
pub const DOMAIN_TEMPLATE: &str = "{{ .Name }}-{{ .Labels.team }}.{{ .IngressDomain }}";

/// The ISVC `name` of team `team`, a sklearn predictor, with a transformer when asked.
pub fn isvc(name: &str, team: &str, transformer: bool) -> Value {
    let mut isvc = json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": MODELS, "labels": {"team": team}},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                          "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}}},
    });
    if transformer {
        isvc["spec"]["transformer"] = json!({"containers": [
            {"name": "kserve-container", "image": "kserve/image-transformer:latest"}
        ]});
    }
    isvc
}

/// Every ISVC version the API server sent on a watch of the models namespace.
pub struct IsvcWatch {
    process: Supervised,
}

impl IsvcWatch {
    pub fn start(plane: &ControlPlane) -> Self {
        let process = Supervised::spawn(
            &binaries().join("kubectl"),
            &[
                format!("--kubeconfig={}", plane.admin_kubeconfig.display()),
                "get".to_owned(),
                "inferenceservices.serving.kserve.io".to_owned(),
                "-n".to_owned(),
                MODELS.to_owned(),
                "--watch".to_owned(),
                "--output-watch-events".to_owned(),
                "-o".to_owned(),
                "json".to_owned(),
            ],
            &[],
            &plane.directory().join("isvc-watch.json"),
        );
        Self { process }
    }

    /// The ISVC objects seen so far, in order.
    pub fn versions(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.process.log).unwrap_or_default();
        serde_json::Deserializer::from_str(&text)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .map(|event| event["object"].clone())
            .collect()
    }
}

/// `IngressReady`'s status (`True`, `False`, or `absent`) in `isvc`.
pub fn ingress_ready(isvc: &Value) -> String {
    isvc["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|condition| condition["type"] == "IngressReady")
        .map(|condition| {
            format!(
                "{}{}",
                condition["status"].as_str().unwrap_or("?"),
                condition["reason"]
                    .as_str()
                    .map(|reason| format!(" ({reason})"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "absent".to_owned())
}

/// The successive `IngressReady` values of each ISVC in `versions` (repeats folded).
pub fn ingress_ready_sequences(versions: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut sequences: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for isvc in versions {
        let name = isvc["metadata"]["name"].as_str().unwrap_or("?").to_owned();
        let value = ingress_ready(isvc);
        let sequence = sequences.entry(name).or_default();
        if sequence.last() != Some(&value) {
            sequence.push(value);
        }
    }
    sequences
}

/// The fields that changed between the last few successive versions of each ISVC in
/// `versions`, for a failure message.
fn last_changes(versions: &[Value]) -> String {
    let mut text = String::new();
    for pair in versions.windows(2).rev().take(6) {
        let (before, after) = (&pair[0], &pair[1]);
        if before["metadata"]["name"] != after["metadata"]["name"] {
            continue;
        }
        let mut old = std::collections::BTreeMap::new();
        let mut new = std::collections::BTreeMap::new();
        flatten("status", &before["status"], &mut old);
        flatten("status", &after["status"], &mut new);
        let mut changed: Vec<String> = old
            .keys()
            .chain(new.keys())
            .filter(|key| old.get(*key) != new.get(*key) && !key.ends_with("lastTransitionTime"))
            .map(|key| format!("{key}: {:?} -> {:?}", old.get(key), new.get(key)))
            .collect();
        changed.dedup();
        text.push_str(&format!(
            "\n  {} {}: {}",
            after["metadata"]["name"],
            after["metadata"]["resourceVersion"],
            changed.join("; ")
        ));
    }
    text
}

fn host_of(url: &str) -> &str {
    url.split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
}

/// The hosts of the Ingresses and HTTPRoutes of `namespace` whose controller is `uid`.
pub fn served_hosts(plane: &ControlPlane, namespace: &str, uid: &str) -> Vec<String> {
    let list: Value = serde_json::from_str(&plane.kubectl_ok(&[
        "get",
        "ingresses.networking.k8s.io,httproutes.gateway.networking.k8s.io",
        "-n",
        namespace,
        "-o",
        "json",
    ]))
    .unwrap();
    let mut hosts = Vec::new();
    for route in list["items"].as_array().unwrap() {
        let owned = route["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|owner| owner["controller"] == true && owner["uid"] == uid);
        if !owned {
            continue;
        }
        for rule in route["spec"]["rules"].as_array().into_iter().flatten() {
            if let Some(host) = rule["host"].as_str() {
                hosts.push(host.to_owned());
            }
        }
        for host in route["spec"]["hostnames"].as_array().into_iter().flatten() {
            hosts.push(host.as_str().unwrap_or_default().to_owned());
        }
    }
    hosts
}

/// What the status of the stored ISVC `name` should say, and whether it does: `Ok(())` or the
/// first disagreement. External: every URL's host is served by KServe's routes; cluster-local:
/// `status.url` is the cluster-local address; stopped: `IngressReady` False `Stopped`. Always:
/// `status.url` equals the URL isvc-ingress's webhook annotated and render plans; unless
/// stopped (KServe then deletes the Services and keeps the address), `status.address.url`
/// names a Service that exists.
pub fn agrees(plane: &ControlPlane, name: &str, config_file: &str) -> Result<(), String> {
    let isvc = plane
        .get("inferenceservice", Some(MODELS), name)
        .ok_or("the ISVC is gone")?;
    let status = &isvc["status"];
    let (_, text) = render_input(&["--config", config_file, "-"], Some(&isvc.to_string()));
    let plan = serde_json::from_str::<Vec<Value>>(&text)
        .map_err(|error| format!("render: {error}"))?
        .remove(0);
    let url = status["url"].as_str().ok_or("no status.url")?;
    let annotated = isvc["metadata"]["annotations"]["isvc-ingress.io/url"].as_str();
    if annotated != Some(url) || plan["url"].as_str() != Some(url) {
        return Err(format!(
            "status.url {url}, webhook annotation {annotated:?}, render {}",
            plan["url"]
        ));
    }
    let stopped = isvc["metadata"]["annotations"]["serving.kserve.io/stop"] == "true";
    let cluster_local =
        isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local";
    if stopped {
        return if ingress_ready(&isvc) == "False (Stopped)" {
            Ok(())
        } else {
            Err(format!("stopped, IngressReady {}", ingress_ready(&isvc)))
        };
    }
    let address = status["address"]["url"]
        .as_str()
        .ok_or("no status.address.url")?;
    let service = host_of(address).split('.').next().unwrap_or_default();
    if plane.get("service", Some(MODELS), service).is_none() {
        return Err(format!("status.address.url {address} names no Service"));
    }
    if !ingress_ready(&isvc).starts_with("True") {
        return Err(format!("IngressReady {}", ingress_ready(&isvc)));
    }
    if cluster_local {
        return if host_of(url).ends_with(".svc.cluster.local") {
            Ok(())
        } else {
            Err(format!("cluster-local, status.url {url}"))
        };
    }
    let hosts = served_hosts(plane, MODELS, isvc["metadata"]["uid"].as_str().unwrap());
    let mut urls = vec![url.to_owned()];
    for component in status["components"].as_object().into_iter().flatten() {
        if let Some(url) = component.1["url"].as_str() {
            urls.push(url.to_owned());
        }
    }
    for url in urls {
        if !hosts.iter().any(|host| host == host_of(&url)) {
            return Err(format!("{url} is not served by KServe's routes {hosts:?}"));
        }
    }
    Ok(())
}

/// KServe, isvc-ingress and the test's observers on one control plane.
pub struct Cluster {
    pub plane: ControlPlane,
    pub audit: Audit,
    pub installation: Installation,
    pub manager: Manager,
    pub watch: IsvcWatch,
    pub config_file: String,
    _audit_directory: tempfile::TempDir,
}

/// Starts a control plane with an audit log, installs isvc-ingress (`serve_args`) and KServe
/// (its shipped config with `ingress` overrides and `defaultDeploymentMode: Standard`), and
/// waits until isvc-ingress's webhook plans with that config.
pub fn cluster(ingress: &Value, serve_args: &[&str]) -> Cluster {
    let audit_directory = tempfile::Builder::new()
        .prefix("isvc-ingress-audit-")
        .tempdir()
        .unwrap();
    let audit = audit(audit_directory.path());
    let plane = ControlPlane::start_with(&audit.apiserver_args);
    let installation = install(&plane, serve_args);
    let config_map = kserve_config(ingress, Some(&json!({"defaultDeploymentMode": "Standard"})));
    install_kserve(&plane, &config_map);
    let config_file = plane.directory().join("inferenceservice-config.json");
    std::fs::write(&config_file, config_map.to_string()).unwrap();
    let config_file = config_file.display().to_string();
    models_namespace(&plane, MODELS);
    // isvc-ingress's ConfigMap watch has the new config when its webhook annotates a probe as
    // render does under that config.
    let probe = isvc("probe", "red", false).to_string();
    let (_, text) = render_input(&["--config", &config_file, "-"], Some(&probe));
    let planned = serde_json::from_str::<Vec<Value>>(&text).unwrap().remove(0)["annotations"]
        ["isvc-ingress.io/url"]
        .clone();
    assert!(
        eventually(Duration::from_secs(30), || {
            let output = plane.kubectl_with_input(
                &["create", "--dry-run=server", "-o", "json", "-f", "-"],
                Some(&probe),
            );
            output.status.success()
                && serde_json::from_slice::<Value>(&output.stdout).is_ok_and(|object| {
                    object["metadata"]["annotations"]["isvc-ingress.io/url"] == planned
                })
        }),
        "isvc-ingress never planned with KServe's config (expected url {planned})"
    );
    let manager = start_manager(&plane, &json!({"team": "red"}));
    let watch = IsvcWatch::start(&plane);
    Cluster {
        plane,
        audit,
        installation,
        manager,
        watch,
        config_file,
        _audit_directory: audit_directory,
    }
}

impl Cluster {
    /// Plays kubelet and Gateway until every ISVC of `names` agrees ([`agrees`]); fails with the
    /// last disagreement and both controllers' logs.
    pub fn settles(&self, step: &str, names: &[&str]) {
        let started = Instant::now();
        let mut last = String::new();
        let done = settle(&self.plane, &[MODELS], Duration::from_secs(90), || {
            for name in names {
                if let Err(problem) = agrees(&self.plane, name, &self.config_file) {
                    last = format!("{name}: {problem}");
                    return false;
                }
            }
            true
        });
        assert!(
            done,
            "{step}: did not settle: {last}\nKServe:\n{}\nisvc-ingress:\n{}",
            self.manager.process.log_tail(20),
            self.installation.replicas[0].process.log_tail(20)
        );
        eprintln!("{step}: settled in {:?}", started.elapsed());
    }

    /// Writes KServe made that the API server refused with our webhook's name in the message.
    pub fn refused_kserve_writes(&self) -> Vec<Write> {
        self.audit
            .writes()
            .into_iter()
            .filter(|write| {
                write.writer == "kserve"
                    && write.code >= 400
                    && write.message.contains("isvc-ingress")
            })
            .collect()
    }

    /// A quiet `duration` with nothing changed by the test: no ISVC changes more than twice (a
    /// controller may finish settling a status late: one writer's last step is not a fight),
    /// no route is written by anyone, and no object is written by both controllers (the
    /// ping-pong this looks for). One controller's own repeats are printed, not judged: KServe's
    /// requeues update a Deployment and its HPA every few seconds in some states (seen after
    /// cluster-local with HTTPRoutes, 3 times in 20 s, with no write of isvc-ingress). Lease
    /// renewals are left out. Returns the writes it saw.
    pub fn quiet(&self, duration: Duration) -> Vec<Write> {
        let writes_before = self.audit.writes().len();
        let versions_before = self.watch.versions().len();
        std::thread::sleep(duration);
        let writes: Vec<Write> = self.audit.writes()[writes_before..]
            .iter()
            .filter(|write| !write.object.starts_with("leases "))
            .cloned()
            .collect();
        let counts = count_by_object_and_writer(&writes);
        eprintln!("writes during a quiet {duration:?}: {counts:?}");
        let routed: Vec<_> = counts
            .keys()
            .filter(|(object, ..)| {
                ["ingresses ", "httproutes "]
                    .iter()
                    .any(|kind| object.starts_with(kind))
            })
            .collect();
        let both = written_by_both(&writes);
        assert!(
            routed.is_empty() && both.is_empty(),
            "during a quiet {duration:?}: routes written {routed:?}, written by both \
             controllers {both:?}; the last ISVC changes: {}",
            last_changes(&self.watch.versions()[versions_before..])
        );
        let versions = self.watch.versions()[versions_before..].to_vec();
        let mut changes: BTreeMap<String, usize> = BTreeMap::new();
        for isvc in &versions {
            *changes
                .entry(isvc["metadata"]["name"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        eprintln!(
            "ISVC changes during a quiet {duration:?}: {changes:?}{}",
            last_changes(&versions)
        );
        assert!(
            changes.values().all(|count| *count <= 2),
            "ISVCs changed more than twice during a quiet {duration:?}: {changes:?}; \
             IngressReady {:?}; the last changes: {}",
            ingress_ready_sequences(&versions),
            last_changes(&versions)
        );
        writes
    }

    /// Applies `object` as the test (a user) would.
    pub fn apply(&self, object: &Value) {
        self.plane.apply(&object.to_string());
    }
}

fn coexistence(ingress: Value) {
    let cluster = cluster(&ingress, &[]);
    let plane = &cluster.plane;
    let started = Instant::now();

    // Create.
    cluster.apply(&isvc("alpha", "red", false));
    cluster.apply(&isvc("beta", "red", true));
    cluster.settles("create", &["alpha", "beta"]);
    let settled = cluster.watch.versions().len();

    // A label the domain template reads.
    plane.kubectl_ok(&[
        "label",
        "isvc",
        "alpha",
        "-n",
        MODELS,
        "team=blue",
        "--overwrite",
    ]);
    cluster.settles("label update", &["alpha", "beta"]);
    let hosts = served_hosts(
        plane,
        MODELS,
        plane.get("isvc", Some(MODELS), "alpha").unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap(),
    );
    assert!(
        hosts.iter().any(|host| host.starts_with("alpha-blue.")),
        "KServe's routes follow the label: {hosts:?}"
    );

    // A transformer added.
    cluster.apply(&isvc("alpha", "blue", true));
    cluster.settles("transformer added", &["alpha", "beta"]);
    let alpha = plane.get("isvc", Some(MODELS), "alpha").unwrap();
    assert!(
        alpha["status"]["address"]["url"]
            .as_str()
            .is_some_and(|url| url.contains("alpha-transformer.")),
        "the address moves to the transformer: {}",
        alpha["status"]["address"]
    );

    // The quiet minute, with every ISVC routed.
    cluster.quiet(Duration::from_secs(60));

    // Stop, cluster-local.
    plane.kubectl_ok(&[
        "annotate",
        "isvc",
        "beta",
        "-n",
        MODELS,
        "serving.kserve.io/stop=true",
    ]);
    cluster.settles("stop", &["alpha", "beta"]);
    plane.kubectl_ok(&[
        "label",
        "isvc",
        "alpha",
        "-n",
        MODELS,
        "networking.kserve.io/visibility=cluster-local",
    ]);
    cluster.settles("cluster-local", &["alpha", "beta"]);
    cluster.quiet(Duration::from_secs(20));

    // Once settled after create, each ISVC's IngressReady changed only through the steps
    // above, never back and forth on its own.
    let sequences = ingress_ready_sequences(&cluster.watch.versions()[settled..]);
    eprintln!("IngressReady after create: {sequences:?}");
    for (name, sequence) in &sequences {
        let flips = sequence
            .windows(3)
            .filter(|window| window[0] == window[2])
            .count();
        assert!(
            flips <= 1,
            "{name}: IngressReady went back and forth: {sequence:?}"
        );
    }

    // Delete: nothing blocks it (KServe's finalizer, if any, is removed through our webhook).
    plane.kubectl_ok(&[
        "delete",
        "isvc",
        "alpha",
        "beta",
        "-n",
        MODELS,
        "--wait=false",
    ]);
    assert!(
        eventually(Duration::from_secs(60), || plane
            .get("isvc", Some(MODELS), "alpha")
            .is_none()
            && plane.get("isvc", Some(MODELS), "beta").is_none()),
        "the ISVCs were not deleted"
    );

    let writes = cluster.audit.writes();
    let refused = cluster.refused_kserve_writes();
    assert!(
        refused.is_empty(),
        "isvc-ingress's webhook refused writes KServe's controller made: {refused:#?}"
    );
    let failed: Vec<&Write> = writes
        .iter()
        .filter(|write| {
            (write.writer == "kserve" || write.writer == "isvc-ingress") && write.code >= 400
        })
        .collect();
    eprintln!("controller writes that failed (conflicts are retried): {failed:#?}");
    eprintln!(
        "writes of KServe and isvc-ingress in {MODELS} over the whole run ({:?}):\n{}",
        started.elapsed(),
        controller_writes(&writes, MODELS)
    );
    eprintln!(
        "objects written by both controllers: {:?}",
        written_by_both(&writes)
    );
}

#[test]
#[ignore = "needs KServe's manager: scripts/kserve-alongside.sh"]
fn kserve_and_isvc_ingress_together_with_ingresses() {
    coexistence(json!({"domainTemplate": DOMAIN_TEMPLATE}));
}

#[test]
#[ignore = "needs KServe's manager: scripts/kserve-alongside.sh"]
fn kserve_and_isvc_ingress_together_with_httproutes() {
    coexistence(json!({
        "enableGatewayApi": true,
        "domainTemplate": DOMAIN_TEMPLATE,
        "ingressDomain": "models.example.com",
    }));
}
