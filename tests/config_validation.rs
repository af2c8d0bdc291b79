//! Every KServe config error of reference §1.3–1.4 and every stricter check, one case each,
//! plus loading rules (defaults, shipped fallbacks, Go-compatible parsing).

use isvc_ingress::config::{ConfigError, DeploymentMode, KserveConfig};
use std::collections::BTreeMap;

const GOOD_INGRESS: &str = r#""ingressGateway": "knative-serving/knative-ingress-gateway""#;

/// A ConfigMap with these `ingress` and `deploy` texts.
fn config_map(ingress: &str, deploy: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ingress".to_string(), ingress.to_string()),
        ("deploy".to_string(), deploy.to_string()),
    ])
}

fn violations(ingress: &str, deploy: &str) -> Vec<(String, String)> {
    match KserveConfig::from_config_map_data(&config_map(ingress, deploy)) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid { violations, .. }) => violations
            .into_iter()
            .map(|violation| (violation.field, violation.message))
            .collect(),
        Err(other) => panic!("unexpected {other}"),
    }
}

const DEPLOY: &str = r#"{"defaultDeploymentMode": "Standard"}"#;

#[test]
fn each_violation_is_reported_with_its_field() {
    // (case, ingress JSON, deploy JSON, field, message fragment)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // KServe's own errors (§1.3, §1.4).
        (
            "invalid json",
            "{not json",
            DEPLOY,
            "config.ingress",
            "unable to parse ingress config json",
        ),
        (
            "gateway api without kserveIngressGateway",
            r#"{"enableGatewayApi": true, "ingressGateway": "a/b"}"#,
            DEPLOY,
            "config.ingress.kserveIngressGateway",
            "is required when enableGatewayApi is true",
        ),
        (
            "kserveIngressGateway format",
            r#"{"enableGatewayApi": true, "kserveIngressGateway": "invalid-format", "ingressGateway": "a/b"}"#,
            DEPLOY,
            "config.ingress.kserveIngressGateway",
            "must be in the format <namespace>/<name>",
        ),
        (
            "kserveIngressGateway namespace",
            r#"{"enableGatewayApi": true, "kserveIngressGateway": "invalid_namespace/kserve-ingress-gateway", "ingressGateway": "a/b"}"#,
            DEPLOY,
            "config.ingress.kserveIngressGateway",
            "gateway namespace is invalid",
        ),
        (
            "kserveIngressGateway name",
            r#"{"enableGatewayApi": true, "kserveIngressGateway": "kserve/invalid_name", "ingressGateway": "a/b"}"#,
            DEPLOY,
            "config.ingress.kserveIngressGateway",
            "gateway name is invalid",
        ),
        (
            "missing ingressGateway",
            r#"{"ingressDomain": "example.com"}"#,
            DEPLOY,
            "config.ingress.ingressGateway",
            "is required",
        ),
        (
            "unparsable pathTemplate",
            r#"{"ingressGateway": "a/b", "ingressDomain": "example.com", "pathTemplate": "{{ .Name }"}"#,
            DEPLOY,
            "config.ingress.pathTemplate",
            "does not parse: column 1: unclosed action",
        ),
        (
            "pathTemplate without ingressDomain",
            r#"{"ingressGateway": "a/b", "pathTemplate": "/serving/{{ .Name }}"}"#,
            DEPLOY,
            "config.ingress.ingressDomain",
            "is required if pathTemplate is given",
        ),
        (
            "invalid deploy json",
            &format!("{{{GOOD_INGRESS}}}"),
            "{",
            "config.deploy",
            "unable to parse deploy config json",
        ),
        (
            "missing defaultDeploymentMode",
            &format!("{{{GOOD_INGRESS}}}"),
            "{}",
            "config.deploy.defaultDeploymentMode",
            "is required",
        ),
        (
            "unknown deployment mode",
            &format!("{{{GOOD_INGRESS}}}"),
            r#"{"defaultDeploymentMode": "Serverful"}"#,
            "config.deploy.defaultDeploymentMode",
            "must be Knative, Standard or ModelMesh",
        ),
        // What KServe should reject but does not.
        (
            "domainTemplate does not parse",
            r#"{"ingressGateway": "a/b", "domainTemplate": "{{ .Name }-{{ .Namespace }}.{{ .IngressDomain }}"}"#,
            DEPLOY,
            "config.ingress.domainTemplate",
            "does not parse: column 1",
        ),
        (
            "domainTemplate unknown field",
            r#"{"ingressGateway": "a/b", "domainTemplate": "{{ .ModelName }}.{{ .IngressDomain }}"}"#,
            DEPLOY,
            "config.ingress.domainTemplate",
            "unknown field .ModelName",
        ),
        (
            "domainTemplate invalid host",
            r#"{"ingressGateway": "a/b", "domainTemplate": "{{ .Name }}_{{ .Namespace }}_{{ .IngressDomain }}"}"#,
            DEPLOY,
            "config.ingress.domainTemplate",
            "renders the invalid host \"model_default_example.com\"",
        ),
        (
            "domainTemplate single label",
            r#"{"ingressGateway": "a/b", "domainTemplate": "{{ .Name }}"}"#,
            DEPLOY,
            "config.ingress.domainTemplate",
            "at least two labels",
        ),
        (
            "pathTemplate not absolute",
            r#"{"ingressGateway": "a/b", "ingressDomain": "example.com", "pathTemplate": "myhost/serving/{{ .Name }}"}"#,
            DEPLOY,
            "config.ingress.pathTemplate",
            "is not an absolute path",
        ),
        (
            "pathTemplate with scheme",
            r#"{"ingressGateway": "a/b", "ingressDomain": "example.com", "pathTemplate": "http://myhost/serving/{{ .Name }}"}"#,
            DEPLOY,
            "config.ingress.pathTemplate",
            "is not an absolute path",
        ),
        (
            "pathTemplate with host",
            r#"{"ingressGateway": "a/b", "ingressDomain": "example.com", "pathTemplate": "//myhost/serving/{{ .Name }}"}"#,
            DEPLOY,
            "config.ingress.pathTemplate",
            "names a host",
        ),
        (
            "pathTemplate with query",
            r#"{"ingressGateway": "a/b", "ingressDomain": "example.com", "pathTemplate": "/serving/{{ .Name }}?x=1"}"#,
            DEPLOY,
            "config.ingress.pathTemplate",
            "query or fragment",
        ),
        (
            "pathTemplate claiming the whole host",
            r#"{"ingressGateway": "a/b", "ingressDomain": "example.com", "pathTemplate": "/"}"#,
            DEPLOY,
            "config.ingress.pathTemplate",
            "is / alone",
        ),
        (
            "pathTemplate reading a label",
            r#"{"ingressGateway": "a/b", "ingressDomain": "example.com", "pathTemplate": "/{{ .Labels.team }}/{{ .Name }}"}"#,
            DEPLOY,
            "config.ingress.pathTemplate",
            "can read only .Name and .Namespace",
        ),
        (
            "urlScheme",
            r#"{"ingressGateway": "a/b", "urlScheme": "ftp"}"#,
            DEPLOY,
            "config.ingress.urlScheme",
            "must be http or https, found \"ftp\"",
        ),
        (
            "ingressDomain",
            r#"{"ingressGateway": "a/b", "ingressDomain": "Example.COM"}"#,
            DEPLOY,
            "config.ingress.ingressDomain",
            "is not a valid domain",
        ),
        (
            "additionalIngressDomains entry",
            r#"{"ingressGateway": "a/b", "additionalIngressDomains": ["ok.example.org", "invalid_domain"]}"#,
            DEPLOY,
            "config.ingress.additionalIngressDomains[1]",
            "\"invalid_domain\" is not a valid domain",
        ),
        (
            "ingressGateway format",
            r#"{"ingressGateway": "knative-ingress-gateway"}"#,
            DEPLOY,
            "config.ingress.ingressGateway",
            "must be in the format <namespace>/<name>",
        ),
        (
            "localGateway name",
            r#"{"ingressGateway": "a/b", "localGateway": "knative-serving/Local"}"#,
            DEPLOY,
            "config.ingress.localGateway",
            "gateway name is invalid",
        ),
        (
            "ingressClassName",
            r#"{"ingressGateway": "a/b", "ingressClassName": "Nginx Public"}"#,
            DEPLOY,
            "config.ingress.ingressClassName",
            "is not a valid IngressClass name",
        ),
        (
            "localGatewayService",
            r#"{"ingressGateway": "a/b", "localGatewayService": "knative_local"}"#,
            DEPLOY,
            "config.ingress.localGatewayService",
            "is not a valid service host",
        ),
        (
            "knativeLocalGatewayService",
            r#"{"ingressGateway": "a/b", "knativeLocalGatewayService": "-x.svc"}"#,
            DEPLOY,
            "config.ingress.knativeLocalGatewayService",
            "is not a valid service host",
        ),
        (
            "boolean given as string",
            r#"{"ingressGateway": "a/b", "enableGatewayApi": "true"}"#,
            DEPLOY,
            "config.ingress.enableGatewayApi",
            "must be a boolean, found a string",
        ),
        (
            "string given as number",
            r#"{"ingressGateway": 7}"#,
            DEPLOY,
            "config.ingress.ingressGateway",
            "must be a string, found a number",
        ),
        (
            "list given as string",
            r#"{"ingressGateway": "a/b", "additionalIngressDomains": "x.com"}"#,
            DEPLOY,
            "config.ingress.additionalIngressDomains",
            "must be an array of strings",
        ),
        (
            "ingress not an object",
            "[]",
            DEPLOY,
            "config.ingress",
            "must be a JSON object, found an array",
        ),
        (
            "rollout maxSurge",
            &format!("{{{GOOD_INGRESS}}}"),
            r#"{"defaultDeploymentMode": "Standard", "deploymentRolloutStrategy": {"defaultRollout": {"maxSurge": "lots"}}}"#,
            "config.deploy.deploymentRolloutStrategy.defaultRollout.maxSurge",
            "must be a whole number or a percentage",
        ),
    ];
    for (case, ingress, deploy, field, fragment) in cases {
        let found = violations(ingress, deploy);
        assert!(
            found
                .iter()
                .any(|(found_field, message)| found_field == field && message.contains(fragment)),
            "{case}: expected {field}: …{fragment}…, found {found:#?}"
        );
    }
}

