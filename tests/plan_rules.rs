//! The planner's decisions beyond the worked examples: route kinds and overrides, the
//! annotations of docs/design.md, policy, deployment-mode rules, DomainMapping, and plan-hash.

mod support;

use isvc_ingress::config::DeploymentMode;
use isvc_ingress::isvc::ComponentKind;
use isvc_ingress::plan::{Policy, RouteKind};
use serde_json::{Value, json};
use support::*;

fn with_annotations(mut object: Value, annotations: Value) -> Value {
    object["metadata"]["annotations"] = annotations;
    object
}

fn model(annotations: Value) -> Value {
    with_annotations(isvc_json("m", "ns", predictor_only()), annotations)
}

/// The policy these rules are about: isvc-ingress writes the routes, so every
/// `isvc-ingress.io/*` setting reaches them (with `--route-owner kserve` those settings are
/// refused, `tests/route_owner.rs`).
fn ours() -> Policy {
    Policy {
        route_owner: isvc_ingress::plan::RouteOwner::IsvcIngress,
        ..Policy::default()
    }
}

fn plan_ours(
    object: &Value,
    config: &isvc_ingress::config::KserveConfig,
) -> (isvc_ingress::plan::RoutePlan, Vec<Value>) {
    plan_ok_with(object, config, &ours())
}

fn fields(rejection: &isvc_ingress::plan::Rejection) -> Vec<&str> {
    rejection
        .violations
        .iter()
        .map(|violation| violation.field.as_str())
        .collect()
}

#[test]
fn route_kind_follows_mode_and_config() {
    let cases = [
        ("Standard", json!({}), RouteKind::Ingress),
        (
            "Standard",
            json!({ "enableGatewayApi": true }),
            RouteKind::HttpRoute,
        ),
        (
            "Standard",
            json!({ "disableIngressCreation": true }),
            RouteKind::None,
        ),
        ("Knative", json!({}), RouteKind::VirtualService),
        (
            "Knative",
            json!({ "disableIstioVirtualHost": true }),
            RouteKind::None,
        ),
        ("ModelMesh", json!({}), RouteKind::None),
    ];
    for (mode, ingress, expected) in cases {
        let (plan, routes) = plan_ok(&model(json!({})), &config_with(ingress.clone(), mode));
        assert_eq!(plan.route_kind, expected, "{mode} {ingress}");
        assert_eq!(routes.is_empty(), expected == RouteKind::None);
    }
}

#[test]
fn model_mesh_gets_no_url() {
    let (plan, _) = plan_ok(&model(json!({})), &config_with(json!({}), "ModelMesh"));
    assert_eq!(plan.mode, DeploymentMode::ModelMesh);
    assert_eq!((plan.url, plan.address), (None, None));
    assert!(plan.components.is_empty());
    assert!(plan.warnings[0].contains("ModelMesh"));
    assert_eq!(
        plan.annotations.keys().copied().collect::<Vec<_>>(),
        ["isvc-ingress.io/plan-hash", "isvc-ingress.io/route-kind"]
    );
}

#[test]
fn route_annotation_overrides_where_it_can_work() {
    let standard = config_with(json!({ "enableGatewayApi": true }), "Standard");
    let (plan, routes) = plan_ours(
        &model(json!({ "isvc-ingress.io/route": "Ingress" })),
        &standard,
    );
    assert_eq!(plan.route_kind, RouteKind::Ingress);
    assert_eq!(routes[0]["kind"], "Ingress");
    let (plan, routes) = plan_ours(
        &model(json!({ "isvc-ingress.io/route": "None" })),
        &standard,
    );
    assert_eq!(plan.route_kind, RouteKind::None);
    assert!(routes.is_empty());
    assert_eq!(
        plan.url.as_deref(),
        Some("http://m-ns.example.com"),
        "a user-managed route keeps the URL"
    );

    let rejection = plan_err(
        &model(json!({ "isvc-ingress.io/route": "VirtualService" })),
        &standard,
        &ours(),
    );
    assert_eq!(
        fields(&rejection),
        ["metadata.annotations[isvc-ingress.io/route]"]
    );
    assert!(
        rejection.violations[0]
            .message
            .contains("needs deployment mode Knative")
    );

    let rejection = plan_err(
        &model(json!({ "isvc-ingress.io/route": "Gateway" })),
        &standard,
        &ours(),
    );
    assert!(
        rejection.violations[0]
            .message
            .contains("must be Ingress, HTTPRoute, VirtualService, DomainMapping or None")
    );

    let mut local = model(json!({ "isvc-ingress.io/route": "HTTPRoute" }));
    local["metadata"]["labels"] = json!({ "networking.kserve.io/visibility": "cluster-local" });
    let rejection = plan_err(&local, &standard, &ours());
    assert!(
        rejection.violations[0]
            .message
            .contains("cluster-local InferenceService gets no external route")
    );
}

