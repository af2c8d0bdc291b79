//! `isvc-ingress analyze` offline, on the dumps of tests/fixtures/analyze (written by its
//! generate.py): each healthy set-up gives no finding; each fixture provokes exactly its codes;
//! every code has a fixture and a section in docs/analyze.md; exit codes and the JSON shape of
//! the binary.

use isvc_ingress::analyze::{self, Code, Scope, Snapshot};
use isvc_ingress::plan::{Policy, RouteOwner};
use serde::Deserialize as _;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

mod analyze_fixtures;

use analyze_fixtures::{FIXTURES, Fixture};

fn fixture_path(name: &str) -> String {
    Fixture::named(name).path()
}

fn snapshot(name: &str) -> Snapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture_path(name));
    let text = std::fs::read_to_string(&path).expect("the fixture exists");
    let mut snapshot = Snapshot::default();
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let value = Value::deserialize(document).expect("a YAML document");
        let notes = snapshot.add(value);
        assert!(notes.is_empty(), "{name}: {notes:?}");
    }
    snapshot
}

/// The codes an analysis of `fixture` gives, each once, sorted.
fn codes(fixture: &str, owner: RouteOwner, names: &[&str]) -> BTreeSet<&'static str> {
    let policy = Policy {
        route_owner: owner,
        ..Policy::default()
    };
    let scope = Scope {
        namespace: None,
        names: names.iter().map(|name| name.to_string()).collect(),
    };
    let report = analyze::analyze(&snapshot(fixture), None, &policy, &scope);
    for finding in &report.findings {
        assert_eq!(finding.severity, finding.code.severity());
        assert!(!finding.message.is_empty() && !finding.fix.is_empty());
        assert!(!finding.message.contains('\n') && !finding.fix.contains('\n'));
    }
    report
        .findings
        .iter()
        .map(|finding| finding.code.as_str())
        .collect()
}

fn check(name: &str) {
    let fixture = Fixture::named(name);
    let expected: BTreeSet<&str> = fixture.codes.iter().copied().collect();
    assert_eq!(
        codes(name, fixture.route_owner, fixture.names),
        expected,
        "{name}"
    );
}

macro_rules! fixture_tests {
    ($($test:ident => $fixture:literal,)*) => {
        $(#[test]
        fn $test() {
            check($fixture);
        })*
    };
}

fixture_tests! {
    healthy_gateway_api_cluster_gives_no_finding => "healthy-gateway",
    healthy_ingress_cluster_gives_no_finding => "healthy-ingress",
    healthy_virtual_service_cluster_gives_no_finding => "healthy-virtualservice",
    healthy_domain_mapping_cluster_gives_no_finding => "healthy-domainmapping",
    ia0101_invalid_config => "ia0101",
    ia0102_config_not_found => "ia0102",
    ia0103_route_owner_conflict => "ia0103",
    ia0104_knative_domain_template => "ia0104",
    ia0201_plan_invalid => "ia0201",
    ia0301_route_missing => "ia0301",
    ia0302_route_without_controller => "ia0302",
    ia0302_route_without_our_label => "ia0302-label",
    ia0302_route_of_an_earlier_isvc => "ia0302-uid",
    ia0303_route_differs => "ia0303",
    ia0401_route_not_seen => "ia0401",
    ia0401_domain_mapping_not_reconciled => "ia0401-domainmapping",
    ia0402_route_not_accepted => "ia0402",
    ia0402_domain_mapping_not_ready => "ia0402-domainmapping",
    ia0403_istio_gateway_missing => "ia0403",
    ia0404_ingress_class_missing => "ia0404",
    ia0405_ingress_without_address => "ia0405",
    ia0501_gateway_missing => "ia0501",
    ia0502_listener_host_mismatch => "ia0502",
    ia0502_istio_server_host_mismatch => "ia0502-istio",
    ia0503_listener_refuses_namespace => "ia0503",
    ia0504_gateway_not_programmed => "ia0504",
    ia0601_backend_service_missing => "ia0601",
    ia0602_backend_port_missing => "ia0602",
    ia0701_status_url => "ia0701",
    ia0702_status_address => "ia0702",
    ia0703_status_component_url => "ia0703",
    ia0801_host_claimed_by_another_isvc => "ia0801",
    ia0802_host_claimed_by_a_route => "ia0802",
    ia0901_host_invalid => "ia0901",
    ia0902_label_near_limit => "ia0902",
    ia0903_visibility_label_ignored => "ia0903",
    ia0904_cluster_local_exposed => "ia0904",
    ia1001_stale_route => "ia1001",
}

