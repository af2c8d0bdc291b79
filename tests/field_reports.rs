//! Issue 11, the seven kinds of wrong answer of the field reports, each as a kind: the field
//! cases (tests/fixtures/field-cases) and the other members of each kind.

mod support;

use isvc_ingress::admission::{AdmissionHandler, AdmissionState, Webhook};
use isvc_ingress::config::KserveConfig;
use isvc_ingress::isvc::ComponentKind;
use isvc_ingress::plan::{self, Policy, RouteKind, RouteOwner};
use isvc_ingress::server::Endpoint;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::*;

fn ours() -> Policy {
    Policy {
        route_owner: RouteOwner::IsvcIngress,
        ..Policy::default()
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files_in(directory: &str, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(directory))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .and_then(|extension| extension.to_str())
                .is_some_and(|extension| extensions.contains(&extension))
        })
        .collect();
    files.sort();
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

// 1. YAML output is the JSON output.

/// Every InferenceService input of the repository (fixtures, examples, field cases) under
/// every config file, both route owners and both Knative templates: each YAML document of
/// `render -o yaml`, read by a YAML parser other than the writer's (serde-saphyr; the writer is
/// serde_yaml_ng on libyaml), equals the corresponding route of `render -o json`. A YAML tag
/// (`!regex`, `!prefix`, `!uri`) would read as a string where JSON has an object.
#[test]
fn yaml_output_equals_json_output_for_every_fixture_and_example() {
    let inputs: Vec<PathBuf> = [
        "examples",
        "tests/fixtures/isvc",
        "tests/fixtures/field-cases",
    ]
    .iter()
    .flat_map(|directory| files_in(directory, &["yaml", "json"]))
    .filter(|path| {
        let name = path.file_name().unwrap().to_string_lossy();
        !name.starts_with("config") && !name.contains("review") && !name.ends_with("config.json")
    })
    .collect();
    let mut configs: Vec<Option<String>> = vec![None];
    configs.extend(
        files_in("examples", &["yaml", "json"])
            .into_iter()
            .chain(files_in("tests/fixtures/config", &["yaml"]))
            .chain(files_in("tests/fixtures/field-cases", &["json"]))
            .filter(|path| {
                let name = path.file_name().unwrap().to_string_lossy();
                name.contains("config") && !name.contains("invalid")
            })
            .map(|path| Some(relative(&path))),
    );
    let mut documents = 0;
    for input in &inputs {
        let input = relative(input);
        for config in &configs {
            for owner in ["kserve", "isvc-ingress"] {
                for template in [
                    "{{.Name}}.{{.Namespace}}.{{.Domain}}",
                    "{{.Name}}-{{.Namespace}}.{{.Domain}}",
                ] {
                    let mut arguments = vec!["render", "--route-owner", owner];
                    arguments.extend(["--knative-domain-template", template]);
                    if let Some(config) = config {
                        arguments.extend(["--config", config]);
                    }
                    arguments.push(&input);
                    let from_json = run(&arguments, None);
                    arguments.extend(["-o", "yaml"]);
                    let from_yaml = run(&arguments, None);
                    let case = format!("{arguments:?}");
                    assert_eq!(code(&from_json), code(&from_yaml), "{case}");
                    assert!(code(&from_json) < 2, "{case}: {}", stderr(&from_json));
                    let expected: Vec<Value> = json(&from_json)
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|plan| plan["ok"] == true)
                        .flat_map(|plan| plan["routes"].as_array().unwrap().clone())
                        .collect();
                    let text = String::from_utf8(from_yaml.stdout).unwrap();
                    let actual: Vec<Value> = serde_saphyr::from_multiple(&text)
                        .unwrap_or_else(|error| panic!("{case}: {error}\n{text}"));
                    let actual: Vec<Value> = actual
                        .into_iter()
                        .filter(|value| !value.is_null())
                        .collect();
                    assert_eq!(actual, expected, "{case}\n{text}");
                    documents += actual.len();
                }
            }
        }
    }
    assert!(documents > 100, "only {documents} documents compared");
}