#[test]
fn domain_mapping_serves_a_custom_host_without_istio() {
    let config = config_with(
        json!({ "disableIstioVirtualHost": true, "additionalIngressDomains": ["models.example.org"] }),
        "Knative",
    );
    let object = with_annotations(
        isvc_json(
            "m",
            "ns",
            json!({ "predictor": {}, "transformer": { "containers": [] } }),
        ),
        json!({ "isvc-ingress.io/host": "fraud.models.example.org", "isvc-ingress.io/tls-secret": "fraud-tls" }),
    );
    let (plan, routes) = plan_ours(&object, &config);
    assert_eq!(plan.route_kind, RouteKind::DomainMapping);
    assert_eq!(
        plan.url.as_deref(),
        Some("https://fraud.models.example.org")
    );
    assert_eq!(plan.hosts, ["fraud.models.example.org"]);
    assert_eq!(
        plan.address.as_deref(),
        Some("http://m-transformer.ns.svc.cluster.local")
    );
    let mapping = route(&routes, "DomainMapping", "fraud.models.example.org");
    assert_eq!(
        mapping["spec"],
        json!({ "ref": { "apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "m-transformer", "namespace": "ns" },
                "tls": { "secretName": "fraud-tls" } })
    );
    // Chosen by annotation with Istio on, and with the predicted host when none is given.
    let (plan, routes) = plan_ours(
        &model(json!({ "isvc-ingress.io/route": "DomainMapping" })),
        &config_with(json!({}), "Knative"),
    );
    assert_eq!(plan.url.as_deref(), Some("http://m.ns.example.com"));
    assert_eq!(
        route(&routes, "DomainMapping", "m.ns.example.com")["spec"]["ref"]["name"],
        "m-predictor"
    );
}

#[test]
fn override_hosts_obey_the_domain_policy() {
    let config = config_with(
        json!({ "enableGatewayApi": true, "additionalIngressDomains": ["models.example.org"] }),
        "Standard",
    );
    let allowed = ["m.example.com", "a.b.models.example.org"];
    for host in allowed {
        let (plan, routes) = plan_ours(&model(json!({ "isvc-ingress.io/host": host })), &config);
        assert_eq!(plan.hosts[0], host);
        assert_eq!(
            route(&routes, "HTTPRoute", "m")["spec"]["hostnames"][0],
            host
        );
    }
    let refused = [
        ("models.competitor.com", "outside the allowed domains"),
        ("example.com", "outside the allowed domains"),
        ("notexample.com", "outside the allowed domains"),
        ("Bad_Host.example.com", "is not a valid host"),
    ];
    for (host, fragment) in refused {
        let rejection = plan_err(
            &model(json!({ "isvc-ingress.io/host": host })),
            &config,
            &ours(),
        );
        assert_eq!(
            fields(&rejection),
            ["metadata.annotations[isvc-ingress.io/host]"],
            "{host}"
        );
        assert!(
            rejection.violations[0].message.contains(fragment),
            "{host}: {}",
            rejection.violations[0].message
        );
    }
    let policy = Policy {
        allowed_domains: vec!["competitor.com".into()],
        ..ours()
    };
    let (plan, _) = plan_ok_with(
        &model(json!({ "isvc-ingress.io/host": "models.competitor.com" })),
        &config,
        &policy,
    );
    assert_eq!(plan.url.as_deref(), Some("http://models.competitor.com"));
}

#[test]
fn gateway_annotation_obeys_the_gateway_policy() {
    let config = config_with(json!({ "enableGatewayApi": true }), "Standard");
    let rejection = plan_err(
        &model(json!({ "isvc-ingress.io/gateway": "team-a/private" })),
        &config,
        &ours(),
    );
    assert!(
        rejection.violations[0]
            .message
            .contains("is not an allowed gateway; allowed: kserve/kserve-ingress-gateway")
    );
    let policy = Policy {
        allowed_gateways: vec!["team-a/private".into()],
        ..ours()
    };
    let (_, routes) = plan_ok_with(
        &model(json!({ "isvc-ingress.io/gateway": "team-a/private" })),
        &config,
        &policy,
    );
    for route in &routes {
        assert_eq!(route["spec"]["parentRefs"][0]["namespace"], "team-a");
        assert_eq!(route["spec"]["parentRefs"][0]["name"], "private");
    }
    let rejection = plan_err(
        &model(json!({ "isvc-ingress.io/gateway": "private" })),
        &config,
        &policy,
    );
    assert!(
        rejection.violations[0]
            .message
            .contains("<namespace>/<name>")
    );
}

#[test]
fn ingress_settings_class_and_tls() {
    let config = config_with(json!({ "ingressClassName": "istio" }), "Standard");
    let object = model(
        json!({ "isvc-ingress.io/ingress-class": "nginx", "isvc-ingress.io/tls-secret": "m-tls" }),
    );
    let (plan, routes) = plan_ours(&object, &config);
    assert_eq!(plan.url.as_deref(), Some("https://m-ns.example.com"));
    assert_eq!(
        plan.components[&ComponentKind::Predictor].url,
        "https://m-predictor-ns.example.com"
    );
    let ingress = route(&routes, "Ingress", "m");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ingress["spec"]["tls"],
        json!([{ "hosts": ["m-ns.example.com", "m-predictor-ns.example.com"], "secretName": "m-tls" }])
    );
    // TLS for gateway routes is the Gateway's business: refused, not silently ignored.
    let gateway = config_with(json!({ "enableGatewayApi": true }), "Standard");
    let rejection = plan_err(
        &model(json!({ "isvc-ingress.io/tls-secret": "m-tls" })),
        &gateway,
        &ours(),
    );
    assert!(
        rejection.violations[0]
            .message
            .contains("applies to Ingress and DomainMapping routes")
    );
    // An ingress class on a gateway route is harmless: a warning.
    let (plan, _) = plan_ours(
        &model(json!({ "isvc-ingress.io/ingress-class": "nginx" })),
        &gateway,
    );
    assert!(plan.warnings[0].contains("ingress-class] is ignored"));
}

