//! The reconciler (`--route-owner isvc-ingress`) against the real API server: for every route
//! kind, what it applies is accepted by the real CRD schemas (CEL rules included) and matches
//! `render` of the stored ISVC; a kind switch, cluster-local, stop and a config change converge
//! to what `render` says; a quiet minute writes nothing; with two replicas one holds the Lease,
//! only it writes, and killing it hands over within the lease duration.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::control_plane::{ControlPlane, eventually, repository};
use crate::inputs::render_input;
use crate::install::{NAMESPACE, Replica, install};
use isvc_ingress::field_diff::is_subset;

const MODELS: &str = "team-a";
const ROUTE_KINDS: &str = "ingresses.networking.k8s.io,httproutes.gateway.networking.k8s.io,virtualservices.networking.istio.io,services,domainmappings.serving.knative.dev";

/// The ISVC `name` with `annotations` and `labels`, a predictor only.
fn isvc(name: &str, annotations: Value, labels: Value) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": MODELS, "annotations": annotations, "labels": labels},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}},
    })
}

/// The routes of the stored ISVC `name` as `render` plans them under `config` (a file).
fn planned_routes(plane: &ControlPlane, name: &str, config: &str) -> Vec<Value> {
    let stored = plane
        .get("inferenceservice", Some(MODELS), name)
        .expect("the ISVC is stored");
    let (_, text) = render_input(
        &["--config", config, "--route-owner", "isvc-ingress", "-"],
        Some(&stored.to_string()),
    );
    let plan = serde_json::from_str::<Vec<Value>>(&text).unwrap().remove(0);
    assert_eq!(plan["ok"], true, "{plan:#}");
    plan["routes"].as_array().cloned().unwrap_or_default()
}