/// The API server lists objects by namespace and name, a dump holds them in any order: the
/// report is the same (the live half of this is `tests/e2e/analyze.rs`).
#[test]
fn the_order_of_the_objects_in_a_dump_does_not_change_the_report() {
    for fixture in FIXTURES {
        let forward = snapshot(fixture.name);
        let mut reversed = Snapshot::default();
        for kind in analyze::Kind::ALL {
            for object in forward.list(kind).rev() {
                reversed.insert(kind, object.clone());
            }
        }
        let policy = Policy {
            route_owner: fixture.route_owner,
            ..Policy::default()
        };
        let scope = Scope {
            namespace: None,
            names: fixture.names.iter().map(|name| name.to_string()).collect(),
        };
        assert_eq!(
            analyze::analyze(&reversed, None, &policy, &scope),
            analyze::analyze(&forward, None, &policy, &scope),
            "{}",
            fixture.name
        );
    }
}

#[test]
fn every_code_has_a_fixture_that_provokes_it() {
    let provoked: BTreeSet<&str> = FIXTURES
        .iter()
        .flat_map(|fixture| fixture.codes.iter().copied())
        .collect();
    for code in Code::ALL {
        assert!(provoked.contains(code.as_str()), "no fixture for {code}");
    }
    let files: BTreeSet<String> = std::fs::read_dir("tests/fixtures/analyze")
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".yaml").map(str::to_string)
        })
        .collect();
    let listed: BTreeSet<String> = FIXTURES
        .iter()
        .map(|fixture| fixture.name.to_string())
        .collect();
    assert_eq!(
        files, listed,
        "every fixture file is in FIXTURES and tested"
    );
}

#[test]
fn every_code_is_documented_with_meaning_reason_and_fix() {
    let docs = std::fs::read_to_string("docs/analyze.md").expect("docs/analyze.md");
    let sections: Vec<&str> = docs.split("\n### ").skip(1).collect();
    let documented: Vec<&str> = sections
        .iter()
        .filter_map(|section| section.split_whitespace().next())
        .filter(|word| word.starts_with("IA"))
        .collect();
    let codes: Vec<&str> = Code::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(documented, codes, "one section per code, in code order");
    for (section, code) in sections
        .iter()
        .filter(|s| s.starts_with("IA"))
        .zip(Code::ALL)
    {
        let heading = section.lines().next().unwrap();
        assert!(
            heading.contains(code.title()),
            "{code}: the heading says the code's title ({})",
            code.title()
        );
        assert!(
            heading.contains(code.severity().as_str()),
            "{code}: the heading says the severity"
        );
        for part in ["**Meaning.**", "**Why it matters.**", "**Fix.**"] {
            assert!(section.contains(part), "{code} lacks {part}");
        }
    }
}