#[test]
fn path_annotation_routes_a_prefix_of_the_shared_host() {
    let config = config_with(json!({ "enableGatewayApi": true }), "Standard");
    let (plan, routes) = plan_ours(
        &model(json!({ "isvc-ingress.io/path": "/teams/ns/m/" })),
        &config,
    );
    assert_eq!(plan.path.as_deref(), Some("/teams/ns/m"));
    assert_eq!(plan.url.as_deref(), Some("http://example.com/teams/ns/m"));
    assert_eq!(
        route(&routes, "HTTPRoute", "m-path")["spec"]["rules"][0]["matches"][0]["path"]["value"],
        "/teams/ns/m"
    );
    let ingress = config_with(json!({}), "Standard");
    let rejection = plan_err(
        &model(json!({ "isvc-ingress.io/path": "/teams/ns/m" })),
        &ingress,
        &ours(),
    );
    assert!(
        rejection.violations[0]
            .message
            .contains("path-based routing needs an external HTTPRoute or VirtualService")
    );
    let rejection = plan_err(
        &model(json!({ "isvc-ingress.io/path": "/" })),
        &config,
        &ours(),
    );
    assert!(rejection.violations[0].message.contains("is / alone"));
}

#[test]
fn timeout_annotation_reaches_every_rule() {
    let object = model(json!({ "isvc-ingress.io/timeout": "2m" }));
    let (_, routes) = plan_ours(
        &object,
        &config_with(json!({ "enableGatewayApi": true }), "Standard"),
    );
    for route in &routes {
        assert_eq!(route["spec"]["rules"][0]["timeouts"]["request"], "2m");
    }
    // Istio reads a protobuf Duration: the same time in seconds.
    let (_, routes) = plan_ours(&object, &config_with(json!({}), "Knative"));
    assert_eq!(
        route(&routes, "VirtualService", "m")["spec"]["http"][0]["timeout"],
        "120s"
    );
    let (plan, _) = plan_ours(
        &object,
        &config_with(
            json!({ "enableGatewayApi": true, "disableHTTPRouteTimeout": true }),
            "Standard",
        ),
    );
    assert!(
        plan.warnings
            .iter()
            .any(|warning| warning.contains("disableHTTPRouteTimeout"))
    );
}