#[test]
fn paths_follow_the_gateway_api_path_prefix_rules() {
    use isvc_ingress::config::path_problem;
    for good in ["/serving/ns/m", "/a-b_c.d~e/%41/@x:1", "/m/"] {
        assert_eq!(path_problem(good), None, "{good}");
    }
    let bad = [
        ("serving/m", "absolute"),
        ("//host/m", "//"),
        ("/a//b", "//"),
        ("/", "/ alone"),
        ("/m?x=1", "query"),
        ("/m#top", "query or fragment"),
        ("/a b", "characters a URL path cannot hold"),
        ("/a%zz", "characters a URL path cannot hold"),
        ("/a%2Fb", "encoded slash"),
        ("/a/./b", ". or .."),
        ("/a/..", ". or .."),
        ("/mödel", "characters a URL path cannot hold"),
    ];
    for (path, fragment) in bad {
        let problem = path_problem(path).unwrap_or_else(|| panic!("{path} must be refused"));
        assert!(problem.contains(fragment), "{path}: {problem}");
    }
}

#[test]
fn all_violations_are_reported_at_once() {
    let found = violations(
        r#"{"urlScheme": "ftp", "ingressDomain": "bad_domain", "additionalIngressDomains": ["x_y"], "ingressClassName": "A B"}"#,
        r#"{"defaultDeploymentMode": "Nope"}"#,
    );
    let fields: Vec<&str> = found.iter().map(|(field, _)| field.as_str()).collect();
    for expected in [
        "config.ingress.ingressGateway",
        "config.ingress.ingressDomain",
        "config.ingress.urlScheme",
        "config.ingress.additionalIngressDomains[0]",
        "config.ingress.ingressClassName",
        "config.deploy.defaultDeploymentMode",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing from {fields:?}"
        );
    }
}