/// The field cases' VirtualService matches and rewrites, which serde_yaml_ng wrote as tags.
#[test]
fn virtual_service_matches_are_plain_yaml_maps() {
    let output = run(
        &[
            "render",
            "--config",
            "tests/fixtures/field-cases/path-explainer-knative.config.json",
            "-o",
            "yaml",
            "tests/fixtures/field-cases/path-explainer-knative.yaml",
        ],
        None,
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(!text.contains(" !"), "no YAML tag:\n{text}");
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let virtual_service = &documents[0];
    assert_eq!(virtual_service["kind"], "VirtualService");
    let http = virtual_service["spec"]["http"].as_array().unwrap();
    assert!(http[0]["match"][0]["authority"]["regex"].is_string());
    assert!(http[0]["match"][0]["uri"]["regex"].is_string());
    assert_eq!(http[3]["rewrite"], json!({ "uri": "/" }));
    assert!(http[2]["rewrite"]["uriRegexRewrite"]["match"].is_string());
}

// 2. A URL the platform wrote is never replaced by a prediction; Knative's domain-template.

/// The AdmissionReviews of a field-case file, as the API server would send them.
fn reviews(file: &str) -> Vec<(String, Value)> {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/field-cases").join(file)).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    documents
        .into_iter()
        .filter(|document| !document.is_null())
        .enumerate()
        .map(|(index, document)| {
            let object = document.get("object").cloned().unwrap_or(Value::Null);
            let metadata = object["metadata"].clone();
            let kind = json!({"group": "serving.kserve.io", "version": "v1beta1", "kind": "InferenceService"});
            let mut request = json!({
                "uid": format!("00000000-0000-0000-0000-00000000000{index}"),
                "kind": kind, "requestKind": kind,
                "resource": {"group": "serving.kserve.io", "version": "v1beta1", "resource": "inferenceservices"},
                "name": metadata["name"], "namespace": metadata["namespace"],
                "operation": document["operation"], "userInfo": {"username": "qa"},
                "object": object, "oldObject": document.get("oldObject").cloned().unwrap_or(Value::Null),
                "dryRun": false,
            });
            if let Some(sub_resource) = document.get("subResource") {
                request["subResource"] = sub_resource.clone();
                request["requestSubResource"] = sub_resource.clone();
            }
            let case = document["case"].as_str().unwrap_or_default().to_string();
            (case, json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}))
        })
        .collect()
}

/// The response of the webhook and the object after its patch.
fn admit(state: AdmissionState, endpoint: Endpoint, review: &Value) -> (Value, Value) {
    let webhook = Webhook::new(Arc::new(state));
    let reply = webhook.handle(endpoint, &serde_json::to_vec(review).unwrap());
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    let response = body["response"].clone();
    let mut object = review["request"]["object"].clone();
    if let Some(patch) = response["patch"].as_str() {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut object, &patch).unwrap();
    }
    (response, object)
}

fn state(config: KserveConfig, policy: Policy) -> AdmissionState {
    AdmissionState::new(config, policy, "kserve")
}

/// kserve#715: with Knative's dash template, the status KServe writes is what Knative serves:
/// the status mutator keeps every URL as written (whatever isvc-ingress predicts), counts it,
/// and, given the same template, predicts exactly those URLs.
/// Found with 10,000 ISVCs on a real API server (docs/performance.md): after an `ingressDomain`
/// change, the URLs isvc-ingress itself had written were kept as if the platform had written
/// them, every Knative ISVC kept its old domain and got a `PlatformUrlKept` Warning on every
/// reconcile. A URL whose only writer in `managedFields` is isvc-ingress is replaced.
#[test]
fn a_status_url_isvc_ingress_wrote_itself_is_replaced_by_the_new_plan() {
    let (case, mut review) = reviews("knative-dash-domain-template.status-review.yaml").remove(0);
    review["request"]["object"]["metadata"]["managedFields"] = json!([
        {"manager": "isvc-ingress", "operation": "Update", "subresource": "status",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:url": {},
            "f:components": {"f:predictor": {"f:url": {}, "f:restUrl": {}}}}}}]);
    for owner in [Policy::default(), ours()] {
        let state = state(KserveConfig::shipped(), owner.clone());
        let mut registry = prometheus_client::registry::Registry::default();
        state.register_metrics(&mut registry);
        let (response, object) = admit(state, Endpoint::Mutate, &review);
        assert_eq!(response["allowed"], true, "{case}");
        let isvc = support::isvc(review["request"]["object"].clone());
        let planned = plan::plan(&isvc, &KserveConfig::shipped(), &owner).unwrap();
        let predictor = &planned.components[&ComponentKind::Predictor].url;
        assert_eq!(
            &object["status"]["components"]["predictor"]["url"],
            predictor
        );
        assert_eq!(
            object["status"]["url"],
            planned.url.clone().unwrap(),
            "{case}"
        );
        let mut metrics = String::new();
        prometheus_client::encoding::text::encode(&mut metrics, &registry).unwrap();
        assert!(!metrics.contains("status_urls_kept_total{"), "{metrics}");
    }
}