#[test]
fn deployment_mode_is_normalised_and_immutable() {
    let config = config_with(json!({}), "Knative");
    let (plan, _) = plan_ok(
        &model(json!({ "serving.kserve.io/deploymentMode": "RawDeployment" })),
        &config,
    );
    assert_eq!(plan.mode, DeploymentMode::Standard);
    assert_eq!(plan.deployment_mode_annotation, Some("Standard"));
    assert!(plan.warnings[0].contains("legacy name of Standard"));
    let (plan, _) = plan_ok(&model(json!({})), &config);
    assert_eq!(
        plan.deployment_mode_annotation, None,
        "KServe does not write the Knative default"
    );
    let (plan, _) = plan_ok(&model(json!({})), &config_with(json!({}), "Standard"));
    assert_eq!(plan.deployment_mode_annotation, Some("Standard"));

    let mut recorded = model(json!({ "serving.kserve.io/deploymentMode": "Standard" }));
    recorded["status"] = json!({ "deploymentMode": "Serverless" });
    let rejection = plan_err(&recorded, &config, &Policy::default());
    assert_eq!(
        rejection.violations[0].message,
        "deploymentMode cannot be changed from 'Knative' to 'Standard'"
    );
    // The same mode under its legacy name is no change.
    recorded["metadata"]["annotations"] = json!({ "serving.kserve.io/deploymentMode": "Knative" });
    let (plan, _) = plan_ok(&recorded, &config_with(json!({}), "Standard"));
    assert_eq!(
        plan.mode,
        DeploymentMode::Knative,
        "the recorded mode wins over the default"
    );

    let rejection = plan_err(
        &model(json!({ "serving.kserve.io/deploymentMode": "Serverful" })),
        &config,
        &Policy::default(),
    );
    assert_eq!(
        fields(&rejection),
        ["metadata.annotations[serving.kserve.io/deploymentMode]"]
    );
}

#[test]
fn stop_keeps_the_urls_and_drops_the_routes() {
    let (plan, routes) = plan_ok(
        &model(json!({ "serving.kserve.io/stop": "TRUE" })),
        &config_with(json!({}), "Knative"),
    );
    assert!(plan.stopped);
    assert!(routes.is_empty());
    assert_eq!(plan.url.as_deref(), Some("http://m.ns.example.com"));
    let (plan, _) = plan_ok(
        &model(json!({ "serving.kserve.io/stop": "yes" })),
        &config_with(json!({}), "Knative"),
    );
    assert!(!plan.stopped);
    assert!(plan.warnings[0].contains("neither true nor false"));
}

#[test]
fn the_wrong_visibility_label_is_pointed_out() {
    let mut object = model(json!({}));
    object["metadata"]["labels"] = json!({ "networking.knative.dev/visibility": "cluster-local" });
    let (plan, _) = plan_ok(&object, &config_with(json!({}), "Standard"));
    assert_eq!(plan.route_kind, RouteKind::Ingress);
    assert!(
        plan.warnings[0]
            .contains("has no effect in Standard mode; use networking.kserve.io/visibility")
    );
}

#[test]
fn every_isvc_violation_is_collected() {
    let object = with_annotations(
        isvc_json("1model", "ns", predictor_only()),
        json!({
            "isvc-ingress.io/route": "Mesh",
            "isvc-ingress.io/timeout": "soon",
            "isvc-ingress.io/ingress-class": "No Class",
            "isvc-ingress.io/tls-secret": "Bad Secret",
            "isvc-ingress.io/path": "relative",
            "isvc-ingress.io/hosts": "user value, overwritten",
            "isvc-ingress.io/colour": "blue",
        }),
    );
    let rejection = plan_err(
        &object,
        &config_with(json!({}), "Standard"),
        &Policy::default(),
    );
    let found = fields(&rejection);
    for expected in [
        "metadata.name",
        "metadata.annotations[isvc-ingress.io/route]",
        "metadata.annotations[isvc-ingress.io/timeout]",
        "metadata.annotations[isvc-ingress.io/ingress-class]",
        "metadata.annotations[isvc-ingress.io/tls-secret]",
        "metadata.annotations[isvc-ingress.io/path]",
    ] {
        assert!(
            found.contains(&expected),
            "{expected} missing from {found:?}"
        );
    }
    assert!(!found.contains(&"metadata.annotations[isvc-ingress.io/hosts]"));
    assert!(rejection.warnings.iter().any(|warning| {
        warning.contains("isvc-ingress.io/colour] is not an isvc-ingress annotation")
    }));
}

