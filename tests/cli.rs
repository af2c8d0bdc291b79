//! The `isvc-ingress` binary end to end: exit codes 0/1/2, the `render -o json` contract of
//! docs/design.md, the `-o yaml` manifest stream, and `check-config`.

mod support;

use serde_json::Value;
use support::{code, json, run, stderr};

#[test]
fn render_prints_the_json_contract() {
    let output = run(&["render", "examples/sklearn-iris.yaml"], None);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        stderr(&output).is_empty(),
        "the built-in config warns about nothing: {}",
        stderr(&output)
    );
    // The field order of docs/design.md, as printed: the top-level keys of the first object are the
    // lines indented by four spaces in the pretty output.
    let text = String::from_utf8_lossy(&output.stdout);
    let keys: Vec<&str> = text
        .lines()
        .take_while(|line| *line != "  }" && *line != "  },")
        .filter_map(|line| line.strip_prefix("    \"")?.split('"').next())
        .collect();
    let plans = json(&output);
    let plan = &plans[0];
    assert_eq!(
        keys,
        [
            "name",
            "namespace",
            "ok",
            "mode",
            "routeKind",
            "url",
            "address",
            "hosts",
            "path",
            "components",
            "annotations",
            "warnings",
            "stopped",
            "routes"
        ]
    );
    assert_eq!(plan["ok"], true);
    assert_eq!(plan["mode"], "Knative");
    assert_eq!(plan["routeKind"], "VirtualService");
    assert_eq!(plan["url"], "http://sklearn-iris.models.example.com");
    assert_eq!(plan["path"], Value::Null);
    assert_eq!(
        plan["components"]["predictor"]["restUrl"],
        "http://sklearn-iris-predictor.models.example.com"
    );
    assert!(plan["components"]["predictor"].get("grpcUrl").is_none());
    assert_eq!(plan["annotations"]["isvc-ingress.io/url"], plan["url"]);
    for route in plan["routes"].as_array().unwrap() {
        support::assert_valid_object(route);
    }
}

#[test]
fn render_reports_invalid_isvcs_in_input_order_with_exit_1() {
    let output = run(&["render", "tests/fixtures/isvc/mixed.yaml"], None);
    assert_eq!(code(&output), 1);
    let plans = json(&output);
    assert_eq!(plans.as_array().unwrap().len(), 2);
    assert_eq!(plans[0]["name"], "good-model");
    assert_eq!(plans[0]["ok"], true);
    assert_eq!(plans[1]["name"], "9-bad-name");
    assert_eq!(plans[1]["ok"], false);
    assert_eq!(plans[1]["errors"][0]["field"], "metadata.name");
    assert!(
        plans[1]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("must start with a lower case letter")
    );
    assert!(
        stderr(&output)
            .contains("note: document 2 is a Service (v1), not an InferenceService: skipped")
    );
}

#[test]
fn render_yaml_prints_applicable_manifests() {
    let output = run(
        &[
            "render",
            "--config",
            "examples/config-gateway-api.yaml",
            "-o",
            "yaml",
            "examples/standard-transformer.yaml",
        ],
        None,
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .collect();
    let names: Vec<&str> = documents
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["flowers-predictor", "flowers-transformer", "flowers"]
    );
    for document in &documents {
        assert_eq!(document["kind"], "HTTPRoute");
        support::assert_valid_object(document);
    }
    // Invalid ISVCs print their errors on stderr and nothing on stdout.
    let output = run(&["render", "-o", "yaml", "examples/invalid.yaml"], None);
    assert_eq!(code(&output), 1);
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains(
        "error: this-is-a-long-project-name-with-40-characters/t-44e43bb2: metadata.name:"
    ));
}