#[test]
fn a_status_url_the_platform_wrote_is_kept_over_a_prediction() {
    let (case, review) = reviews("knative-dash-domain-template.status-review.yaml").remove(0);
    for owner in [Policy::default(), ours()] {
        let state = state(KserveConfig::shipped(), owner.clone());
        let mut registry = prometheus_client::registry::Registry::default();
        state.register_metrics(&mut registry);
        let (response, object) = admit(state, Endpoint::Mutate, &review);
        assert_eq!(response["allowed"], true, "{case}");
        let status = &object["status"];
        let predictor = "http://sklearn-iris-predictor-user1.example.com";
        assert_eq!(status["components"]["predictor"]["url"], predictor);
        assert_eq!(status["components"]["predictor"]["restUrl"], predictor);
        assert_eq!(
            status["address"]["url"],
            "http://sklearn-iris.user1.svc.cluster.local"
        );
        let mut metrics = String::new();
        prometheus_client::encoding::text::encode(&mut metrics, &registry).unwrap();
        assert!(
            metrics
                .contains(r#"status_urls_kept_total{field="status.components.predictor.url"} 1"#),
            "{metrics}"
        );
        if owner.route_owner == RouteOwner::Kserve {
            // KServe's VirtualService serves the host KServe wrote.
            assert_eq!(status["url"], "http://sklearn-iris-user1.example.com");
        } else {
            // isvc-ingress writes the VirtualService, on the host it plans.
            assert_eq!(status["url"], "http://sklearn-iris.user1.example.com");
        }
    }
    // With Knative's template given, the prediction is the platform's URL: nothing to keep.
    let config = KserveConfig::shipped().with_knative_network(
        isvc_ingress::config::KnativeNetwork::from_domain_template(
            "{{.Name}}-{{.Namespace}}.{{.Domain}}",
        )
        .unwrap(),
    );
    let isvc = support::isvc(review["request"]["object"].clone());
    let planned = plan::plan(&isvc, &config, &Policy::default()).unwrap();
    let (_, kept) = plan::status::resolve(
        &planned,
        review["request"]["object"].get("status"),
        Default::default(),
    );
    assert!(kept.is_empty(), "{kept:?}");
    assert_eq!(
        planned.url.as_deref(),
        Some("http://sklearn-iris-user1.example.com")
    );
}

/// Which URLs are predictions: Knative-assigned hosts (and KServe's host derived from them);
/// not the URLs of Standard mode (KServe renders domainTemplate as we do), of routes isvc-ingress
/// writes, or a path URL.
#[test]
fn only_predicted_urls_yield_to_the_written_ones() {
    let written = json!({"url": "http://written.example.com",
                         "components": {"predictor": {"url": "http://written-predictor.example.com"}}});
    let object = isvc_json("m", "ns", predictor_only());
    let cases = [
        (
            config_with(json!({}), "Knative"),
            Policy::default(),
            true,
            true,
        ),
        (config_with(json!({}), "Knative"), ours(), false, true),
        (
            config_with(json!({"disableIstioVirtualHost": true}), "Knative"),
            Policy::default(),
            true,
            true,
        ),
        (
            config_with(
                json!({"pathTemplate": "/serving/{{ .Namespace }}/{{ .Name }}"}),
                "Knative",
            ),
            Policy::default(),
            false,
            true,
        ),
        (
            config_with(json!({}), "Standard"),
            Policy::default(),
            false,
            false,
        ),
        (
            config_with(json!({"enableGatewayApi": true}), "Standard"),
            ours(),
            false,
            false,
        ),
    ];
    for (config, policy, url_kept, components_kept) in cases {
        let planned = plan::plan(&support::isvc(object.clone()), &config, &policy).unwrap();
        let (urls, kept) = plan::status::resolve(&planned, Some(&written), Default::default());
        let case = format!("{:?} {:?}", planned.route_kind, policy.route_owner);
        assert_eq!(
            urls.url.as_deref() == Some("http://written.example.com"),
            url_kept,
            "{case}"
        );
        let predictor = &urls.components[&ComponentKind::Predictor];
        assert_eq!(
            predictor.url == "http://written-predictor.example.com",
            components_kept,
            "{case}"
        );
        assert_eq!(predictor.rest_url, predictor.url, "{case}");
        assert_eq!(
            kept.len(),
            usize::from(url_kept) + usize::from(components_kept),
            "{case}"
        );
    }
}

/// `render --knative-domain-template` predicts every Knative-mode host with it; a template
/// that cannot make a host is unusable input.
#[test]
fn render_takes_knatives_domain_template() {
    let output = run(
        &[
            "render",
            "--knative-domain-template",
            "{{.Name}}-{{.Namespace}}.{{.Domain}}",
            "tests/fixtures/field-cases/knative-dash-domain-template.yaml",
        ],
        None,
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let plan = &json(&output)[0];
    assert_eq!(plan["url"], "http://sklearn-iris-user1.example.com");
    assert_eq!(
        plan["components"]["predictor"]["host"],
        "sklearn-iris-predictor-user1.example.com"
    );
    for bad in [
        "{{.IngressDomain}}",
        "{{.Name}}_{{.Namespace}}.{{.Domain}}",
        "{{.Name",
    ] {
        let output = run(
            &[
                "render",
                "--knative-domain-template",
                bad,
                "tests/fixtures/field-cases/knative-dash-domain-template.yaml",
            ],
            None,
        );
        assert_eq!(code(&output), 2, "{bad}");
        assert!(
            stderr(&output).contains("config-network.domain-template"),
            "{}",
            stderr(&output)
        );
    }
    // Labels and annotations are read as in Knative's template data.
    let mut object = isvc_json("m", "ns", predictor_only());
    object["metadata"]["labels"] = json!({"team": "blue"});
    let config = config_with(json!({}), "Knative").with_knative_network(
        isvc_ingress::config::KnativeNetwork::from_domain_template(
            "{{.Name}}.{{.Labels.team}}.{{.Domain}}",
        )
        .unwrap(),
    );
    let (plan, _) = plan_ok(&object, &config);
    assert_eq!(
        plan.components[&ComponentKind::Predictor].host,
        "m-predictor.blue.example.com"
    );
    object["metadata"]["labels"] = json!({});
    let rejection = plan_err(&object, &config, &Policy::default());
    assert_eq!(rejection.violations[0].field, "metadata.labels[team]");
}

// 3. https component URLs are never downgraded.

/// Compatibility row #3: component URLs follow urlScheme (or the TLS annotation) in both
/// modes; a status KServe wrote with https keeps it and gets https restUrls.
#[test]
fn component_urls_follow_url_scheme_and_are_never_downgraded() {
    let https = json!({"urlScheme": "https", "ingressDomain": "ml.example.com"});
    for (mode, config) in [
        ("Knative", config_with(https.clone(), "Knative")),
        ("Standard", config_with(https.clone(), "Standard")),
        (
            "Standard",
            config_with(
                json!({"urlScheme": "https", "enableGatewayApi": true}),
                "Standard",
            ),
        ),
    ] {
        let (plan, _) = plan_ok(
            &isvc_json("ml-ensemble", "default", with_transformer()),
            &config,
        );
        assert!(
            plan.url.as_deref().unwrap().starts_with("https://"),
            "{mode}"
        );
        for component in plan.components.values() {
            assert!(
                component.url.starts_with("https://"),
                "{mode}: {component:?}"
            );
            assert_eq!(component.rest_url, component.url);
        }
    }
    // The TLS annotation on an Ingress (isvc-ingress writes it): https everywhere.
    let mut object = isvc_json("m", "ns", with_transformer());
    object["metadata"]["annotations"] = json!({"isvc-ingress.io/tls-secret": "m-tls"});
    let (plan, _) = plan_ok_with(&object, &config_with(json!({}), "Standard"), &ours());
    assert!(
        plan.components
            .values()
            .all(|component| component.url.starts_with("https://"))
    );
    // The field report: KServe wrote https; the built-in config says http; nothing is downgraded.
    let object = isvc_json("ml-ensemble", "default", predictor_only());
    let written = json!({"url": "https://ml-ensemble.default.example.com",
                         "components": {"predictor": {"url": "https://ml-ensemble-predictor.default.example.com"}}});
    for (mode, policy) in [
        ("Knative", Policy::default()),
        ("Standard", Policy::default()),
        ("Knative", ours()),
    ] {
        let planned = plan::plan(
            &support::isvc(object.clone()),
            &config_with(json!({}), mode),
            &policy,
        )
        .unwrap();
        let (urls, kept) = plan::status::resolve(&planned, Some(&written), Default::default());
        let predictor = &urls.components[&ComponentKind::Predictor];
        if mode == "Knative" {
            assert_eq!(
                predictor.url,
                "https://ml-ensemble-predictor.default.example.com"
            );
            assert_eq!(predictor.rest_url, predictor.url);
            assert_eq!(
                urls.url.as_deref(),
                Some("https://ml-ensemble.default.example.com")
            );
            assert!(
                kept.iter()
                    .all(|disagreement| disagreement.why == plan::status::KeptBecause::NoDowngrade)
            );
        }
        assert!(
            urls.components
                .values()
                .all(|component| !component.url.starts_with("http://"))
                || mode == "Standard"
        );
    }
}

fn with_transformer() -> Value {
    let mut spec = predictor_only();
    spec["transformer"] = json!({"containers": [{"name": "kserve-container", "image": "t"}]});
    spec
}

// 4. What the API server would refuse is refused at admission.

/// kserve#2048: the old class annotation beside a configured ingressClassName, through the
/// webhook (field case ingress-class-conflict.review.yaml) and in both route owners.
#[test]
fn an_ingress_class_annotation_that_contradicts_ingress_class_name_is_refused() {
    let (case, review) = reviews("ingress-class-conflict.review.yaml").remove(0);
    for policy in [Policy::default(), ours()] {
        let config = config_with(json!({"ingressClassName": "istio"}), "Knative");
        let (response, _) = admit(state(config, policy), Endpoint::Validate, &review);
        assert_eq!(response["allowed"], false, "{case}");
        assert_eq!(response["status"]["code"], 422);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.starts_with("metadata.annotations[kubernetes.io/ingress.class]: the Ingress xgb-oldclass would be refused by the API server"), "{message}");
        assert!(
            message.contains("must match `ingressClassName` (istio)"),
            "{message}"
        );
    }
    // The same class in both places, or no ingressClassName: allowed, as Kubernetes allows it.
    for (class, annotated) in [(Some("traefik"), "traefik"), (None, "traefik")] {
        let config = match class {
            Some(class) => config_with(json!({"ingressClassName": class}), "Standard"),
            None => config_with(json!({}), "Standard"),
        };
        let mut object = isvc_json("m", "ns", predictor_only());
        object["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": annotated});
        plan_ok(&object, &config);
    }
}

