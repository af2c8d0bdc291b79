//! Every route `render` prints, for `examples/` and `tests/fixtures`, is accepted by the real API
//! server (`kubectl apply --dry-run=server`, document by document, with the real CRD schemas and
//! their CEL rules), in `-o yaml` and in `-o json`, and both outputs are the same objects.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::control_plane::ControlPlane;
use crate::inputs::{isvc_inputs, render};

fn documents_of_yaml(text: &str) -> Vec<Value> {
    text.split("\n---")
        .map(|document| document.trim_start_matches("---"))
        .filter(|document| !document.trim().is_empty())
        .map(|document| serde_yaml_ng::from_str(document).expect("render -o yaml prints YAML"))
        .collect()
}

#[test]
fn every_route_render_prints_is_accepted_by_the_api_server() {
    let plane = ControlPlane::start();
    let mut checked = 0;
    let mut refused = Vec::new();
    for (file, config) in isvc_inputs() {
        let mut args: Vec<&str> = Vec::new();
        if let Some(config) = &config {
            args.extend(["--config", config]);
        }
        for route_owner in ["kserve", "isvc-ingress"] {
            let mut json_args = args.clone();
            json_args.extend(["--route-owner", route_owner, "-o", "json", &file]);
            let (_, json_text) = render(&json_args);
            let plans: Vec<Value> = serde_json::from_str(&json_text)
                .unwrap_or_else(|error| panic!("render -o json {file}: {error}"));
            let from_json: Vec<Value> = plans
                .iter()
                .flat_map(|plan| plan["routes"].as_array().cloned().unwrap_or_default())
                .collect();
            let mut yaml_args = args.clone();
            yaml_args.extend(["--route-owner", route_owner, "-o", "yaml", &file]);
            let (_, yaml_text) = render(&yaml_args);
            let from_yaml = documents_of_yaml(&yaml_text);
            assert_eq!(
                from_yaml, from_json,
                "{file} ({config:?}, {route_owner}): -o yaml and -o json print different objects"
            );

            let namespaces: BTreeSet<&str> = from_json
                .iter()
                .filter_map(|route| route["metadata"]["namespace"].as_str())
                .collect();
            for namespace in namespaces {
                plane.namespace(namespace);
            }
            // Document by document, as YAML (what a user pipes into kubectl) and as JSON.
            for route in &from_json {
                let name = format!(
                    "{file} ({config:?}, {route_owner}) {} {}",
                    route["kind"].as_str().unwrap_or("?"),
                    route["metadata"]["name"].as_str().unwrap_or("?")
                );
                let as_yaml = serde_yaml_ng::to_string(route).unwrap();
                for (form, text) in [("yaml", as_yaml), ("json", route.to_string())] {
                    let output = plane.kubectl_with_input(
                        &["apply", "--dry-run=server", "--server-side", "-f", "-"],
                        Some(&text),
                    );
                    checked += 1;
                    if !output.status.success() {
                        refused.push(format!(
                            "{name} as {form}: {}",
                            String::from_utf8_lossy(&output.stderr).trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 0, "no route was checked");
    assert!(
        refused.is_empty(),
        "the API server refused {} of {checked} route documents:\n{}",
        refused.len(),
        refused.join("\n")
    );
    eprintln!("render: {checked} route documents accepted by kube-apiserver (dry run)");
}

/// A wrong object is refused, so the check above can fail: the API server really validates
/// against the CRDs installed from tests/crds.
#[test]
fn the_api_server_refuses_a_route_the_schema_forbids() {
    let plane = ControlPlane::start();
    plane.namespace("models");
    let bad = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "bad", "namespace": "models"},
        "spec": {"hostnames": ["Not_A_Host"], "parentRefs": [{"name": "g"}]},
    });
    let output = plane.kubectl_with_input(
        &["apply", "--dry-run=server", "--server-side", "-f", "-"],
        Some(&bad.to_string()),
    );
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("spec.hostnames[0]"), "{message}");
}
