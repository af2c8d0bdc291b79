//! The worked examples of reference §11 (numbered as there) and the tables §11.1 and §11.2.
//! Where isvc-ingress deliberately differs from KServe (docs/kserve-compatibility.md), the test
//! asserts our documented behaviour and says which difference applies.
//! Examples not covered here belong to the reconciler (#10, #27: live route status and CRD
//! detection) or to KServe's unreleased canary API (#26).

mod support;

use isvc_ingress::plan::{Policy, RouteKind};
use serde_json::{Value, json};
use support::*;

const LOCAL_GATEWAY: &str = "knative-serving/knative-local-gateway";
const INGRESS_GATEWAY: &str = "knative-serving/knative-ingress-gateway";
const LOCAL_GATEWAY_SERVICE: &str = "knative-local-gateway.istio-system.svc.cluster.local";

/// isvc-ingress writes the routes: our designs of docs/kserve-compatibility.md apply.
fn ours() -> Policy {
    Policy {
        route_owner: isvc_ingress::plan::RouteOwner::IsvcIngress,
        ..Policy::default()
    }
}

fn regex(host: &str) -> String {
    format!("^{}(?::\\d{{1,5}})?$", host.replace('.', "\\."))
}

fn knative() -> isvc_ingress::config::KserveConfig {
    config_with(json!({}), "Knative")
}

fn with_components(components: &[&str]) -> Value {
    let mut spec = predictor_only();
    for component in components {
        spec[component] = json!({ "containers": [{ "name": "kserve-container", "image": "x" }] });
    }
    spec
}

fn headers(target: &str, name: &str, namespace: &str) -> Value {
    json!({ "request": { "set": {
        "Host": format!("{target}.{namespace}.svc.cluster.local"),
        "KServe-Isvc-Name": name,
        "KServe-Isvc-Namespace": namespace,
    }}})
}

/// Example #1's two host matches, with an optional uri regex.
fn knative_matches(internal: &str, external: &[&str], uri: Option<&str>) -> Value {
    let mut matches = vec![json!({
        "authority": { "regex": regex(internal) },
        "gateways": [LOCAL_GATEWAY, "mesh"],
    })];
    for host in external {
        matches
            .push(json!({ "authority": { "regex": regex(host) }, "gateways": [INGRESS_GATEWAY] }));
    }
    if let Some(uri) = uri {
        for matched in &mut matches {
            matched["uri"] = json!({ "regex": uri });
        }
    }
    Value::Array(matches)
}

fn destination() -> Value {
    json!([{ "destination": { "host": LOCAL_GATEWAY_SERVICE, "port": { "number": 80 } }, "weight": 100 }])
}