#[test]
fn a_template_reading_metadata_is_checked_with_sample_values() {
    let ingress = r#"{"ingressGateway": "a/b", "domainTemplate": "{{ .Name }}.{{ index .Annotations \"team.example.com/name\" }}.{{ .Labels.env }}.{{ .IngressDomain }}"}"#;
    assert_eq!(violations(ingress, DEPLOY), Vec::new());
}

#[test]
fn kserve_defaults_and_go_compatible_parsing() {
    let data = config_map(
        r#"{"ingressGateway": "a/b", "localGatewayService": "gw.istio-system.svc.cluster.local", "domainTemplate": "", "UrlScheme": "", "unknownKey": 1, "ingressClassName": null}"#,
        r#"{"defaultDeploymentMode": "RawDeployment"}"#,
    );
    let config = KserveConfig::from_config_map_data(&data).unwrap();
    assert_eq!(
        config.ingress.domain_template,
        "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}"
    );
    assert_eq!(config.ingress.ingress_domain, "example.com");
    assert_eq!(config.ingress.url_scheme, "http");
    assert_eq!(
        config.ingress.model_based_routing_header_name,
        "X-Gateway-Model-Name"
    );
    assert_eq!(config.ingress.model_based_routing_mode, "enabled");
    assert_eq!(config.ingress.ingress_class_name, None);
    // knativeLocalGatewayService falls back to localGatewayService.
    assert_eq!(
        config.ingress.knative_local_gateway_service,
        "gw.istio-system.svc.cluster.local"
    );
    assert_eq!(
        config.deploy.default_deployment_mode,
        DeploymentMode::Standard
    );
    // No inferenceService key: KServe filters nothing (reference §10 Q9).
    assert!(config.metadata_filter.annotations.is_empty());
}