/// The objects isvc-ingress manages for the ISVC `name`.
fn managed_routes(plane: &ControlPlane, name: &str) -> Vec<Value> {
    let text = plane.kubectl_ok(&[
        "get",
        ROUTE_KINDS,
        "-n",
        MODELS,
        "-l",
        &format!("isvc-ingress.io/inferenceservice={name}"),
        "-o",
        "json",
    ]);
    let list: Value = serde_json::from_str(&text).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

fn identity(object: &Value) -> (String, String) {
    (
        object["kind"].as_str().unwrap_or_default().to_owned(),
        object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Waits until the routes of `name` in the cluster are exactly the planned ones, each holding
/// every planned field; fails with the difference.
fn converges(plane: &ControlPlane, name: &str, config: &str) {
    let mut last = String::new();
    let done = eventually(Duration::from_secs(45), || {
        let planned = planned_routes(plane, name, config);
        let live = managed_routes(plane, name);
        let planned_ids: BTreeSet<_> = planned.iter().map(identity).collect();
        let live_ids: BTreeSet<_> = live.iter().map(identity).collect();
        if planned_ids != live_ids {
            last = format!("planned {planned_ids:?}, in the cluster {live_ids:?}");
            return false;
        }
        for route in &planned {
            let live = live
                .iter()
                .find(|live| identity(live) == identity(route))
                .unwrap();
            let mut wanted = route.clone();
            // ownerReferences, labels, spec: what the reconciler sets.
            wanted.as_object_mut().unwrap().remove("apiVersion");
            if !is_subset(&wanted, live) {
                last = format!(
                    "{:?} differs:\nplanned {route:#}\nlive {live:#}",
                    identity(route)
                );
                return false;
            }
        }
        true
    });
    assert!(done, "the routes of {name} did not converge: {last}");
}

fn ingress_ready(plane: &ControlPlane, name: &str) -> Option<Value> {
    let stored = plane.get("inferenceservice", Some(MODELS), name)?;
    stored["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|condition| condition["type"] == "IngressReady")
        .cloned()
}

/// Resource versions of every ISVC and managed route in the models namespace.
fn resource_versions(plane: &ControlPlane) -> BTreeSet<(String, String, String)> {
    let text = plane.kubectl_ok(&[
        "get",
        &format!("inferenceservices.serving.kserve.io,{ROUTE_KINDS}"),
        "-n",
        MODELS,
        "-o",
        "json",
    ]);
    let list: Value = serde_json::from_str(&text).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|object| {
            let (kind, name) = identity(object);
            (
                kind,
                name,
                object["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

fn metric(replica: &Replica, series: &str) -> f64 {
    replica
        .metrics()
        .lines()
        .filter(|line| line.starts_with(series))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn writes(replica: &Replica) -> f64 {
    metric(replica, "isvc_ingress_reconcile_api_writes_total")
}

fn is_leader(replica: &Replica) -> bool {
    metric(replica, "isvc_ingress_reconcile_leader") == 1.0
}

#[test]
fn the_reconciler_on_a_real_api_server() {
    let plane = ControlPlane::start();
    let mut installation = install(&plane, &["--route-owner", "isvc-ingress"]);
    plane.namespace(MODELS);
    let config = repository()
        .join("manifests/dev/inferenceservice-config.yaml")
        .display()
        .to_string();

    // One ISVC per route kind; the kind annotation picks it (Knative mode for the Knative kinds).
    let cases = [
        ("m-ingress", json!({})),
        ("m-httproute", json!({"isvc-ingress.io/route": "HTTPRoute"})),
        (
            "m-virtualservice",
            json!({"serving.kserve.io/deploymentMode": "Knative", "isvc-ingress.io/route": "VirtualService"}),
        ),
        (
            "m-domainmapping",
            json!({"serving.kserve.io/deploymentMode": "Knative", "isvc-ingress.io/route": "DomainMapping"}),
        ),
    ];
    for (name, annotations) in &cases {
        plane.apply(&isvc(name, annotations.clone(), json!({})).to_string());
    }
    let mut kinds = BTreeSet::new();
    for (name, _) in &cases {
        converges(&plane, name, &config);
        kinds.extend(
            managed_routes(&plane, name)
                .iter()
                .map(|route| identity(route).0),
        );
        assert!(
            eventually(Duration::from_secs(30), || ingress_ready(&plane, name)
                .is_some()),
            "{name} never got IngressReady"
        );
        let owners = managed_routes(&plane, name)
            .iter()
            .map(|route| route["metadata"]["ownerReferences"][0]["uid"].to_string())
            .collect::<BTreeSet<_>>();
        let uid = plane.get("inferenceservice", Some(MODELS), name).unwrap()["metadata"]["uid"]
            .to_string();
        assert_eq!(
            owners,
            BTreeSet::from([uid]),
            "{name}: every route is controlled by its ISVC"
        );
    }
    for kind in [
        "Ingress",
        "HTTPRoute",
        "VirtualService",
        "Service",
        "DomainMapping",
    ] {
        assert!(kinds.contains(kind), "no {kind} was written: {kinds:?}");
    }

    // A quiet minute: nothing is written.
    let before = resource_versions(&plane);
    let writes_before = writes(&installation.replicas[0]);
    std::thread::sleep(Duration::from_secs(60));
    assert_eq!(
        resource_versions(&plane),
        before,
        "an object was written during a quiet minute"
    );
    assert_eq!(writes(&installation.replicas[0]), writes_before);

    // Kind switch, cluster-local, stop: the routes follow the plan, stale ones are deleted.
    plane.kubectl_ok(&[
        "annotate",
        "isvc",
        "m-ingress",
        "-n",
        MODELS,
        "isvc-ingress.io/route=HTTPRoute",
    ]);
    converges(&plane, "m-ingress", &config);
    assert!(
        managed_routes(&plane, "m-ingress")
            .iter()
            .all(|route| route["kind"] != "Ingress")
    );
    // Cluster-local: a Standard ISVC loses its external routes (a route annotation and the
    // label together are refused at admission, so this one has none).
    plane.apply(&isvc("m-local", json!({}), json!({})).to_string());
    converges(&plane, "m-local", &config);
    assert!(!managed_routes(&plane, "m-local").is_empty());
    plane.kubectl_ok(&[
        "label",
        "isvc",
        "m-local",
        "-n",
        MODELS,
        "networking.kserve.io/visibility=cluster-local",
    ]);
    converges(&plane, "m-local", &config);
    plane.kubectl_ok(&[
        "annotate",
        "isvc",
        "m-virtualservice",
        "-n",
        MODELS,
        "serving.kserve.io/stop=true",
    ]);
    converges(&plane, "m-virtualservice", &config);
    assert!(
        managed_routes(&plane, "m-virtualservice").is_empty(),
        "a stopped ISVC keeps no route"
    );
    assert!(eventually(Duration::from_secs(30), || {
        ingress_ready(&plane, "m-virtualservice")
            .is_some_and(|condition| condition["reason"] == "Stopped")
    }));

    // A config change re-plans every ISVC.
    let mut config_map: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let ingress = config_map["data"]["ingress"]
        .as_str()
        .unwrap()
        .replace("\"example.com\"", "\"example.org\"");
    assert!(
        ingress.contains("example.org"),
        "the dev config names example.com"
    );
    config_map["data"]["ingress"] = json!(ingress);
    plane.apply(&config_map.to_string());
    let changed = plane.directory().join("changed-config.json");
    std::fs::write(&changed, config_map.to_string()).unwrap();
    let changed = changed.display().to_string();
    for name in ["m-ingress", "m-domainmapping"] {
        converges(&plane, name, &changed);
    }

    // Two replicas: one leads and writes; the follower writes nothing; killing the leader hands
    // over within the lease duration (15 s) plus one renew period.
    let second = installation.start_replica(&plane, &["--route-owner", "isvc-ingress"]);
    installation.replicas.push(second);
    assert!(is_leader(&installation.replicas[0]) && !is_leader(&installation.replicas[1]));
    plane.apply(&isvc("m-late", json!({}), json!({})).to_string());
    converges(&plane, "m-late", &changed);
    assert_eq!(writes(&installation.replicas[1]), 0.0, "the follower wrote");
    let lease = plane
        .get("lease", Some(NAMESPACE), "isvc-ingress")
        .expect("the Lease exists");
    let first_holder = lease["spec"]["holderIdentity"].clone();
    let killed = Instant::now();
    installation.replicas[0].process.signal("KILL");
    assert!(
        eventually(Duration::from_secs(25), || is_leader(
            &installation.replicas[1]
        )),
        "the second replica did not take the lease"
    );
    eprintln!(
        "lease handover after SIGKILL of the leader: {:?}",
        killed.elapsed()
    );
    let lease = plane.get("lease", Some(NAMESPACE), "isvc-ingress").unwrap();
    assert_ne!(lease["spec"]["holderIdentity"], first_holder);
    // The webhook Service's endpoints now hold only the second replica.
    installation.register_webhooks(&plane, installation.replicas[1].webhook_port);
    plane.apply(&isvc("m-after-handover", json!({}), json!({})).to_string());
    converges(&plane, "m-after-handover", &changed);
    assert!(
        writes(&installation.replicas[1]) > 0.0,
        "the new leader writes"
    );

    // Delete: no garbage collector runs here, so the routes stay, each controlled by the
    // deleted ISVC's uid (a real cluster's garbage collector removes them).
    let uid = plane
        .get("inferenceservice", Some(MODELS), "m-late")
        .unwrap()["metadata"]["uid"]
        .clone();
    plane.kubectl_ok(&["delete", "isvc", "m-late", "-n", MODELS]);
    for route in managed_routes(&plane, "m-late") {
        assert_eq!(route["metadata"]["ownerReferences"][0]["uid"], uid);
        assert_eq!(route["metadata"]["ownerReferences"][0]["controller"], true);
    }
}
