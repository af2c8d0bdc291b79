//! Structure-aware: InferenceServices built from the names, annotations, labels, components and
//! ports routing reads (with arbitrary strings mixed in), sent as kube-apiserver's CREATE or
//! UPDATE review, under several configs and policies. Beyond a well-formed reply:
//! - the answer agrees with the planner: allowed exactly when `plan` accepts the object;
//! - the patched object carries exactly the plan's output annotations, and every annotation the
//!   user wrote that is not an output of ours is still there, unchanged;
//! - for an accepted plan, every host is a valid DNS name and the route objects serialise.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arbitrary::Arbitrary;
use isvc_ingress::admission::{AdmissionHandler as _, AdmissionState, Endpoint, Webhook};
use isvc_ingress::config::KserveConfig;
use isvc_ingress::isvc::InferenceService;
use isvc_ingress::plan::annotations::OUTPUT_KEYS;
use isvc_ingress::plan::{self, DEPLOYMENT_MODE_ANNOTATION, Policy, RouteOwner};
use isvc_ingress_fuzz::check_reply;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

struct Setup {
    config: KserveConfig,
    policy: Policy,
    webhook: Webhook,
}

fn setup(config: KserveConfig, policy: Policy) -> Setup {
    let state = AdmissionState::new(config.clone(), policy.clone(), "kserve");
    Setup {
        config,
        policy,
        webhook: Webhook::new(Arc::new(state)),
    }
}

static SETUPS: LazyLock<Vec<Setup>> = LazyLock::new(|| {
    let gateway_api = KserveConfig::from_text(include_str!(
        "../../tests/fixtures/config/gateway-api-two-domains.yaml"
    ))
    .expect("fixture config is valid");
    let isvc_ingress_owns = Policy {
        route_owner: RouteOwner::IsvcIngress,
        ..Policy::default()
    };
    let restricted = Policy {
        allowed_domains: vec!["example.com".into()],
        allowed_gateways: vec!["kserve/kserve-ingress-gateway".into()],
        route_owner: RouteOwner::IsvcIngress,
    };
    vec![
        setup(KserveConfig::shipped(), Policy::default()),
        setup(KserveConfig::shipped(), isvc_ingress_owns.clone()),
        setup(gateway_api.clone(), Policy::default()),
        setup(gateway_api, restricted),
    ]
});

/// A string that is usually meaningful to the planner and sometimes anything at all.
#[derive(Debug, Arbitrary)]
enum Text {
    Known(u8),
    Any(String),
}

impl Text {
    fn pick(&self, known: &[&str]) -> String {
        match self {
            Self::Known(index) => known[usize::from(*index) % known.len()].to_owned(),
            Self::Any(text) => text.clone(),
        }
    }
}

const NAMES: &[&str] = &[
    "sklearn-iris",
    "a",
    "model-with-a-name-that-is-long-enough-to-push-labels-over-63",
    "UPPER",
    "9starts-with-digit",
    "ends-with-dash-",
    "",
    "dots.in.name",
];
const NAMESPACES: &[&str] = &[
    "models",
    "default",
    "kserve",
    "team-a",
    "a-very-long-namespace-name-for-a-team",
    "",
];
const ANNOTATION_KEYS: &[&str] = &[
    "serving.kserve.io/deploymentMode",
    "networking.kserve.io/visibility",
    "serving.kserve.io/stop",
    "isvc-ingress.io/host",
    "isvc-ingress.io/path",
    "isvc-ingress.io/route",
    "isvc-ingress.io/gateway",
    "isvc-ingress.io/ingress-class",
    "isvc-ingress.io/timeout",
    "isvc-ingress.io/tls-secret",
    "isvc-ingress.io/url",
    "isvc-ingress.io/hosts",
    "isvc-ingress.io/plan-hash",
    "isvc-ingress.io/transformer-url",
    "kubectl.kubernetes.io/last-applied-configuration",
    "autoscaling.knative.dev/min-scale",
    "team",
];
const ANNOTATION_VALUES: &[&str] = &[
    "Standard",
    "RawDeployment",
    "Serverless",
    "ModelMesh",
    "cluster-local",
    "exposed",
    "true",
    "false",
    "Ingress",
    "HTTPRoute",
    "VirtualService",
    "None",
    "kserve/kserve-ingress-gateway",
    "knative-serving/knative-ingress-gateway",
    "istio",
    "30s",
    "1h30m",
    "0s",
    "my-tls",
    "models.example.com",
    "api.example.com",
    "/serving/models/iris",
    "/../x",
    "",
];
const LABEL_KEYS: &[&str] = &[
    "team",
    "networking.knative.dev/visibility",
    "app.kubernetes.io/name",
];
const LABEL_VALUES: &[&str] = &["a", "cluster-local", "platform", ""];
const PORT_NAMES: &[&str] = &["http1", "h2c", "grpc", "grpc-port", "metrics", ""];

#[derive(Debug, Arbitrary)]
struct Port {
    name: Option<Text>,
    container_port: u16,
}

#[derive(Debug, Arbitrary)]
struct Component {
    present: bool,
    timeout: Option<i64>,
    grpc_v2: bool,
    ports: Vec<Port>,
    /// A wrong JSON type in a field routing reads: the answer must name the field.
    wrong_type: bool,
}

#[derive(Debug, Arbitrary)]
struct Isvc {
    setup: u8,
    mutate: bool,
    update: bool,
    name: Text,
    namespace: Text,
    annotations: Vec<(Text, Text)>,
    /// No `annotations` map at all, or `null`.
    annotations_absent: Option<bool>,
    labels: Vec<(Text, Text)>,
    predictor: Component,
    transformer: Component,
    explainer: Component,
    status_deployment_mode: Option<Text>,
    being_deleted: bool,
}

