//! Helpers shared by the integration tests: configs, ISVCs, plans, and validation of generated
//! objects against the real CRD schemas in `tests/crds/` (upstream copies, see its README; or the
//! k8s-openapi type for built-in kinds).
#![allow(dead_code)]

use isvc_ingress::config::KserveConfig;
use isvc_ingress::isvc::InferenceService;
use isvc_ingress::plan::{self, Policy, Rejection, RoutePlan};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The ingress JSON of reference §11's "common defaults" (shipped kustomize values).
pub fn reference_ingress() -> Value {
    json!({
        "ingressGateway": "knative-serving/knative-ingress-gateway",
        "localGateway": "knative-serving/knative-local-gateway",
        "localGatewayService": "knative-local-gateway.istio-system.svc.cluster.local",
        "ingressDomain": "example.com",
        "kserveIngressGateway": "kserve/kserve-ingress-gateway",
    })
}

/// A config from ingress JSON merged over [`reference_ingress`] and a default deployment mode.
pub fn config_with(ingress_overrides: Value, default_mode: &str) -> KserveConfig {
    let mut ingress = reference_ingress();
    for (key, value) in ingress_overrides
        .as_object()
        .expect("overrides are an object")
    {
        ingress[key] = value.clone();
    }
    config_from_keys(&ingress, default_mode, None)
}

/// A config from exactly these keys (service: the `service` key, if any).
pub fn config_from_keys(
    ingress: &Value,
    default_mode: &str,
    service: Option<Value>,
) -> KserveConfig {
    let mut data = serde_json::Map::new();
    data.insert("ingress".into(), json!(ingress.to_string()));
    data.insert(
        "deploy".into(),
        json!(json!({ "defaultDeploymentMode": default_mode }).to_string()),
    );
    data.insert("inferenceService".into(), json!("{}"));
    if let Some(service) = service {
        data.insert("service".into(), json!(service.to_string()));
    }
    let config_map = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "inferenceservice-config", "namespace": "kserve" },
        "data": data,
    });
    KserveConfig::from_text(&config_map.to_string()).expect("test config is valid")
}

pub fn isvc(object: Value) -> InferenceService {
    InferenceService::from_json(&object, "default").expect("test ISVC is well formed")
}

/// An ISVC named `name` in `namespace` with the given components (`{"predictor": {...}, ...}`).
pub fn isvc_json(name: &str, namespace: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": { "name": name, "namespace": namespace, "uid": "0c7a4a3e-uid" },
        "spec": spec,
    })
}

pub fn predictor_only() -> Value {
    json!({ "predictor": { "model": { "modelFormat": { "name": "sklearn" } } } })
}

pub fn plan_ok(object: &Value, config: &KserveConfig) -> (RoutePlan, Vec<Value>) {
    plan_ok_with(object, config, &Policy::default())
}

pub fn plan_ok_with(
    object: &Value,
    config: &KserveConfig,
    policy: &Policy,
) -> (RoutePlan, Vec<Value>) {
    let isvc = isvc(object.clone());
    let planned = plan::plan(&isvc, config, policy)
        .unwrap_or_else(|rejection| panic!("plan rejected: {rejection:?}"));
    let routes: Vec<Value> = plan::routes(&planned, &isvc, config)
        .iter()
        .map(|route| route.to_value())
        .collect();
    for route in &routes {
        assert_valid_object(route);
    }
    (planned, routes)
}

pub fn plan_err(object: &Value, config: &KserveConfig, policy: &Policy) -> Rejection {
    plan::plan(&isvc(object.clone()), config, policy).expect_err("plan should be rejected")
}

/// The route of `kind` named `name`.
pub fn route<'a>(routes: &'a [Value], kind: &str, name: &str) -> &'a Value {
    routes
        .iter()
        .find(|route| route["kind"] == kind && route["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {routes:#?}"))
}

/// `tests/crds/`: the upstream CRDs, as `scripts/refresh-crds.sh` copies them.
pub fn crds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crds")
}

/// Validates a generated object: custom resources against their CRD's `openAPIV3Schema`
/// (with unknown fields refused, as the API server would prune them), built-ins through their
/// k8s-openapi type (a lossless round trip proves no field is unknown or mistyped).
pub fn assert_valid_object(object: &Value) {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    match (api_version, kind) {
        ("networking.k8s.io/v1", "Ingress") => {
            assert_round_trips::<k8s_openapi::api::networking::v1::Ingress>(object)
        }
        ("v1", "Service") => assert_round_trips::<k8s_openapi::api::core::v1::Service>(object),
        _ => {
            let errors = crd_errors(object);
            assert!(
                errors.is_empty(),
                "{kind} is invalid against its CRD:\n{}\n{object:#}",
                errors.join("\n")
            );
        }
    }
    let metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
        serde_json::from_value(object["metadata"].clone()).expect("metadata is an ObjectMeta");
    assert!(metadata.name.is_some() && metadata.namespace.is_some());
}

fn assert_round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(object: &Value) {
    let typed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|error| panic!("not a valid {}: {error}\n{object:#}", object["kind"]));
    let back = serde_json::to_value(&typed).expect("serialises");
    assert_eq!(
        &back, object,
        "fields were lost or changed in the k8s-openapi round trip"
    );
}

/// Schema violations of a custom resource against its CRD (empty when valid).
pub fn crd_errors(object: &Value) -> Vec<String> {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let (group, version) = api_version.split_once('/').expect("group/version");
    let schema = crd_schema(group, kind, version);
    let validator = jsonschema::draft4::new(&schema).expect("the CRD schema compiles");
    validator
        .iter_errors(object)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

fn crd_schema(group: &str, kind: &str, version: &str) -> Value {
    static CACHE: OnceLock<Mutex<HashMap<String, Value>>> = OnceLock::new();
    let key = format!("{group}/{kind}/{version}");
    let cache = CACHE.get_or_init(Default::default);
    if let Some(schema) = cache.lock().unwrap().get(&key) {
        return schema.clone();
    }
    let file = format!("{}_{}s.yaml", group, kind.to_lowercase());
    let path = crds_dir().join(&file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path:?}: {error}"));
    let crd: Value = serde_yaml_ng::from_str(&text).expect("CRD YAML");
    let mut schema = crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|candidate| candidate["name"] == version)
        .unwrap_or_else(|| panic!("{file} has no version {version}"))["schema"]["openAPIV3Schema"]
        .clone();
    // The API server accepts the object's envelope whatever the CRD's root declares.
    let properties = schema["properties"]
        .as_object_mut()
        .expect("root properties");
    for (field, kind) in [
        ("apiVersion", "string"),
        ("kind", "string"),
        ("metadata", "object"),
    ] {
        properties.entry(field).or_insert(json!({ "type": kind }));
    }
    refuse_unknown_fields(&mut schema);
    cache.lock().unwrap().insert(key, schema.clone());
    schema
}

/// Structural schemas allow unknown fields, which the API server then silently prunes; a typo in
/// a generated field would pass validation and vanish in the cluster. Refuse them instead.
fn refuse_unknown_fields(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let preserves =
                object.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
            if object.contains_key("properties")
                && !object.contains_key("additionalProperties")
                && !preserves
            {
                object.insert("additionalProperties".into(), json!(false));
            }
            for (key, value) in object.iter_mut() {
                if key != "x-kubernetes-validations" && key != "default" && key != "example" {
                    refuse_unknown_fields(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(refuse_unknown_fields),
        _ => {}
    }
}

/// Runs the `isvc-ingress` binary from the crate root with `stdin` as its input.
pub fn run(arguments: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_isvc-ingress"))
        .args(arguments)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