#[test]
fn service_names_and_near_limit_labels() {
    let long = "a".repeat(53);
    let object = isvc_json(&long, "n", json!({ "predictor": {}, "transformer": {} }));
    let rejection = plan_err(
        &object,
        &config_with(json!({}), "Knative"),
        &Policy::default(),
    );
    assert!(
        rejection.violations.iter().any(|violation| violation
            .message
            .contains("the transformer Service name would be invalid")),
        "{rejection:?}"
    );
    let (plan, _) = plan_ok(
        &isvc_json(&"b".repeat(50), "n", predictor_only()),
        &config_with(json!({}), "Knative"),
    );
    assert!(
        plan.warnings
            .iter()
            .any(|warning| warning.contains("is 60 characters, 3 below the DNS limit"))
    );
}

#[test]
fn virtual_service_routes_need_the_local_gateway_settings() {
    let ingress = json!({ "ingressGateway": "knative-serving/knative-ingress-gateway" });
    let config = config_from_keys(&ingress, "Knative", None);
    let rejection = plan_err(&model(json!({})), &config, &Policy::default());
    assert_eq!(
        fields(&rejection),
        [
            "config.ingress.localGateway",
            "config.ingress.localGatewayService",
            "config.ingress.knativeLocalGatewayService"
        ]
    );
}

#[test]
fn grpc_urls() {
    let spec = json!({ "predictor": { "sklearn": { "protocolVersion": "grpc-v2" } } });
    let (plan, _) = plan_ok(
        &isvc_json("m", "ns", spec.clone()),
        &config_with(json!({}), "Knative"),
    );
    assert_eq!(
        plan.components[&ComponentKind::Predictor]
            .grpc_url
            .as_deref(),
        Some("grpc://m-predictor.ns.example.com:80")
    );
    let (plan, _) = plan_ok(
        &isvc_json("m", "ns", spec),
        &config_with(json!({}), "Standard"),
    );
    assert_eq!(
        plan.components[&ComponentKind::Predictor]
            .grpc_url
            .as_deref(),
        Some("grpc://m-predictor.ns.svc.cluster.local:80"),
        "an Ingress carries no gRPC rule, so the URL is the Service's"
    );
    let (plan, _) = plan_ok(&model(json!({})), &config_with(json!({}), "Standard"));
    assert_eq!(plan.components[&ComponentKind::Predictor].grpc_url, None);
}

#[test]
fn predictor_variant_keeps_stable_route_names() {
    let spec = json!({ "predictor": { "name": "blue" } });
    let (plan, routes) = plan_ok(
        &isvc_json("m", "ns", spec),
        &config_with(json!({ "enableGatewayApi": true }), "Standard"),
    );
    assert_eq!(
        plan.address.as_deref(),
        Some("http://m-blue-predictor.ns.svc.cluster.local")
    );
    let predictor = route(&routes, "HTTPRoute", "m-predictor");
    assert_eq!(
        predictor["spec"]["hostnames"],
        json!(["m-predictor-ns.example.com"])
    );
    assert_eq!(
        predictor["spec"]["rules"][0]["backendRefs"][0]["name"],
        "m-blue-predictor"
    );
}