/// One member of the kind per route kind: the value each API server refuses, refused at
/// admission with the field it came from.
#[test]
fn values_the_api_server_refuses_are_refused_with_their_field() {
    let many_domains: Vec<String> = (0..16)
        .map(|index| format!("d{index}.example.org"))
        .collect();
    let ip_policy = Policy {
        allowed_domains: vec!["3.4".into()],
        ..ours()
    };
    let long_path = format!("/{}", "p".repeat(1100));
    type Case = (
        &'static str,
        Value,
        KserveConfig,
        Policy,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "HTTPRoute: more than 16 hostnames",
            json!({}),
            config_with(
                json!({"enableGatewayApi": true, "additionalIngressDomains": many_domains}),
                "Standard",
            ),
            Policy::default(),
            "config.ingress.additionalIngressDomains",
            "an HTTPRoute holds at most 16",
        ),
        (
            "HTTPRoute: a timeout of more than 5 digits, as KServe writes it",
            json!({}),
            config_with(json!({"enableGatewayApi": true}), "Standard"),
            Policy::default(),
            "spec.predictor.timeout",
            "is not a Gateway API duration",
        ),
        (
            "HTTPRoute: a hostname with a trailing dot",
            json!({"isvc-ingress.io/host": "m.example.com."}),
            config_with(json!({"enableGatewayApi": true}), "Standard"),
            ours(),
            "metadata.annotations[isvc-ingress.io/host]",
            "must not end with a dot",
        ),
        (
            "HTTPRoute: a path longer than 1024 characters",
            json!({"isvc-ingress.io/path": long_path}),
            config_with(json!({"enableGatewayApi": true}), "Standard"),
            ours(),
            "metadata.annotations[isvc-ingress.io/path]",
            "at most 1024",
        ),
        (
            "Ingress: a host that is an IP address",
            json!({"isvc-ingress.io/host": "1.2.3.4"}),
            config_with(json!({}), "Standard"),
            ip_policy.clone(),
            "metadata.annotations[isvc-ingress.io/host]",
            "must be a DNS name, not an IP address",
        ),
        (
            "VirtualService: an all-numeric top-level domain",
            json!({"isvc-ingress.io/host": "1.2.3.4"}),
            config_with(json!({}), "Knative"),
            ip_policy,
            "metadata.annotations[isvc-ingress.io/host]",
            "all-numeric top-level domain",
        ),
        (
            "VirtualService: a timeout under 1ms",
            json!({"isvc-ingress.io/timeout": "0s"}),
            config_with(json!({}), "Knative"),
            ours(),
            "metadata.annotations[isvc-ingress.io/timeout]",
            "greater than 1ms",
        ),
        (
            "DomainMapping: a name below the cluster-local domain",
            json!({"isvc-ingress.io/host": "m.svc.cluster.local"}),
            config_with(json!({"disableIstioVirtualHost": true}), "Knative"),
            Policy {
                allowed_domains: vec!["svc.cluster.local".into()],
                ..Policy::default()
            },
            "metadata.annotations[isvc-ingress.io/host]",
            "must not be a subdomain of the cluster-local domain",
        ),
        (
            "Ingress: kubernetes.io/ingress.class against ingressClassName",
            json!({"kubernetes.io/ingress.class": "traefik"}),
            config_with(json!({"ingressClassName": "nginx"}), "Standard"),
            ours(),
            "metadata.annotations[kubernetes.io/ingress.class]",
            "must match `ingressClassName`",
        ),
    ];
    for (case, annotations, config, policy, field, message) in cases {
        let mut spec = predictor_only();
        if case.contains("5 digits") {
            spec["predictor"]["timeout"] = json!(100_000);
        }
        let mut object = isvc_json("m", "ns", spec);
        object["metadata"]["annotations"] = annotations;
        let rejection = plan_err(&object, &config, &policy);
        let violation = rejection
            .violations
            .iter()
            .find(|violation| violation.field == field)
            .unwrap_or_else(|| panic!("{case}: {:?}", rejection.violations));
        assert!(
            violation.message.contains(message),
            "{case}: {}",
            violation.message
        );
    }
    // Where isvc-ingress writes the HTTPRoute, a long timeout is spelt in h/m/s.
    let mut spec = predictor_only();
    spec["predictor"]["timeout"] = json!(100_000);
    let (_, routes) = plan_ok_with(
        &isvc_json("m", "ns", spec),
        &config_with(json!({"enableGatewayApi": true}), "Standard"),
        &ours(),
    );
    assert_eq!(
        routes[0]["spec"]["rules"][0]["timeouts"]["request"],
        "27h46m40s"
    );
}