fn run(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_isvc-ingress"))
        .arg("analyze")
        .args(arguments)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn code_of(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

#[test]
fn exit_codes_say_errors_found_and_unreadable_input() {
    let healthy = run(&["-f", &fixture_path("healthy-gateway")]);
    assert_eq!(
        code_of(&healthy),
        0,
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    let stdout = String::from_utf8_lossy(&healthy.stdout);
    assert!(stdout.contains("1 InferenceService analysed: 0 errors, 0 warnings."));
    assert!(
        !stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    let broken = run(&["-f", &fixture_path("ia0301")]);
    assert_eq!(code_of(&broken), 1);
    let warning_only = run(&[
        "--route-owner",
        "isvc-ingress",
        "-f",
        &fixture_path("ia0405"),
    ]);
    assert_eq!(code_of(&warning_only), 0, "warnings alone exit 0");

    let missing_file = run(&["-f", "tests/fixtures/analyze/no-such-file.yaml"]);
    assert_eq!(code_of(&missing_file), 2);
    assert!(String::from_utf8_lossy(&missing_file.stderr).contains("cannot read"));
    let not_yaml = run(&["-f", "README.md"]);
    assert_eq!(code_of(&not_yaml), 2);
    let nothing = run(&["-f", "examples/config-invalid.json"]);
    assert_eq!(code_of(&nothing), 2, "a file with no object analyze reads");

    let unknown = run(&["-f", &fixture_path("healthy-gateway"), "no-such-model"]);
    assert_eq!(code_of(&unknown), 1);
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("error: no InferenceService no-such-model")
    );
    let other_namespace = run(&["-f", &fixture_path("ia0301"), "-n", "elsewhere"]);
    assert_eq!(
        code_of(&other_namespace),
        0,
        "the namespace scope leaves the model out"
    );
}

#[test]
fn several_files_make_one_snapshot() {
    // The routes and Services of one dump, the rest of another: together they are healthy.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture_path("healthy-virtualservice")).unwrap();
    let documents: Vec<&str> = text.split("\n---\n").collect();
    let (first, second) = documents.split_at(documents.len() / 2);
    let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
    std::fs::write(&a, first.join("\n---\n")).unwrap();
    std::fs::write(&b, format!("---\n{}", second.join("\n---\n"))).unwrap();
    let output = run(&["-f", a.to_str().unwrap(), "-f", b.to_str().unwrap()]);
    assert_eq!(
        code_of(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn json_output_has_the_documented_shape() {
    let output = run(&["-o", "json", "-f", &fixture_path("ia0602")]);
    assert_eq!(code_of(&output), 1);
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let keys: Vec<&String> = report.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["findings", "inferenceServices", "summary"]);
    assert_eq!(
        report["inferenceServices"],
        serde_json::json!(["models/sklearn-iris"])
    );
    assert_eq!(
        report["summary"],
        serde_json::json!({"inferenceServices": 1, "errors": 2, "warnings": 0})
    );
    let finding = &report["findings"][0];
    let mut keys: Vec<&String> = finding.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "code",
            "fix",
            "inferenceService",
            "message",
            "objects",
            "severity"
        ]
    );
    assert_eq!(finding["code"], "IA0602");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["inferenceService"], "models/sklearn-iris");
    assert_eq!(
        finding["objects"],
        serde_json::json!([
            {"kind": "Service", "namespace": "models", "name": "sklearn-iris-predictor"},
            {"kind": "HTTPRoute", "namespace": "models", "name": "sklearn-iris-predictor"}
        ])
    );
    let config = run(&["-o", "json", "-f", &fixture_path("ia0102")]);
    let report: Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(report["findings"][0]["inferenceService"], Value::Null);
    assert_eq!(report["findings"][0]["objects"], serde_json::json!([]));
}

#[test]
fn the_table_groups_findings_by_inference_service() {
    let output = run(&["-f", &fixture_path("ia1001")]);
    let text = String::from_utf8_lossy(&output.stdout);
    let headings: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("InferenceService "))
        .collect();
    assert_eq!(
        headings,
        [
            "InferenceService models/retired",
            "InferenceService models/sklearn-iris"
        ]
    );
    assert!(text.contains("  SEVERITY CODE   OBJECT"));
    assert!(text.contains("fix: delete it: kubectl delete httproutes.gateway.networking.k8s.io -n models sklearn-iris-transformer"));
}

#[test]
fn a_config_file_overrides_the_dumped_one() {
    // ia0101's dumped config is invalid; the valid one of healthy-gateway, passed with
    // --config, makes the same cluster healthy.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let text = std::fs::read_to_string(fixture_path("healthy-gateway")).unwrap();
    let list: Value = serde_yaml_ng::from_str(&text).unwrap();
    let config_map = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["kind"] == "ConfigMap")
        .unwrap();
    std::fs::write(&config, serde_json::to_string(config_map).unwrap()).unwrap();
    let output = run(&[
        "--config",
        config.to_str().unwrap(),
        "-f",
        &fixture_path("ia0101"),
    ]);
    assert_eq!(
        code_of(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// Live mode without a usable cluster: no configuration, or an API server that does not
/// answer, is exit 2 with the reason.
#[test]
fn an_unreadable_cluster_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: nowhere\n  cluster:\n    server: \
         https://127.0.0.1:1\ncontexts:\n- name: nowhere\n  context: {cluster: nowhere, user: \
         nobody}\ncurrent-context: nowhere\nusers:\n- name: nobody\n  user: {token: none}\n",
    )
    .unwrap();
    let live = |kubeconfig: &Path| {
        Command::new(env!("CARGO_BIN_EXE_isvc-ingress"))
            .arg("analyze")
            .env("KUBECONFIG", kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .output()
            .unwrap()
    };
    let refused = live(&kubeconfig);
    assert_eq!(code_of(&refused), 2);
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("error: cannot read inferenceservices (serving.kserve.io/v1beta1)"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let missing = live(&dir.path().join("no-such-kubeconfig"));
    assert_eq!(code_of(&missing), 2);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no usable Kubernetes configuration")
    );
}