#[test]
fn every_ingress_field_is_read() {
    let ingress = r#"{
        "enableGatewayApi": true, "kserveIngressGateway": "kserve/gw", "ingressGateway": "a/b",
        "knativeLocalGatewayService": "k.svc", "localGateway": "c/d", "localGatewayService": "l.svc",
        "ingressDomain": "models.example.com", "ingressClassName": "nginx",
        "additionalIngressDomains": ["x.example.org"], "domainTemplate": "{{ .Name }}.{{ .IngressDomain }}",
        "urlScheme": "https", "enableLLMInferenceServiceTLS": true, "disableIstioVirtualHost": true,
        "pathTemplate": "/s/{{ .Name }}", "disableIngressCreation": true, "disableHTTPRouteTimeout": true,
        "modelBasedRoutingHeaderName": "X-Model", "modelBasedRoutingMode": "disabled"
    }"#;
    let config = KserveConfig::from_config_map_data(&config_map(ingress, DEPLOY)).unwrap();
    let serialised = serde_json::to_value(&config.ingress).unwrap();
    let expected: serde_json::Value = serde_json::from_str(ingress).unwrap();
    assert_eq!(
        serialised, expected,
        "every field round-trips under its KServe JSON key"
    );
}

#[test]
fn inference_service_key_extends_the_built_in_disallow_lists() {
    let mut data = config_map(&format!("{{{GOOD_INGRESS}}}"), DEPLOY);
    data.insert(
        "inferenceService".into(),
        r#"{"serviceAnnotationDisallowedList": ["my.org/secret"], "serviceLabelDisallowedList": ["tier"]}"#.into(),
    );
    let config = KserveConfig::from_config_map_data(&data).unwrap();
    assert_eq!(config.metadata_filter.annotations.len(), 6);
    assert_eq!(config.metadata_filter.annotations[5], "my.org/secret");
    assert_eq!(
        config.metadata_filter.labels,
        ["networking.knative.dev/visibility", "tier"]
    );
}

#[test]
fn bare_ingress_json_takes_the_shipped_defaults_for_other_keys_and_says_so() {
    let config = KserveConfig::from_text(&format!("{{{GOOD_INGRESS}}}")).unwrap();
    assert_eq!(
        config.deploy.default_deployment_mode,
        DeploymentMode::Knative
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|warning| warning.contains("no `deploy` key"))
    );
    // The webhook's view of a ConfigMap without `deploy` refuses it: KServe would fail every ISVC
    // that has no deploymentMode annotation.
    let data = BTreeMap::from([("ingress".to_string(), format!("{{{GOOD_INGRESS}}}"))]);
    let Err(ConfigError::Invalid { violations, .. }) = KserveConfig::from_config_map_data(&data)
    else {
        panic!("a ConfigMap without deploy must be refused");
    };
    assert_eq!(violations[0].field, "config.deploy.defaultDeploymentMode");
}

#[test]
fn unreadable_inputs() {
    let cases = [
        ("", "expected a ConfigMap"),
        ("just text", "expected a ConfigMap"),
        ("kind: Secret\napiVersion: v1\n", "expected kind ConfigMap"),
        (
            "kind: ConfigMap\n",
            "expected apiVersion v1 for a ConfigMap, found none",
        ),
        (
            "kind: ConfigMap\napiVersion: example.com/v1\n",
            "expected apiVersion v1 for a ConfigMap, found \"example.com/v1\"",
        ),
        (
            "kind: ConfigMap\napiVersion: v1\ndata:\n  ingress: 3\n",
            "data.ingress must be a string",
        ),
        (
            "kind: ConfigMap\napiVersion: v1\ndata: [1]\n",
            "data must be a map of strings",
        ),
        ("{: :", "not a ConfigMap"),
    ];
    for (text, fragment) in cases {
        match KserveConfig::from_text(text) {
            Err(ConfigError::Unreadable(message)) => {
                assert!(message.contains(fragment), "{text:?}: {message}")
            }
            other => panic!("{text:?}: expected unreadable, got {other:?}"),
        }
    }
}

#[test]
fn the_shipped_config_is_what_kserve_ships() {
    let config = KserveConfig::shipped();
    assert_eq!(
        config.ingress.kserve_ingress_gateway,
        "kserve/kserve-ingress-gateway"
    );
    assert_eq!(
        config.ingress.local_gateway,
        "knative-serving/knative-local-gateway"
    );
    assert!(!config.ingress.enable_gateway_api);
    assert_eq!(config.metadata_filter.annotations.len(), 5);
    // Warnings for a ConfigMap named otherwise.
    let renamed = isvc_ingress::config::SHIPPED_CONFIG_MAP
        .replace("name: inferenceservice-config", "name: other");
    let config = KserveConfig::from_text(&renamed).unwrap();
    assert!(config.warnings[0].contains("KServe reads the one named inferenceservice-config"));
}