#[test]
fn output_annotations_and_plan_hash() {
    let config = config_with(json!({ "enableGatewayApi": true }), "Standard");
    let object = isvc_json("m", "ns", json!({ "predictor": {}, "explainer": {} }));
    let (plan, routes) = plan_ok(&object, &config);
    let expected = [
        (
            "isvc-ingress.io/address",
            "http://m-predictor.ns.svc.cluster.local",
        ),
        (
            "isvc-ingress.io/explainer-url",
            "http://m-explainer-ns.example.com",
        ),
        ("isvc-ingress.io/hosts", "m-ns.example.com"),
        (
            "isvc-ingress.io/predictor-url",
            "http://m-predictor-ns.example.com",
        ),
        ("isvc-ingress.io/route-kind", "HTTPRoute"),
        ("isvc-ingress.io/url", "http://m-ns.example.com"),
    ];
    for (key, value) in expected {
        assert_eq!(plan.annotations[key], value, "{key}");
    }
    let hash = &plan.annotations["isvc-ingress.io/plan-hash"];
    assert_eq!(hash.len(), 16);
    // Our own annotations never reach the routes.
    assert!(routes.iter().all(|route| {
        route["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .is_empty()
    }));

    // The webhook's own writes and the mode normalisation leave the hash alone...
    let mut mutated = object.clone();
    let mut written: serde_json::Map<String, Value> = plan
        .annotations
        .iter()
        .map(|(key, value)| (key.to_string(), json!(value)))
        .collect();
    written.insert("serving.kserve.io/deploymentMode".into(), json!("Standard"));
    mutated["metadata"]["annotations"] = Value::Object(written);
    let (replanned, _) = plan_ok(&mutated, &config);
    assert_eq!(&replanned.annotations["isvc-ingress.io/plan-hash"], hash);
    // ...while any input that changes routing changes it.
    let mut relabelled = object.clone();
    relabelled["metadata"]["labels"] = json!({ "team": "a" });
    assert_ne!(
        &plan_ok(&relabelled, &config).0.annotations["isvc-ingress.io/plan-hash"],
        hash
    );
    let other_config = config_with(
        json!({ "enableGatewayApi": true, "urlScheme": "https" }),
        "Standard",
    );
    assert_ne!(
        &plan_ok(&object, &other_config).0.annotations["isvc-ingress.io/plan-hash"],
        hash
    );
}

#[test]
fn metadata_copied_to_routes_respects_the_disallow_lists() {
    let mut object = with_annotations(
        model(json!({})),
        json!({
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "cert-manager.io/cluster-issuer": "letsencrypt",
        }),
    );
    object["metadata"]["labels"] =
        json!({ "team": "a", "networking.knative.dev/visibility": "exposed" });
    let config = isvc_ingress::config::KserveConfig::shipped();
    let (_, routes) = plan_ours(&object, &config);
    let metadata = &route(&routes, "VirtualService", "m")["metadata"];
    assert_eq!(
        metadata["annotations"],
        json!({ "cert-manager.io/cluster-issuer": "letsencrypt" })
    );
    assert_eq!(
        metadata["labels"],
        json!({ "team": "a", "app.kubernetes.io/managed-by": "isvc-ingress", "isvc-ingress.io/inferenceservice": "m" })
    );
}

#[test]
fn path_regex_is_escaped_and_names_have_a_length_limit() {
    let object = with_annotations(
        isvc_json("m", "ns", json!({ "predictor": {}, "explainer": {} })),
        json!({ "isvc-ingress.io/path": "/v1.0/m" }),
    );
    let (_, routes) = plan_ours(&object, &config_with(json!({}), "Knative"));
    let http = &route(&routes, "VirtualService", "m")["spec"]["http"];
    assert_eq!(
        http[2]["match"][0]["uri"]["regex"],
        r"/v1\.0/m(/v1/models/[\w-]+:explain)$"
    );
    let rejection = plan_err(
        &isvc_json(&"n".repeat(64), "ns", predictor_only()),
        &config_with(json!({}), "Knative"),
        &ours(),
    );
    assert!(
        rejection.violations[0]
            .message
            .contains("is 64 characters, 1 over the limit of 63")
    );
}

#[test]
fn plan_hash_covers_exactly_the_annotations_that_can_change_the_plan() {
    let config = isvc_ingress::config::KserveConfig::shipped();
    let hash_of = |annotations: Value| {
        plan_ours(&model(annotations), &config).0.annotations["isvc-ingress.io/plan-hash"].clone()
    };
    let base = hash_of(json!({}));
    // Disallowed from the routes and not read by the template: no effect.
    assert_eq!(
        hash_of(json!({ "kubectl.kubernetes.io/last-applied-configuration": "{...}" })),
        base
    );
    // Copied to the routes: changes the plan.
    assert_ne!(
        hash_of(json!({ "cert-manager.io/cluster-issuer": "letsencrypt" })),
        base
    );
    // Our own settings change the plan.
    assert_ne!(hash_of(json!({ "isvc-ingress.io/timeout": "10s" })), base);
    // A disallowed annotation that the domain template reads changes the plan.
    let reading = config_with(
        json!({ "domainTemplate": "{{ .Name }}.{{ .Annotations.modelFormat }}.{{ .IngressDomain }}" }),
        "Standard",
    );
    let mut filtered = reading.clone();
    filtered
        .metadata_filter
        .annotations
        .push("modelFormat".into());
    let hash = |format: &str| {
        plan_ours(&model(json!({ "modelFormat": format })), &filtered)
            .0
            .annotations["isvc-ingress.io/plan-hash"]
            .clone()
    };
    assert_ne!(hash("sklearn"), hash("xgboost"));
}

#[test]
fn with_isvc_ingress_owning_routes_kserves_disable_settings_only_keep_kserve_away() {
    use isvc_ingress::plan::RouteOwner;
    let ours = Policy {
        route_owner: RouteOwner::IsvcIngress,
        ..Policy::default()
    };
    let cases = [
        (
            "Standard",
            json!({ "disableIngressCreation": true }),
            RouteKind::Ingress,
        ),
        (
            "Standard",
            json!({ "disableIngressCreation": true, "enableGatewayApi": true }),
            RouteKind::HttpRoute,
        ),
        (
            "Knative",
            json!({ "disableIstioVirtualHost": true }),
            RouteKind::VirtualService,
        ),
    ];
    for (mode, ingress, expected) in cases {
        let config = config_with(ingress.clone(), mode);
        assert_eq!(
            plan_ok(&model(json!({})), &config).0.route_kind,
            RouteKind::None,
            "KServe owns: {ingress}"
        );
        let (plan, routes) = plan_ok_with(&model(json!({})), &config, &ours);
        assert_eq!(plan.route_kind, expected, "isvc-ingress owns: {ingress}");
        assert!(!routes.is_empty());
        assert!(RouteOwner::IsvcIngress.conflicts_with(&config).len() < 2);
    }
    // Cluster-local still means no external route.
    let mut local = model(json!({}));
    local["metadata"]["labels"] = json!({ "networking.kserve.io/visibility": "cluster-local" });
    let config = config_with(json!({ "disableIngressCreation": true }), "Standard");
    assert_eq!(
        plan_ok_with(&local, &config, &ours).0.route_kind,
        RouteKind::None
    );
    // Ownership that KServe's config contradicts is reported, once per setting.
    let conflicts = RouteOwner::IsvcIngress.conflicts_with(&config_with(json!({}), "Standard"));
    assert_eq!(conflicts.len(), 2);
    assert!(conflicts[0].contains("disableIngressCreation is false"));
    assert!(
        RouteOwner::Kserve
            .conflicts_with(&config_with(json!({}), "Standard"))
            .is_empty()
    );
    assert!(RouteOwner::Kserve.writes("DomainMapping") && !RouteOwner::Kserve.writes("Ingress"));
    assert!(RouteOwner::IsvcIngress.writes("VirtualService"));
}

#[test]
fn an_additional_host_that_is_not_a_valid_host_is_refused_not_skipped() {
    // A valid 236-character additional domain makes `<name>-<namespace>.<domain>` 288 long.
    let long_domain = format!(
        "{}.{}.{}.{}.com",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(40)
    );
    let config = config_with(
        json!({ "enableGatewayApi": true, "additionalIngressDomains": [long_domain] }),
        "Standard",
    );
    let object = isvc_json(&"m".repeat(40), "namespace1", predictor_only());
    let rejection = plan_err(&object, &config, &Policy::default());
    assert_eq!(fields(&rejection), ["metadata.name"]);
    assert!(
        rejection.violations[0]
            .message
            .starts_with("the additional host \""),
        "{}",
        rejection.violations[0].message
    );
    assert!(
        rejection.violations[0]
            .message
            .contains("288 characters, 35 over the limit of 253")
    );
}