#[test]
fn example_01_knative_virtual_service_predictor_only() {
    let (plan, routes) = plan_ok(&isvc_json("my-model", "test", predictor_only()), &knative());
    assert_eq!(plan.route_kind, RouteKind::VirtualService);
    assert_eq!(
        plan.url.as_deref(),
        Some("http://my-model.test.example.com")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://my-model.test.svc.cluster.local")
    );
    let virtual_service = route(&routes, "VirtualService", "my-model");
    assert_eq!(
        virtual_service["spec"]["hosts"],
        json!([
            "my-model.test.svc.cluster.local",
            "my-model.test.example.com"
        ])
    );
    assert_eq!(
        virtual_service["spec"]["gateways"],
        json!([LOCAL_GATEWAY, "mesh", INGRESS_GATEWAY])
    );
    let http = virtual_service["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 1);
    assert_eq!(
        http[0]["match"],
        knative_matches(
            "my-model.test.svc.cluster.local",
            &["my-model.test.example.com"],
            None
        )
    );
    assert_eq!(http[0]["route"], destination());
    assert_eq!(
        http[0]["headers"],
        headers("my-model-predictor", "my-model", "test")
    );
    let service = route(&routes, "Service", "my-model");
    assert_eq!(
        service["spec"],
        json!({ "type": "ExternalName", "externalName": LOCAL_GATEWAY_SERVICE, "sessionAffinity": "None" })
    );
    assert_eq!(
        virtual_service["metadata"]["ownerReferences"][0]["kind"],
        "InferenceService"
    );
}

#[test]
fn example_02_knative_transformer_takes_the_traffic() {
    let (plan, routes) = plan_ok(
        &isvc_json("my-model", "test", with_components(&["transformer"])),
        &knative(),
    );
    assert_eq!(
        plan.url.as_deref(),
        Some("http://my-model.test.example.com")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://my-model.test.svc.cluster.local")
    );
    let http = &route(&routes, "VirtualService", "my-model")["spec"]["http"];
    assert_eq!(
        http[0]["headers"],
        headers("my-model-transformer", "my-model", "test")
    );
    assert_eq!(
        plan.components[&isvc_ingress::isvc::ComponentKind::Transformer].url,
        "http://my-model-transformer.test.example.com"
    );
}

#[test]
fn example_03_knative_explainer_route_first() {
    let (_, routes) = plan_ok(
        &isvc_json("my-model", "test", with_components(&["explainer"])),
        &knative(),
    );
    let http = route(&routes, "VirtualService", "my-model")["spec"]["http"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(http.len(), 2);
    assert_eq!(
        http[0]["match"],
        knative_matches(
            "my-model.test.svc.cluster.local",
            &["my-model.test.example.com"],
            Some(r"^/v1/models/[\w-]+:explain$")
        )
    );
    assert_eq!(
        http[0]["headers"],
        headers("my-model-explainer", "my-model", "test")
    );
    assert_eq!(
        http[1]["headers"],
        headers("my-model-predictor", "my-model", "test")
    );
}

fn path_config(extra: Value) -> isvc_ingress::config::KserveConfig {
    let mut overrides = json!({
        "ingressDomain": "my-domain.com",
        "pathTemplate": "/serving/{{ .Namespace }}/{{ .Name }}",
    });
    for (key, value) in extra.as_object().unwrap() {
        overrides[key] = value.clone();
    }
    config_with(overrides, "Knative")
}

/// Examples #4–#6. Difference "Knative hosts are predicted": the top host is
/// `<name>.<ns>.<ingressDomain>` (KServe strips the host Knative reports, which in its unit test
/// used another domain).
#[test]
fn example_04_knative_path_based_routing() {
    let (plan, routes) = plan_ok(
        &isvc_json("my-model", "test", predictor_only()),
        &path_config(json!({})),
    );
    assert_eq!(
        plan.url.as_deref(),
        Some("http://my-domain.com/serving/test/my-model")
    );
    assert_eq!(plan.path.as_deref(), Some("/serving/test/my-model"));
    assert_eq!(
        plan.address.as_deref(),
        Some("http://my-model.test.svc.cluster.local")
    );
    let virtual_service = route(&routes, "VirtualService", "my-model");
    assert_eq!(
        virtual_service["spec"]["hosts"],
        json!([
            "my-model.test.svc.cluster.local",
            "my-model.test.my-domain.com",
            "my-domain.com"
        ])
    );
    let http = virtual_service["spec"]["http"].as_array().unwrap();
    assert_eq!(http.len(), 2);
    let authority = json!({ "regex": regex("my-domain.com") });
    assert_eq!(
        http[1]["match"],
        json!([
            { "uri": { "prefix": "/serving/test/my-model/" }, "authority": authority, "gateways": [INGRESS_GATEWAY] },
            { "uri": { "exact": "/serving/test/my-model" }, "authority": authority, "gateways": [INGRESS_GATEWAY] },
        ])
    );
    assert_eq!(http[1]["rewrite"], json!({ "uri": "/" }));
    assert_eq!(
        http[1]["headers"],
        headers("my-model-predictor", "my-model", "test")
    );
}

#[test]
fn example_05_knative_path_based_explainer() {
    let (_, routes) = plan_ok(
        &isvc_json("my-model", "test", with_components(&["explainer"])),
        &path_config(json!({})),
    );
    let http = route(&routes, "VirtualService", "my-model")["spec"]["http"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(http.len(), 4);
    let explain_regex = r"/serving/test/my-model(/v1/models/[\w-]+:explain)$";
    assert_eq!(
        http[2]["match"],
        json!([{ "uri": { "regex": explain_regex }, "authority": { "regex": regex("my-domain.com") }, "gateways": [INGRESS_GATEWAY] }])
    );
    assert_eq!(
        http[2]["rewrite"],
        json!({ "uriRegexRewrite": { "match": explain_regex, "rewrite": "\\1" } })
    );
    assert_eq!(
        http[2]["headers"],
        headers("my-model-explainer", "my-model", "test")
    );
    assert_eq!(
        http[3]["headers"],
        headers("my-model-predictor", "my-model", "test")
    );
}

#[test]
fn example_06_knative_additional_domains_deduplicated() {
    let config = path_config(json!({
        "additionalIngressDomains": ["my-additional-domain.com", "my-second-additional-domain.com", "my-additional-domain.com"],
    }));
    let (plan, routes) = plan_ok(&isvc_json("my-model", "test", predictor_only()), &config);
    let virtual_service = route(&routes, "VirtualService", "my-model");
    assert_eq!(
        virtual_service["spec"]["hosts"],
        json!([
            "my-model.test.svc.cluster.local",
            "my-model.test.my-domain.com",
            "my-domain.com",
            "my-model.test.my-additional-domain.com",
            "my-model.test.my-second-additional-domain.com",
        ])
    );
    assert_eq!(
        virtual_service["spec"]["http"][0]["match"],
        knative_matches(
            "my-model.test.svc.cluster.local",
            &[
                "my-model.test.my-domain.com",
                "my-model.test.my-additional-domain.com",
                "my-model.test.my-second-additional-domain.com"
            ],
            None
        )
    );
    assert_eq!(plan.hosts.len(), 3);
}

#[test]
fn example_07_knative_cluster_local() {
    let mut object = isvc_json("my-model", "test", predictor_only());
    object["metadata"]["labels"] = json!({ "networking.knative.dev/visibility": "cluster-local" });
    let (plan, routes) = plan_ok(&object, &knative());
    assert_eq!(
        plan.url.as_deref(),
        Some("http://my-model.test.svc.cluster.local")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://my-model.test.svc.cluster.local")
    );
    assert!(plan.hosts.is_empty());
    let virtual_service = route(&routes, "VirtualService", "my-model");
    assert_eq!(
        virtual_service["spec"]["hosts"],
        json!(["my-model.test.svc.cluster.local"])
    );
    assert_eq!(
        virtual_service["spec"]["gateways"],
        json!([LOCAL_GATEWAY, "mesh"])
    );
    assert_eq!(
        virtual_service["spec"]["http"][0]["match"],
        knative_matches("my-model.test.svc.cluster.local", &[], None)
    );
    // KServe copies every ISVC label to its VirtualService (§4.2); with isvc-ingress writing it,
    // the KServe-level disallow list keeps the Knative visibility label off the route.
    assert_eq!(
        virtual_service["metadata"]["labels"]["networking.knative.dev/visibility"],
        "cluster-local"
    );
    let (_, routes) = plan_ok_with(&object, &knative(), &ours());
    assert!(
        route(&routes, "VirtualService", "my-model")["metadata"]["labels"]
            .get("networking.knative.dev/visibility")
            .is_none()
    );
}

/// Difference "Q4": KServe still adds `ingressDomain` and path routes to a cluster-local
/// VirtualService; here a cluster-local ISVC has no path.
#[test]
fn example_07_cluster_local_gets_no_path_routes() {
    let mut object = isvc_json("my-model", "test", predictor_only());
    object["metadata"]["labels"] = json!({ "networking.knative.dev/visibility": "cluster-local" });
    let (plan, routes) = plan_ok(&object, &path_config(json!({})));
    assert_eq!(plan.path, None);
    let virtual_service = route(&routes, "VirtualService", "my-model");
    assert_eq!(
        virtual_service["spec"]["hosts"],
        json!(["my-model.test.svc.cluster.local"])
    );
    assert_eq!(virtual_service["spec"]["http"].as_array().unwrap().len(), 1);
}

#[test]
fn example_08_knative_without_istio_virtual_host() {
    let config = config_with(json!({ "disableIstioVirtualHost": true }), "Knative");
    let (plan, routes) = plan_ok(&isvc_json("my-model", "test", predictor_only()), &config);
    assert_eq!(plan.route_kind, RouteKind::None);
    assert!(routes.is_empty());
    assert_eq!(
        plan.url.as_deref(),
        Some("http://my-model-predictor.test.example.com")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://my-model-predictor.test.svc.cluster.local")
    );
    let (plan, _) = plan_ok(
        &isvc_json("my-model", "test", with_components(&["transformer"])),
        &config,
    );
    assert_eq!(
        plan.url.as_deref(),
        Some("http://my-model-transformer.test.example.com")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://my-model-transformer.test.svc.cluster.local")
    );
}

/// Examples #9 and #28 (differences "Q1", "Q2"): KServe cuts the VirtualService host out of the
/// Knative host, mangling names and namespaces that contain `-default` or `-predictor`; with
/// `--route-owner kserve` that is the host served (and a warning says so), with
/// `--route-owner isvc-ingress` the host stays intact.
#[test]
fn examples_09_and_28_knative_hosts_are_never_mangled() {
    let cases = [
        (
            "kftest",
            "user1",
            "http://kftest.user1.example.com",
            "http://kftest.user1.example.com",
        ),
        (
            "m",
            "team-default",
            "http://m-predictor.team-default.example.com",
            "http://m.team-default.example.com",
        ),
        (
            "m",
            "default",
            "http://m.default.example.com",
            "http://m.default.example.com",
        ),
        (
            "my-predictor-x",
            "ns",
            "http://my-x-predictor.ns.example.com",
            "http://my-predictor-x.ns.example.com",
        ),
    ];
    for (name, namespace, kserve_url, our_url) in cases {
        let object = isvc_json(name, namespace, predictor_only());
        for (policy, url) in [(Policy::default(), kserve_url), (ours(), our_url)] {
            let (plan, routes) = plan_ok_with(&object, &knative(), &policy);
            assert_eq!(plan.url.as_deref(), Some(url), "{name}/{namespace}");
            let external = url.trim_start_matches("http://");
            assert_eq!(
                route(&routes, "VirtualService", name)["spec"]["hosts"][1],
                external
            );
            let warned = plan
                .warnings
                .iter()
                .any(|warning| warning.contains("Q1, Q2"));
            assert_eq!(warned, url != our_url, "{name}/{namespace}");
        }
    }
}

fn gateway_api(extra: Value) -> isvc_ingress::config::KserveConfig {
    let mut overrides =
        json!({ "enableGatewayApi": true, "additionalIngressDomains": ["additional.example.com"] });
    for (key, value) in extra.as_object().unwrap() {
        overrides[key] = value.clone();
    }
    config_with(overrides, "Standard")
}

fn catch_all_rule(name: &str, namespace: &str, service: &str, timeout: &str) -> Value {
    json!({
        "matches": [{ "path": { "type": "RegularExpression", "value": "^/.*$" } }],
        "filters": [{ "type": "RequestHeaderModifier", "requestHeaderModifier": { "set": [
            { "name": "KServe-Isvc-Name", "value": name },
            { "name": "KServe-Isvc-Namespace", "value": namespace },
        ]}}],
        "backendRefs": [{ "kind": "Service", "name": service, "namespace": namespace, "port": 80 }],
        "timeouts": { "request": timeout },
    })
}

#[test]
fn example_11_standard_httproute() {
    let spec = json!({ "predictor": { "timeout": 30, "model": { "modelFormat": { "name": "sklearn" } } } });
    let (plan, routes) = plan_ok(
        &isvc_json("raw-foo", "default", spec),
        &gateway_api(json!({})),
    );
    assert_eq!(plan.route_kind, RouteKind::HttpRoute);
    assert_eq!(
        plan.url.as_deref(),
        Some("http://raw-foo-default.example.com")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://raw-foo-predictor.default.svc.cluster.local")
    );
    assert_eq!(
        plan.components[&isvc_ingress::isvc::ComponentKind::Predictor].url,
        "http://raw-foo-predictor-default.example.com"
    );
    let top = route(&routes, "HTTPRoute", "raw-foo");
    assert_eq!(
        top["spec"]["hostnames"],
        json!([
            "raw-foo-default.example.com",
            "raw-foo-default.additional.example.com"
        ])
    );
    assert_eq!(
        top["spec"]["parentRefs"],
        json!([{ "group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "kserve", "name": "kserve-ingress-gateway" }])
    );
    assert_eq!(
        top["spec"]["rules"],
        json!([catch_all_rule(
            "raw-foo",
            "default",
            "raw-foo-predictor",
            "30s"
        )])
    );
    let predictor = route(&routes, "HTTPRoute", "raw-foo-predictor");
    assert_eq!(
        predictor["spec"]["hostnames"],
        json!(["raw-foo-predictor-default.example.com"])
    );
    assert_eq!(predictor["spec"]["rules"], top["spec"]["rules"]);
    assert_eq!(routes.len(), 2);
    assert_eq!(
        routes.last().unwrap()["metadata"]["name"],
        "raw-foo",
        "component routes come first"
    );
}

#[test]
fn example_12_standard_dotted_domain_template() {
    let config = gateway_api(
        json!({ "domainTemplate": "{{ .Name }}.{{ .Namespace }}.{{ .IngressDomain }}" }),
    );
    let (plan, routes) = plan_ok(&isvc_json("model", "default", predictor_only()), &config);
    assert_eq!(
        plan.url.as_deref(),
        Some("http://model.default.example.com")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://model-predictor.default.svc.cluster.local")
    );
    let top = route(&routes, "HTTPRoute", "model");
    assert_eq!(
        top["spec"]["hostnames"],
        json!([
            "model.default.example.com",
            "model.default.additional.example.com"
        ])
    );
    assert_eq!(top["spec"]["rules"][0]["timeouts"]["request"], "60s");
    assert_eq!(
        route(&routes, "HTTPRoute", "model-predictor")["spec"]["hostnames"],
        json!(["model-predictor.default.example.com"])
    );
    assert_eq!(
        plan.components[&isvc_ingress::isvc::ComponentKind::Predictor].url,
        "http://model-predictor.default.example.com"
    );
}

#[test]
fn example_13_standard_httproute_with_transformer() {
    let spec = json!({
        "predictor": { "model": { "modelFormat": { "name": "sklearn" } } },
        "transformer": { "timeout": 30, "containers": [{ "name": "t", "image": "x" }] },
    });
    let (plan, routes) = plan_ok(
        &isvc_json("raw-foo-trans", "default", spec),
        &gateway_api(json!({})),
    );
    assert_eq!(
        plan.url.as_deref(),
        Some("http://raw-foo-trans-default.example.com")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://raw-foo-trans-transformer.default.svc.cluster.local")
    );
    let name = "raw-foo-trans";
    assert_eq!(
        route(&routes, "HTTPRoute", name)["spec"]["rules"],
        json!([catch_all_rule(
            name,
            "default",
            "raw-foo-trans-transformer",
            "30s"
        )])
    );
    let predictor = route(&routes, "HTTPRoute", "raw-foo-trans-predictor");
    assert_eq!(
        predictor["spec"]["hostnames"],
        json!(["raw-foo-trans-predictor-default.example.com"])
    );
    assert_eq!(
        predictor["spec"]["rules"],
        json!([catch_all_rule(
            name,
            "default",
            "raw-foo-trans-predictor",
            "60s"
        )])
    );
    let transformer = route(&routes, "HTTPRoute", "raw-foo-trans-transformer");
    assert_eq!(
        transformer["spec"]["hostnames"],
        json!(["raw-foo-trans-transformer-default.example.com"])
    );
    assert_eq!(
        transformer["spec"]["rules"][0]["timeouts"]["request"],
        "30s"
    );
    assert_eq!(
        plan.components[&isvc_ingress::isvc::ComponentKind::Transformer].url,
        "http://raw-foo-trans-transformer-default.example.com"
    );
}

/// Example #14: with `--route-owner kserve`, KServe's routes (the shared host and an
/// unrewritten path rule on the top-level route, host-based URL); with `--route-owner
/// isvc-ingress`, differences "Q6" and "Q12": the path-based URL is published, and the shared
/// host gets its own route with an anchored prefix and a rewrite.
#[test]
fn example_14_standard_path_based_routing() {
    let config = gateway_api(json!({ "pathTemplate": "/serving/{{ .Namespace }}/{{ .Name }}" }));
    let object = isvc_json("raw-foo-path", "default", predictor_only());
    let (plan, routes) = plan_ok(&object, &config);
    assert_eq!(
        plan.url.as_deref(),
        Some("http://raw-foo-path-default.example.com")
    );
    assert!(
        plan.warnings
            .iter()
            .any(|warning| warning.contains("without rewriting"))
    );
    assert_eq!(routes.len(), 2, "predictor and top-level routes");
    let top = route(&routes, "HTTPRoute", "raw-foo-path");
    assert_eq!(
        top["spec"]["hostnames"],
        json!([
            "raw-foo-path-default.example.com",
            "raw-foo-path-default.additional.example.com",
            "example.com"
        ])
    );
    let rules = top["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules[1]["matches"],
        json!([{ "path": { "type": "RegularExpression", "value": "/serving/default/raw-foo-path/" } }])
    );
    assert_eq!(
        rules[1]["filters"].as_array().unwrap().len(),
        1,
        "no rewrite"
    );
    assert_eq!(rules[1]["backendRefs"][0]["name"], "raw-foo-path-predictor");

    let (plan, routes) = plan_ok_with(&object, &config, &ours());
    assert_eq!(
        plan.url.as_deref(),
        Some("http://example.com/serving/default/raw-foo-path")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://raw-foo-path-predictor.default.svc.cluster.local")
    );
    let top = route(&routes, "HTTPRoute", "raw-foo-path");
    assert_eq!(
        top["spec"]["hostnames"],
        json!([
            "raw-foo-path-default.example.com",
            "raw-foo-path-default.additional.example.com"
        ])
    );
    let path = route(&routes, "HTTPRoute", "raw-foo-path-path");
    assert_eq!(path["spec"]["hostnames"], json!(["example.com"]));
    let rule = &path["spec"]["rules"][0];
    assert_eq!(
        rule["matches"],
        json!([{ "path": { "type": "PathPrefix", "value": "/serving/default/raw-foo-path" } }])
    );
    assert_eq!(
        rule["filters"][1],
        json!({ "type": "URLRewrite", "urlRewrite": { "path": { "type": "ReplacePrefixMatch", "replacePrefixMatch": "/" } } })
    );
    assert_eq!(rule["backendRefs"][0]["name"], "raw-foo-path-predictor");
}

/// Example #15: KServe's four top-level rules with `--route-owner kserve`; with
/// `--route-owner isvc-ingress`, two, and the separate path route.
#[test]
fn example_15_standard_explainer_with_path_and_custom_gateway() {
    let config = gateway_api(json!({
        "pathTemplate": "/serving/{{ .Namespace }}/{{ .Name }}",
        "kserveIngressGateway": "kserve/kserve-gateway",
    }));
    let object = isvc_json("test-isvc", "default", with_components(&["explainer"]));
    let (_, routes) = plan_ok(&object, &config);
    let top = route(&routes, "HTTPRoute", "test-isvc");
    let values: Vec<&str> = top["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["matches"][0]["path"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        values,
        [
            r"^/v1/models/[\w-]+:explain$",
            "^/.*$",
            r"/serving/default/test-isvc(/v1/models/[\w-]+:explain)$",
            "/serving/default/test-isvc/"
        ]
    );
    let backends: Vec<&str> = top["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["backendRefs"][0]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        backends,
        [
            "test-isvc-explainer",
            "test-isvc-predictor",
            "test-isvc-explainer",
            "test-isvc-predictor"
        ]
    );
    assert_eq!(
        top["spec"]["hostnames"],
        json!([
            "test-isvc-default.example.com",
            "test-isvc-default.additional.example.com",
            "example.com"
        ])
    );
    assert_eq!(routes.len(), 3, "predictor, explainer and top-level routes");

    let (_, routes) = plan_ok_with(&object, &config, &ours());
    let top = route(&routes, "HTTPRoute", "test-isvc");
    let rules = top["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules[0]["matches"][0]["path"]["value"],
        r"^/v1/models/[\w-]+:explain$"
    );
    assert_eq!(rules[0]["backendRefs"][0]["name"], "test-isvc-explainer");
    assert_eq!(rules[0]["timeouts"]["request"], "60s");
    assert_eq!(rules[1]["backendRefs"][0]["name"], "test-isvc-predictor");
    assert_eq!(top["spec"]["parentRefs"][0]["namespace"], "kserve");
    assert_eq!(top["spec"]["parentRefs"][0]["name"], "kserve-gateway");
    let path = route(&routes, "HTTPRoute", "test-isvc-path");
    assert_eq!(
        path["spec"]["rules"][0]["backendRefs"][0]["name"],
        "test-isvc-predictor"
    );
    assert_eq!(
        routes.len(),
        4,
        "predictor, explainer, top-level and path routes"
    );
}

fn ingress_rule(host: &str, service: &str) -> Value {
    json!({ "host": host, "http": { "paths": [{ "path": "/", "pathType": "Prefix",
        "backend": { "service": { "name": service, "port": { "number": 80 } } } }] } })
}

#[test]
fn example_16_standard_ingress() {
    let config = config_with(json!({}), "Standard");
    let (plan, routes) = plan_ok(&isvc_json("raw-foo", "default", predictor_only()), &config);
    assert_eq!(plan.route_kind, RouteKind::Ingress);
    assert_eq!(
        plan.url.as_deref(),
        Some("http://raw-foo-default.example.com")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://raw-foo-predictor.default.svc.cluster.local")
    );
    let ingress = route(&routes, "Ingress", "raw-foo");
    assert_eq!(
        ingress["spec"],
        json!({ "rules": [
            ingress_rule("raw-foo-default.example.com", "raw-foo-predictor"),
            ingress_rule("raw-foo-predictor-default.example.com", "raw-foo-predictor"),
        ]})
    );
}

/// Example #17 as KServe writes it (`--route-owner kserve`, quirk Q3 included); difference
/// "Q3" with `--route-owner isvc-ingress`: each component host reaches its own component.
#[test]
fn example_17_standard_ingress_transformer_and_explainer() {
    let config = config_with(json!({ "ingressClassName": "nginx" }), "Standard");
    let object = isvc_json("m", "ns1", with_components(&["transformer", "explainer"]));
    let (_, routes) = plan_ok(&object, &config);
    assert_eq!(
        route(&routes, "Ingress", "m")["spec"]["rules"],
        json!([
            ingress_rule("m-transformer-ns1.example.com", "m-explainer"),
            ingress_rule("m-ns1.example.com", "m-transformer"),
            ingress_rule("m-transformer-ns1.example.com", "m-predictor"),
            ingress_rule("m-predictor-ns1.example.com", "m-predictor"),
        ])
    );
    let (plan, routes) = plan_ok_with(&object, &config, &ours());
    assert_eq!(plan.url.as_deref(), Some("http://m-ns1.example.com"));
    assert_eq!(
        plan.address.as_deref(),
        Some("http://m-transformer.ns1.svc.cluster.local")
    );
    let ingress = route(&routes, "Ingress", "m");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ingress["spec"]["rules"],
        json!([
            ingress_rule("m-ns1.example.com", "m-transformer"),
            ingress_rule("m-explainer-ns1.example.com", "m-explainer"),
            ingress_rule("m-transformer-ns1.example.com", "m-transformer"),
            ingress_rule("m-predictor-ns1.example.com", "m-predictor"),
        ])
    );
}

/// Difference "Q13": a cluster-local ISVC publishes its cluster-local address as its URL.
#[test]
fn example_18_standard_cluster_local() {
    let mut object = isvc_json("test-isvc", "default", predictor_only());
    object["metadata"]["labels"] = json!({ "networking.kserve.io/visibility": "cluster-local" });
    for config in [config_with(json!({}), "Standard"), gateway_api(json!({}))] {
        let (plan, routes) = plan_ok(&object, &config);
        assert_eq!(plan.route_kind, RouteKind::None);
        assert!(routes.is_empty() && plan.hosts.is_empty());
        assert_eq!(
            plan.url.as_deref(),
            Some("http://test-isvc-predictor.default.svc.cluster.local")
        );
        assert_eq!(plan.address, plan.url);
    }
}

#[test]
fn example_19_standard_headless_services_and_https() {
    let ingress = {
        let mut ingress = reference_ingress();
        ingress["disableIngressCreation"] = json!(true);
        ingress["urlScheme"] = json!("https");
        ingress
    };
    let config = config_from_keys(
        &ingress,
        "Standard",
        Some(json!({ "serviceClusterIPNone": true })),
    );
    let (plan, routes) = plan_ok(
        &isvc_json("test-isvc", "default", predictor_only()),
        &config,
    );
    assert!(routes.is_empty());
    assert_eq!(
        plan.url.as_deref(),
        Some("https://test-isvc-default.example.com")
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://test-isvc-predictor.default.svc.cluster.local:8080")
    );
    let spec = json!({ "predictor": { "containers": [{ "name": "c", "image": "x",
        "ports": [{ "name": "grpc", "containerPort": 9000 }, { "containerPort": 8888 }] }] } });
    let (plan, _) = plan_ok(&isvc_json("test-isvc", "default", spec), &config);
    assert_eq!(
        plan.address.as_deref(),
        Some("http://test-isvc-predictor.default.svc.cluster.local:8888")
    );
}

#[test]
fn example_20_standard_transformer_address() {
    let config = config_with(json!({}), "Standard");
    let (plan, _) = plan_ok(
        &isvc_json("test-isvc", "default", with_components(&["transformer"])),
        &config,
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://test-isvc-transformer.default.svc.cluster.local")
    );
}

#[test]
fn example_21_empty_domain_template_takes_the_default() {
    let config = config_with(json!({ "domainTemplate": "" }), "Standard");
    let (plan, _) = plan_ok(
        &isvc_json("test-isvc", "default", predictor_only()),
        &config,
    );
    assert_eq!(
        plan.url.as_deref(),
        Some("http://test-isvc-default.example.com")
    );
}

#[test]
fn example_22_domain_template_reads_annotations_and_labels() {
    let cases = [
        (
            "{{ .Name }}.{{ .Namespace }}.{{ .Annotations.annotation }}.{{ .IngressDomain }}",
            "annotations",
            "annotation",
            "annotation-value",
        ),
        (
            "{{ .Name }}.{{ .Namespace }}.{{ .Labels.label }}.{{ .IngressDomain }}",
            "labels",
            "label",
            "label-value",
        ),
    ];
    for (template, map, key, value) in cases {
        let config = config_with(json!({ "domainTemplate": template }), "Standard");
        let mut object = isvc_json("model", "test", predictor_only());
        object["metadata"][map] = json!({ key: value });
        let (plan, _) = plan_ok(&object, &config);
        assert_eq!(
            plan.url,
            Some(format!("http://model.test.{value}.example.com"))
        );
        // Without the key, the error names it (KServe renders "<no value>").
        let rejection = plan_err(
            &isvc_json("model", "test", predictor_only()),
            &config,
            &Policy::default(),
        );
        assert_eq!(
            rejection.violations[0].field,
            format!("metadata.{map}[{key}]")
        );
        assert!(
            rejection.violations[0]
                .message
                .contains(&format!("\"{key}\""))
        );
    }
}

#[test]
fn example_24_long_names_are_refused_with_the_excess() {
    let config = config_with(json!({}), "Standard");
    let object = isvc_json(
        "t-44e43bb2",
        "this-is-a-long-project-name-with-40-characters",
        predictor_only(),
    );
    let rejection = plan_err(&object, &config, &Policy::default());
    assert_eq!(rejection.violations.len(), 1);
    assert_eq!(rejection.violations[0].field, "metadata.name");
    assert!(
        rejection.violations[0].message.contains(
            "label \"t-44e43bb2-predictor-this-is-a-long-project-name-with-40-characters\" is 67 characters, 4 over the limit of 63"
        ),
        "{}",
        rejection.violations[0].message
    );
}

#[test]
fn example_25_dual_protocol_rules() {
    let spec = json!({ "predictor": { "model": { "modelFormat": { "name": "x" },
        "ports": [{ "name": "http", "containerPort": 8080 }, { "name": "grpc", "containerPort": 9000 }] } } });
    let (plan, routes) = plan_ok(&isvc_json("m", "ns", spec), &gateway_api(json!({})));
    for name in ["m", "m-predictor"] {
        let rules = route(&routes, "HTTPRoute", name)["spec"]["rules"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(rules.len(), 2, "{name}");
        assert_eq!(
            rules[0]["matches"],
            json!([{ "path": { "type": "RegularExpression", "value": r"^/inference\.GRPCInferenceService/.*$" },
                     "headers": [{ "type": "RegularExpression", "name": "content-type", "value": "^application/grpc.*" }] }])
        );
        assert_eq!(rules[0]["backendRefs"][0]["port"], 9000);
        assert_eq!(rules[1]["matches"][0]["path"]["value"], "^/.*$");
        assert_eq!(rules[1]["backendRefs"][0]["port"], 80);
    }
    let predictor = &plan.components[&isvc_ingress::isvc::ComponentKind::Predictor];
    assert_eq!(
        predictor.grpc_url.as_deref(),
        Some("grpc://m-predictor-ns.example.com:80")
    );
    assert_eq!(predictor.rest_url, "http://m-predictor-ns.example.com");
}

/// §11.1, with the domain list `[ingressDomain]` that isvc-ingress uses. Invalid additional
/// domains are a config violation (tests/config_validation.rs) instead of being skipped.
#[test]
fn table_11_1_additional_hosts() {
    let cases: [(Value, &[&str]); 5] = [
        (json!(null), &[]),
        (json!([]), &[]),
        (json!(["secondary.com"]), &["model-test.secondary.com"]),
        (
            json!(["secondary.com", "tertiary.com"]),
            &["model-test.secondary.com", "model-test.tertiary.com"],
        ),
        (
            json!(["secondary.com", "secondary.com", "tertiary.com"]),
            &["model-test.secondary.com", "model-test.tertiary.com"],
        ),
    ];
    for (additional, expected) in cases {
        let config = gateway_api(json!({ "additionalIngressDomains": additional }));
        let (plan, _) = plan_ok(&isvc_json("model", "test", predictor_only()), &config);
        let mut hosts = vec!["model-test.example.com"];
        hosts.extend_from_slice(expected);
        assert_eq!(plan.hosts, hosts, "{additional}");
    }
    // A top-level host outside ingressDomain (the "domain list does not match" rows) gets none.
    let mut object = isvc_json("model", "test", predictor_only());
    object["metadata"]["annotations"] = json!({ "isvc-ingress.io/host": "model.other.com" });
    let policy = Policy {
        allowed_domains: vec!["other.com".into()],
        ..ours()
    };
    let config = gateway_api(json!({ "additionalIngressDomains": ["secondary.com"] }));
    let (plan, _) = plan_ok_with(&object, &config, &policy);
    assert_eq!(plan.hosts, ["model.other.com"]);
}

#[test]
fn table_11_2_timeouts() {
    let cases = [
        (false, None, Some("60s")),
        (false, Some(120), Some("120s")),
        (true, None, None),
        (true, Some(120), None),
    ];
    for (disabled, seconds, expected) in cases {
        let config = gateway_api(json!({ "disableHTTPRouteTimeout": disabled }));
        let mut spec = predictor_only();
        if let Some(seconds) = seconds {
            spec["predictor"]["timeout"] = json!(seconds);
        }
        let (_, routes) = plan_ok(&isvc_json("m", "ns", spec), &config);
        for route in &routes {
            let timeouts = route["spec"]["rules"][0].get("timeouts");
            assert_eq!(
                timeouts.map(|t| t["request"].as_str().unwrap()),
                expected,
                "{disabled} {seconds:?}"
            );
        }
    }
}