fn component(spec: &Component, key: &str) -> Option<Value> {
    if !spec.present {
        return None;
    }
    let ports: Vec<Value> = spec
        .ports
        .iter()
        .take(4)
        .map(|port| {
            let mut value = json!({ "containerPort": port.container_port });
            if let Some(name) = &port.name {
                value["name"] = json!(name.pick(PORT_NAMES));
            }
            value
        })
        .collect();
    let mut value = json!({ "containers": [{ "name": format!("kserve-{key}"), "image": "x", "ports": ports }] });
    if let Some(timeout) = spec.timeout {
        value["timeout"] = json!(timeout);
    }
    if spec.grpc_v2 {
        value["protocolVersion"] = json!("grpc-v2");
    }
    if spec.wrong_type {
        value["timeout"] = json!("thirty");
    }
    Some(value)
}

fn object(isvc: &Isvc) -> Value {
    let mut metadata = json!({
        "name": isvc.name.pick(NAMES),
        "namespace": isvc.namespace.pick(NAMESPACES),
        "uid": "0f6a3c1e-6b2a-4f43-9a7e-1b4c5d6e7f80",
    });
    let annotations: Map<String, Value> = isvc
        .annotations
        .iter()
        .take(12)
        .map(|(key, value)| {
            (
                key.pick(ANNOTATION_KEYS),
                json!(value.pick(ANNOTATION_VALUES)),
            )
        })
        .collect();
    match isvc.annotations_absent {
        None => metadata["annotations"] = Value::Object(annotations),
        Some(true) => metadata["annotations"] = Value::Null,
        Some(false) => {}
    }
    let labels: Map<String, Value> = isvc
        .labels
        .iter()
        .take(6)
        .map(|(key, value)| (key.pick(LABEL_KEYS), json!(value.pick(LABEL_VALUES))))
        .collect();
    metadata["labels"] = Value::Object(labels);
    if isvc.being_deleted {
        metadata["deletionTimestamp"] = json!("2026-11-22T06:00:00Z");
    }
    let mut spec = Map::new();
    for (key, part) in [
        ("predictor", &isvc.predictor),
        ("transformer", &isvc.transformer),
        ("explainer", &isvc.explainer),
    ] {
        if let Some(value) = component(part, key) {
            spec.insert(key.to_owned(), value);
        }
    }
    let mut object = json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": spec,
    });
    if let Some(mode) = &isvc.status_deployment_mode {
        object["status"] = json!({ "deploymentMode": mode.pick(ANNOTATION_VALUES) });
    }
    object
}

fn review(isvc: &Isvc, object: &Value) -> Vec<u8> {
    let gvk =
        json!({"group": "serving.kserve.io", "version": "v1beta1", "kind": "InferenceService"});
    let gvr = json!({"group": "serving.kserve.io", "version": "v1beta1", "resource": "inferenceservices"});
    let mut request = json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": object["metadata"]["name"],
        "namespace": object["metadata"]["namespace"],
        "operation": if isvc.update { "UPDATE" } else { "CREATE" },
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:authenticated"]},
        "object": object,
        "oldObject": null,
        "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
    });
    if isvc.update {
        request["oldObject"] = object.clone();
    }
    serde_json::to_vec(&json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": request,
    }))
    .expect("serialisable")
}

fuzz_target!(|isvc: Isvc| {
    let setup = &SETUPS[usize::from(isvc.setup) % SETUPS.len()];
    let endpoint = if isvc.mutate {
        Endpoint::Mutate
    } else {
        Endpoint::Validate
    };
    let object = object(&isvc);
    let body = review(&isvc, &object);
    let reply = setup.webhook.handle(endpoint, &body);
    assert_eq!(
        reply.http_status, 200,
        "a well-formed review is answered with a review"
    );
    let patched = check_reply(endpoint, &body, &reply);
    let answer: Value = serde_json::from_slice(&reply.body).expect("checked");
    let allowed = answer["response"]["allowed"].as_bool().expect("checked");

    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let planned = InferenceService::from_json(&object, namespace)
        .ok()
        .map(|read| (plan::plan(&read, &setup.config, &setup.policy), read));
    if isvc.being_deleted {
        assert!(
            allowed,
            "an object being deleted is never blocked: {answer}"
        );
        return;
    }
    let Some((Ok(planned), read)) = planned else {
        assert!(
            !allowed,
            "the planner refused this object, the webhook allowed it: {answer}"
        );
        return;
    };
    assert!(
        allowed,
        "the planner accepted this object, the webhook refused it: {answer}"
    );
    for host in &planned.hosts {
        assert!(
            isvc_ingress::dns::host_problem(host).is_none(),
            "planned host {host:?} is not a valid DNS name"
        );
    }
    for route in plan::routes(&planned, &read, &setup.config) {
        serde_json::to_value(&route).expect("route objects serialise");
    }
    if endpoint == Endpoint::Validate {
        return;
    }
    let patched = patched.expect("/mutate answers an accepted ISVC with a patch");
    let before = annotation_map(&object);
    let after = annotation_map(&patched);
    let mut expected: BTreeMap<String, String> = before
        .into_iter()
        .filter(|(key, _)| !OUTPUT_KEYS.contains(&key.as_str()))
        .collect();
    for (key, value) in &planned.annotations {
        expected.insert((*key).to_owned(), value.clone());
    }
    if let Some(mode) = planned.deployment_mode_annotation {
        expected.insert(DEPLOYMENT_MODE_ANNOTATION.to_owned(), mode.to_owned());
    }
    assert_eq!(after, expected, "patched annotations");
});

fn annotation_map(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]["annotations"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}