#[test]
fn render_reads_stdin_lists_and_policy_flags() {
    let list = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/isvc/list.json"
    ))
    .unwrap();
    let output = run(&["render", "-"], Some(&list));
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let plans = json(&output);
    assert_eq!(plans[0]["name"], "first");
    assert_eq!(
        plans[1]["components"]["explainer"]["host"],
        "second-explainer.ns.example.com"
    );

    let isvc = r#"{"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "m", "namespace": "ns", "annotations": {"isvc-ingress.io/host": "m.partner.io"}}, "spec": {"predictor": {}}}"#;
    assert_eq!(code(&run(&["render", "-"], Some(isvc))), 1);
    let output = run(
        &[
            "render",
            "--allowed-domain",
            "partner.io",
            "--route-owner",
            "isvc-ingress",
            "-",
        ],
        Some(isvc),
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(json(&output)[0]["url"], "http://m.partner.io");
    // KServe writes this VirtualService and does not read the host annotation.
    let output = run(
        &["render", "--allowed-domain", "partner.io", "-"],
        Some(isvc),
    );
    assert_eq!(code(&output), 1);
    assert_eq!(
        json(&output)[0]["errors"][0]["field"],
        "metadata.annotations[isvc-ingress.io/host]"
    );
}

#[test]
fn render_with_bare_ingress_json_warns_about_the_keys_it_lacks() {
    let output = run(
        &[
            "render",
            "--config",
            "examples/config-path-based.json",
            "examples/sklearn-iris.yaml",
        ],
        None,
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(stderr(&output).contains(
        "warning: config: the configuration has no `deploy` key: using the default KServe ships"
    ));
    assert_eq!(
        json(&output)[0]["url"],
        "http://ml.example.com/serving/models/sklearn-iris"
    );
}

#[test]
fn unusable_input_exits_2() {
    let cases: [(&[&str], Option<&str>, &str); 5] = [
        (
            &["render", "no/such/file.yaml"],
            None,
            "cannot read no/such/file.yaml",
        ),
        (
            &["render", "-"],
            Some("a: [unclosed"),
            "is not YAML or JSON",
        ),
        (
            &["render", "-"],
            Some("kind: Service\nmetadata: {name: x}\n"),
            "holds no InferenceService",
        ),
        (
            &[
                "render",
                "--config",
                "examples/config-invalid.json",
                "examples/sklearn-iris.yaml",
            ],
            None,
            "the config examples/config-invalid.json is invalid: config.ingress.ingressGateway: is required",
        ),
        (
            &["check-config", "-"],
            Some("kind: Secret\napiVersion: v1\n"),
            "expected kind ConfigMap",
        ),
    ];
    for (arguments, stdin, fragment) in cases {
        let output = run(arguments, stdin);
        assert_eq!(code(&output), 2, "{arguments:?}");
        assert!(
            stderr(&output).contains(fragment),
            "{arguments:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn check_config_summarises_or_lists_every_violation() {
    let output = run(&["check-config", "examples/config-gateway-api.yaml"], None);
    assert_eq!(code(&output), 0);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("examples/config-gateway-api.yaml: valid\n"));
    assert!(text.contains("standard routes: HTTPRoute on kserve/kserve-ingress-gateway"));

    let output = run(&["check-config", "examples/config-invalid.json"], None);
    assert_eq!(code(&output), 1);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("examples/config-invalid.json: invalid, 7 violations\n"),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|line| line.starts_with("  config.ingress."))
            .count(),
        7
    );

    let shipped = run(
        &["check-config", "config/kserve-inferenceservice-config.yaml"],
        None,
    );
    assert_eq!(code(&shipped), 0, "{}", stderr(&shipped));
}

#[test]
fn serve_without_certificates_suggests_self_signed() {
    let output = run(&["serve"], None);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let message = stderr(&output);
    for expected in ["--tls-cert", "--tls-key", "--self-signed", "local trial"] {
        assert!(
            message.contains(expected),
            "{expected:?} missing from: {message}"
        );
    }
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout: {:?}",
        output.stdout
    );
}
