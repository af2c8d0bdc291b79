//! `isvc-ingress analyze` against a real API server: every dump fixture of
//! `tests/fixtures/analyze` (the healthy set-ups and one per code) is loaded into kube-apiserver,
//! then `analyze` reads it live (the admin kubeconfig, `-A`) and must give exactly what
//! `analyze -f` gives on the dump: the same findings (code, severity, InferenceService, objects,
//! message and fix), the same summary and exit code, and the fixture's codes.
//!
//! One control plane serves all fixtures in turn; each fixture's objects are deleted before the
//! next one is loaded (nothing here has a finalizer, and there is no garbage collector).
//! Namespaces stay: without the controller manager a deleted Namespace never goes away, and an
//! empty Namespace (like `default` or `kube-system`, which the live read sees too) changes no
//! finding.
//!
//! Loading a dump the way a cluster would hold it:
//! - `metadata.uid`, `creationTimestamp` and `resourceVersion` are the API server's: they are
//!   dropped, and the InferenceServices are created first so that the routes' controller
//!   ownerReferences can name their real uids. A reference to a uid no InferenceService of the
//!   dump has (an earlier or deleted InferenceService) is kept as it is.
//! - `status` goes through the status subresource (`kubectl apply --server-side
//!   --subresource=status`), as the controllers that own it would write it.
//! - The real uids in the live output are replaced by the dump's before comparing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::analyze_fixtures::{FIXTURES, Fixture};
use crate::control_plane::{ControlPlane, repository};

/// The objects of a dump (a `List` is expanded), in the dump's order.
fn dump_objects(fixture: &Fixture) -> Vec<Value> {
    let path = repository().join(fixture.path());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path:?}: {error}"));
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let value = Value::deserialize(document).expect("the dump is YAML");
        match value["items"].as_array() {
            Some(items) if value["kind"] == "List" => objects.extend(items.iter().cloned()),
            _ if value.is_null() => {}
            _ => objects.push(value),
        }
    }
    objects
}