// 5. With --route-owner kserve, the routes KServe writes; our designs with isvc-ingress.

/// Every route kind in both modes: which routes, whose metadata, which settings apply.
#[test]
fn every_route_kind_in_both_route_owners() {
    let path = json!({"pathTemplate": "/serving/{{ .Namespace }}/{{ .Name }}"});
    let mut gateway_api_path = path.clone();
    gateway_api_path["enableGatewayApi"] = json!(true);
    let standard = config_with(json!({}), "Standard");
    let gateway_api = config_with(gateway_api_path, "Standard");
    let knative = config_with(path, "Knative");
    let knative_alone = config_with(json!({"disableIstioVirtualHost": true}), "Knative");
    let object = isvc_json("m", "ns", with_transformer());
    let names = |routes: &[Value]| -> Vec<String> {
        routes
            .iter()
            .map(|route| {
                format!(
                    "{}/{}",
                    route["kind"].as_str().unwrap(),
                    route["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let owned = |route: &Value| {
        route["metadata"]["labels"]
            .get("app.kubernetes.io/managed-by")
            .is_some()
    };
    // Ingress: KServe's rules (the transformer host routes to the predictor, §10 Q3).
    let (plan, routes) = plan_ok(&object, &standard);
    assert_eq!(names(&routes), ["Ingress/m"]);
    assert!(
        plan.warnings
            .iter()
            .any(|warning| warning.contains("§10 Q3"))
    );
    let transformer_rule = &routes[0]["spec"]["rules"][1];
    assert_eq!(transformer_rule["host"], "m-transformer-ns.example.com");
    assert_eq!(
        transformer_rule["http"]["paths"][0]["backend"]["service"]["name"],
        "m-predictor"
    );
    assert!(!owned(&routes[0]));
    let (_, routes) = plan_ok_with(&object, &standard, &ours());
    let transformer_rule = &routes[0]["spec"]["rules"][1];
    assert_eq!(transformer_rule["host"], "m-transformer-ns.example.com");
    assert_eq!(
        transformer_rule["http"]["paths"][0]["backend"]["service"]["name"],
        "m-transformer"
    );
    assert!(owned(&routes[0]));
    // HTTPRoute: KServe's path rule on the top-level route, no rewrite, host-based URL.
    let (plan, routes) = plan_ok(&object, &gateway_api);
    assert_eq!(
        names(&routes),
        [
            "HTTPRoute/m-predictor",
            "HTTPRoute/m-transformer",
            "HTTPRoute/m"
        ]
    );
    assert_eq!(plan.url.as_deref(), Some("http://m-ns.example.com"));
    assert!(routes.iter().all(|route| !owned(route)));
    let (plan, routes) = plan_ok_with(&object, &gateway_api, &ours());
    assert_eq!(
        names(&routes),
        [
            "HTTPRoute/m-predictor",
            "HTTPRoute/m-transformer",
            "HTTPRoute/m",
            "HTTPRoute/m-path"
        ]
    );
    assert_eq!(plan.url.as_deref(), Some("http://example.com/serving/ns/m"));
    // VirtualService: the same routes; KServe's ExternalName Service has no labels.
    let (kserve_plan, routes) = plan_ok(&object, &knative);
    assert_eq!(names(&routes), ["VirtualService/m", "Service/m"]);
    assert_eq!(routes[1]["metadata"]["labels"], json!({}));
    let (our_plan, routes) = plan_ok_with(&object, &knative, &ours());
    assert_eq!(names(&routes), ["VirtualService/m", "Service/m"]);
    assert!(owned(&routes[0]) && owned(&routes[1]));
    assert_eq!(kserve_plan.url, our_plan.url);
    // The owner decides the routes, so it is part of the plan's hash.
    assert_ne!(
        kserve_plan.annotations["isvc-ingress.io/plan-hash"],
        our_plan.annotations["isvc-ingress.io/plan-hash"]
    );
    // DomainMapping: ours in both modes. Without Istio VirtualServices from KServe, no route
    // (KServe's) or our VirtualService (disableIstioVirtualHost then only keeps KServe away).
    let mut custom = object.clone();
    custom["metadata"]["annotations"] = json!({"isvc-ingress.io/host": "m.example.com"});
    for (policy, kind, count) in [
        (Policy::default(), RouteKind::None, 0),
        (ours(), RouteKind::VirtualService, 2),
    ] {
        let (plan, routes) = plan_ok_with(&custom, &knative_alone, &policy);
        assert_eq!(plan.route_kind, RouteKind::DomainMapping);
        assert_eq!(names(&routes), ["DomainMapping/m.example.com"]);
        assert!(owned(&routes[0]));
        let (plan, routes) = plan_ok_with(&object, &knative_alone, &policy);
        assert_eq!((plan.route_kind, routes.len()), (kind, count));
    }
    // Settings KServe does not read are refused where KServe writes the route.
    let settings = [
        (&standard, json!({"isvc-ingress.io/tls-secret": "t"})),
        (&standard, json!({"isvc-ingress.io/ingress-class": "nginx"})),
        (&standard, json!({"isvc-ingress.io/host": "x.example.com"})),
        (&gateway_api, json!({"isvc-ingress.io/timeout": "10s"})),
        (&gateway_api, json!({"isvc-ingress.io/path": "/x"})),
        (
            &gateway_api,
            json!({"isvc-ingress.io/gateway": "kserve/kserve-ingress-gateway"}),
        ),
        (&knative, json!({"isvc-ingress.io/host": "x.example.com"})),
        (&knative, json!({"isvc-ingress.io/route": "None"})),
        (&standard, json!({"isvc-ingress.io/route": "HTTPRoute"})),
    ];
    for (config, annotations) in settings {
        let mut annotated = object.clone();
        annotated["metadata"]["annotations"] = annotations.clone();
        let rejection = plan_err(&annotated, config, &Policy::default());
        let key = annotations
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        assert_eq!(
            rejection.violations[0].field,
            format!("metadata.annotations[{key}]"),
            "{annotations}"
        );
        assert!(
            rejection.violations[0]
                .message
                .contains("--route-owner isvc-ingress"),
            "{annotations}"
        );
        plan_ok_with(&annotated, config, &ours());
    }
}

// 6. Backend ports name ports of the Service KServe creates.

/// Every order, name and protocol of the declared ports, for every route kind that names a
/// Service port and both route owners: each backend port and each direct gRPC URL port is a
/// port of the Service KServe creates (port 80 = the first container port, later ports under
/// their own number). The field report: gRPC (h2c 8081) before REST (8080) sends gRPC to 80
/// and REST to 8080.
#[test]
fn every_backend_port_is_a_port_of_kserves_service() {
    /// Declared ports (name, containerPort), and the (gRPC, REST) backend ports when split.
    type Permutation<'a> = (&'a [(&'a str, u16)], Option<(u16, u16)>);
    let permutations: [Permutation; 8] = [
        (&[], None),
        (&[("h2c", 8081), ("http", 8080)], Some((80, 8080))),
        (&[("http", 8080), ("h2c", 8081)], Some((8081, 80))),
        (&[("grpc", 9000)], None),
        (&[("http1", 8085)], None),
        (
            &[("", 8080), ("grpc-port", 9000), ("metrics", 9090)],
            Some((9000, 80)),
        ),
        (
            &[("GRPC", 7000), ("grpc2", 7001), ("rest", 7002)],
            Some((80, 7002)),
        ),
        (&[("web", 8080), ("admin", 8081)], None),
    ];
    let configs = [
        config_with(json!({"enableGatewayApi": true}), "Standard"),
        config_with(json!({}), "Standard"),
        config_with(json!({"ingressDomain": "svc.cluster.local"}), "Standard"),
    ];
    for (ports, split) in permutations {
        let ports_json: Vec<Value> = ports
            .iter()
            .map(|(name, number)| json!({"name": name, "containerPort": number}))
            .collect();
        let spec = json!({"predictor": {"model": {"modelFormat": {"name": "triton"}, "ports": ports_json}}});
        let object = isvc_json("m", "ns", spec);
        let isvc = support::isvc(object.clone());
        let service = plan::service::service_ports(&isvc.components[0]);
        let service_ports: Vec<u16> = service.iter().map(|port| port.port).collect();
        for config in &configs {
            for policy in [Policy::default(), ours()] {
                let (plan, routes) = plan_ok_with(&object, config, &policy);
                let case = format!("{ports:?} {:?} {:?}", plan.route_kind, policy.route_owner);
                for route in &routes {
                    let backends: Vec<u64> = match route["kind"].as_str().unwrap() {
                        "HTTPRoute" => route["spec"]["rules"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|rule| rule["backendRefs"][0]["port"].as_u64().unwrap())
                            .collect(),
                        "Ingress" => route["spec"]["rules"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|rule| {
                                rule["http"]["paths"][0]["backend"]["service"]["port"]["number"]
                                    .as_u64()
                                    .unwrap()
                            })
                            .collect(),
                        other => panic!("{other}"),
                    };
                    for port in &backends {
                        assert!(
                            service_ports.contains(&(*port as u16)),
                            "{case}: backend port {port} not in {service_ports:?}"
                        );
                    }
                    if route["kind"] == "HTTPRoute" {
                        let rules = route["spec"]["rules"].as_array().unwrap();
                        match split {
                            Some((grpc, rest)) => {
                                assert_eq!(
                                    rules[0]["matches"][0]["headers"][0]["name"], "content-type",
                                    "{case}"
                                );
                                assert_eq!(
                                    (backends[0], backends[1]),
                                    (u64::from(grpc), u64::from(rest)),
                                    "{case}"
                                );
                            }
                            None => assert_eq!(backends, [80], "{case}"),
                        }
                    }
                }
                if let Some(grpc_url) = &plan.components[&ComponentKind::Predictor].grpc_url
                    && grpc_url.contains(".svc.cluster.local")
                {
                    let port: u16 = grpc_url.rsplit(':').next().unwrap().parse().unwrap();
                    assert!(service_ports.contains(&port), "{case}: {grpc_url}");
                }
            }
        }
    }
}

// 7. Only InferenceServices of serving.kserve.io/v1beta1 are planned.

/// Documents that are no `serving.kserve.io/v1beta1` InferenceService are skipped with a note
/// (as kubectl would not apply them as one), whatever they lack or name.
#[test]
fn render_plans_only_v1beta1_inference_services() {
    let spec = r#"spec: {predictor: {model: {modelFormat: {name: sklearn}}}}"#;
    let cases = [
        (
            format!("metadata: {{name: a}}\n{spec}"),
            "has no apiVersion and no kind",
        ),
        (
            format!("kind: InferenceService\nmetadata: {{name: a}}\n{spec}"),
            "is a InferenceService without apiVersion",
        ),
        (
            format!("apiVersion: serving.kserve.io/v1beta1\nmetadata: {{name: a}}\n{spec}"),
            "has apiVersion serving.kserve.io/v1beta1 but no kind",
        ),
        (
            format!(
                "apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceService\nmetadata: {{name: a}}\n{spec}"
            ),
            "is an InferenceService of apiVersion serving.kserve.io/v1alpha1",
        ),
        (
            format!(
                "apiVersion: example.com/v1\nkind: InferenceService\nmetadata: {{name: a}}\n{spec}"
            ),
            "is an InferenceService of apiVersion example.com/v1",
        ),
        (
            format!("apiVersion: v1beta1\nkind: InferenceService\nmetadata: {{name: a}}\n{spec}"),
            "is an InferenceService of apiVersion v1beta1",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}".to_string(),
            "is a ConfigMap (v1), not an InferenceService",
        ),
        (
            "- just\n- a list".to_string(),
            "is not an object (a YAML sequence)",
        ),
        ("plain text".to_string(), "is not an object (a YAML string)"),
    ];
    let valid = format!(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {{name: ok, namespace: ns}}\n{spec}"
    );
    for (document, note) in cases {
        let output = run(
            &["render", "-"],
            Some(&format!("{document}\n---\n{valid}\n")),
        );
        assert_eq!(code(&output), 0, "{document}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("note: document 1 {note}"))
                && stderr(&output).contains(": skipped"),
            "{document}: {}",
            stderr(&output)
        );
        let plans = json(&output);
        assert_eq!(plans.as_array().unwrap().len(), 1);
        assert_eq!(plans[0]["name"], "ok");
    }
    // The API server's InferenceServiceList leaves kind and apiVersion off its items.
    let list = json!({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceServiceList",
                      "items": [{"metadata": {"name": "a", "namespace": "ns"}, "spec": {"predictor": {}}}]});
    let output = run(&["render", "-"], Some(&list.to_string()));
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(json(&output)[0]["name"], "a");
    // A generic List's items must say what they are.
    let list = json!({"apiVersion": "v1", "kind": "List",
                      "items": [{"metadata": {"name": "a", "namespace": "ns"}, "spec": {"predictor": {}}}]});
    let output = run(&["render", "-"], Some(&list.to_string()));
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("has no apiVersion and no kind"));
}

/// The field cases' render results, each the right answer of its opening comment under the
/// route owner it needs.
#[test]
fn field_case_renders() {
    let render = |arguments: &[&str]| {
        let output = run(arguments, None);
        assert!(code(&output) < 2, "{}", stderr(&output));
        json(&output)
    };
    // kserve#4021 with isvc-ingress writing the VirtualService: the same shape in every namespace.
    let plans = render(&[
        "render",
        "--route-owner",
        "isvc-ingress",
        "tests/fixtures/field-cases/predictor-in-url-namespace.yaml",
    ]);
    let urls: Vec<&str> = plans
        .as_array()
        .unwrap()
        .iter()
        .map(|plan| plan["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "http://sklearn-iris.team-default.example.com",
            "http://sklearn-iris.team-a.example.com",
            "http://my-predictor-x.team-a.example.com"
        ]
    );
    // kserve#3231: the explain request on the path reaches the explainer, rewritten.
    for owner in ["kserve", "isvc-ingress"] {
        let plans = render(&[
            "render",
            "--route-owner",
            owner,
            "--config",
            "tests/fixtures/field-cases/path-explainer-knative.config.json",
            "tests/fixtures/field-cases/path-explainer-knative.yaml",
        ]);
        let http = &plans[0]["routes"][0]["spec"]["http"];
        let explain = http
            .as_array()
            .unwrap()
            .iter()
            .find(|route| route["rewrite"]["uriRegexRewrite"].is_object())
            .unwrap();
        assert_eq!(
            explain["match"][0]["uri"]["regex"],
            r"/serving/default/income(/v1/models/[\w-]+:explain)$"
        );
        assert_eq!(
            explain["headers"]["request"]["set"]["Host"],
            "income-explainer.default.svc.cluster.local"
        );
    }
    // kserve#2048/#3286/#4697: class nginx; TLS where isvc-ingress writes the Ingress; the old
    // class annotation refused.
    let plans = render(&[
        "render",
        "--route-owner",
        "isvc-ingress",
        "--config",
        "tests/fixtures/field-cases/ingress-class-tls.config.json",
        "tests/fixtures/field-cases/ingress-class-tls.yaml",
    ]);
    assert_eq!(plans[0]["routes"][0]["spec"]["ingressClassName"], "nginx");
    assert_eq!(plans[1]["url"], "https://xgb-tls-team-a.models.example.com");
    assert_eq!(
        plans[1]["routes"][0]["spec"]["tls"][0]["secretName"],
        "xgb-tls-cert"
    );
    assert_eq!(
        plans[1]["routes"][0]["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "issuer-a"
    );
    assert_eq!(plans[2]["ok"], false);
    assert_eq!(
        plans[2]["errors"][0]["field"],
        "metadata.annotations[kubernetes.io/ingress.class]"
    );
}