fn namespace_of(object: &Value) -> Option<&str> {
    object["metadata"]["namespace"].as_str()
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// The object as one creates it: without status and the fields the API server assigns.
fn for_create(object: &Value) -> Value {
    let mut object = object.clone();
    let map = object.as_object_mut().expect("an object");
    map.remove("status");
    let metadata = map
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("metadata");
    for assigned in ["uid", "creationTimestamp", "resourceVersion", "generation"] {
        metadata.remove(assigned);
    }
    object
}

/// The apply of `object`'s status, if it has one. The spec goes along only for kubectl's own
/// validation (it requires `spec` where the schema does); the status subresource ignores it.
fn for_status(object: &Value) -> Option<Value> {
    let status = object.get("status")?;
    let mut metadata = json!({"name": name_of(object)});
    if let Some(namespace) = namespace_of(object) {
        metadata["namespace"] = json!(namespace);
    }
    let mut applied = json!({
        "apiVersion": object["apiVersion"],
        "kind": object["kind"],
        "metadata": metadata,
        "status": status,
    });
    if let Some(spec) = object.get("spec") {
        applied["spec"] = spec.clone();
    }
    Some(applied)
}

fn list(items: Vec<Value>) -> String {
    json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// What one fixture left in the cluster, to delete before the next one.
struct Loaded {
    objects: Vec<Value>,
    /// The real uid of each InferenceService → the dump's.
    uids: BTreeMap<String, String>,
}

/// Loads the dump of `fixture` into the cluster.
fn load(plane: &ControlPlane, fixture: &Fixture) -> Loaded {
    let objects = dump_objects(fixture);
    let is_isvc = |object: &Value| object["kind"] == "InferenceService";

    // Namespaces: the dump's own, and every namespace its objects live in.
    let mut namespaces: BTreeMap<String, Value> = objects
        .iter()
        .filter_map(namespace_of)
        .map(|namespace| {
            (
                namespace.to_string(),
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            )
        })
        .collect();
    for object in objects
        .iter()
        .filter(|object| object["kind"] == "Namespace")
    {
        namespaces.insert(name_of(object).to_string(), for_create(object));
    }
    plane.apply(&list(namespaces.into_values().collect()));

    let isvcs: Vec<&Value> = objects.iter().filter(|object| is_isvc(object)).collect();
    if !isvcs.is_empty() {
        plane.apply(&list(
            isvcs.iter().map(|object| for_create(object)).collect(),
        ));
    }
    // The dump's uid of each InferenceService, and the real one.
    let mut real_uid: BTreeMap<(String, String, String), String> = BTreeMap::new();
    let mut uids = BTreeMap::new();
    for isvc in &isvcs {
        let namespace = namespace_of(isvc).expect("an InferenceService has a namespace");
        let stored = plane
            .get(
                "inferenceservices.serving.kserve.io",
                Some(namespace),
                name_of(isvc),
            )
            .expect("the InferenceService was created");
        let real = stored["metadata"]["uid"].as_str().unwrap().to_string();
        if let Some(dumped) = isvc["metadata"]["uid"].as_str() {
            real_uid.insert(
                (namespace.into(), name_of(isvc).into(), dumped.into()),
                real.clone(),
            );
            uids.insert(real, dumped.to_string());
        }
    }

    let others: Vec<Value> = objects
        .iter()
        .filter(|object| !is_isvc(object) && object["kind"] != "Namespace")
        .map(|object| {
            let mut created = for_create(object);
            let namespace = namespace_of(object).unwrap_or_default().to_string();
            let references = created["metadata"]["ownerReferences"].as_array_mut();
            for reference in references.into_iter().flatten() {
                let key = (
                    namespace.clone(),
                    reference["name"].as_str().unwrap_or_default().to_string(),
                    reference["uid"].as_str().unwrap_or_default().to_string(),
                );
                if reference["kind"] == "InferenceService"
                    && let Some(real) = real_uid.get(&key)
                {
                    reference["uid"] = json!(real);
                }
            }
            created
        })
        .collect();
    if !others.is_empty() {
        plane.apply(&list(others));
    }

    let statuses: Vec<Value> = objects.iter().filter_map(for_status).collect();
    if !statuses.is_empty() {
        let input = list(statuses);
        let output = plane.kubectl_with_input(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--subresource=status",
                "--validate=strict",
                "-f",
                "-",
            ],
            Some(&input),
        );
        assert!(
            output.status.success(),
            "{}: the API server refuses a status of the dump: {}",
            fixture.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Loaded {
        objects: objects
            .into_iter()
            .filter(|object| object["kind"] != "Namespace")
            .collect(),
        uids,
    }
}

/// Deletes what [`load`] created (Namespaces stay, see the module documentation).
fn unload(plane: &ControlPlane, loaded: &Loaded) {
    if loaded.objects.is_empty() {
        return;
    }
    let identities: Vec<Value> = loaded
        .objects
        .iter()
        .map(|object| {
            json!({"apiVersion": object["apiVersion"], "kind": object["kind"],
                   "metadata": {"name": name_of(object), "namespace": namespace_of(object)}})
        })
        .collect();
    let output = plane.kubectl_with_input(&["delete", "-f", "-"], Some(&list(identities)));
    assert!(
        output.status.success(),
        "kubectl delete failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn analyze(arguments: &[&str], kubeconfig: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_isvc-ingress"));
    command
        .arg("analyze")
        .args(arguments)
        .current_dir(repository())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT");
    match kubeconfig {
        Some(kubeconfig) => command.env("KUBECONFIG", kubeconfig),
        None => command.env_remove("KUBECONFIG"),
    };
    command.output().expect("isvc-ingress runs")
}

/// The report of `analyze -o json` and its exit code; fails the test on exit 2 (unreadable).
fn report(output: &Output, what: &str) -> (Value, i32) {
    let code = output.status.code().expect("analyze exited");
    assert_ne!(
        code,
        2,
        "{what}: analyze could not read its input: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{what}: analyze -o json printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (report, code)
}

#[test]
fn analyze_reads_every_dump_fixture_from_a_real_api_server_as_from_the_dump() {
    let plane = ControlPlane::start();
    let started = Instant::now();
    let mut checked = Vec::new();
    for fixture in FIXTURES {
        let loaded = load(&plane, fixture);

        let path = fixture.path();
        let mut offline_arguments = vec!["-o", "json", "-f", &path];
        offline_arguments.extend(fixture.arguments());
        let (offline, offline_code) = report(&analyze(&offline_arguments, None), fixture.name);

        let mut live_arguments = vec!["-o", "json", "-A"];
        live_arguments.extend(fixture.arguments());
        let live_output = analyze(&live_arguments, Some(&plane.admin_kubeconfig));
        // The messages name uids: the real ones become the dump's.
        let mut live_text = String::from_utf8(live_output.stdout.clone()).unwrap();
        for (real, dumped) in &loaded.uids {
            live_text = live_text.replace(real.as_str(), dumped);
        }
        let (live, live_code) = report(
            &Output {
                stdout: live_text.into_bytes(),
                ..live_output
            },
            fixture.name,
        );

        let codes: BTreeSet<&str> = offline["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|finding| finding["code"].as_str())
            .collect();
        assert_eq!(
            codes,
            fixture.codes.iter().copied().collect(),
            "{}: the dump gives its codes",
            fixture.name
        );
        assert_eq!(
            live, offline,
            "{}: analyze on the live cluster (left) and on the dump (right) differ",
            fixture.name
        );
        assert_eq!(live_code, offline_code, "{}: exit codes", fixture.name);

        unload(&plane, &loaded);
        checked.push(fixture.name);
    }
    assert_eq!(checked.len(), FIXTURES.len());
    eprintln!(
        "{} fixtures loaded, analysed live and offline, and removed in {:.1?}",
        checked.len(),
        started.elapsed()
    );
}
