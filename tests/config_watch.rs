//! The ConfigMap watcher against a `tower-test` mock API server: every request is pinned
//! (method, path, query), and each observed ConfigMap changes — or, when invalid, does not
//! change — the config the webhook uses for the next request.

use http::{Request, Response};
use isvc_ingress::admission::AdmissionState;
use isvc_ingress::config::KserveConfig;
use isvc_ingress::config_watch;
use isvc_ingress::plan::Policy;
use kube::client::Body;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn config_map(resource_version: &str, ingress: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "inferenceservice-config", "namespace": "kserve", "resourceVersion": resource_version },
        "data": {
            "ingress": ingress.to_string(),
            "deploy": r#"{"defaultDeploymentMode": "Standard"}"#,
        },
    })
}

fn ingress(url_scheme: &str) -> Value {
    json!({
        "enableGatewayApi": true,
        "kserveIngressGateway": "kserve/kserve-ingress-gateway",
        "ingressGateway": "knative-serving/knative-ingress-gateway",
        "urlScheme": url_scheme,
    })
}

fn query_pairs(request: &Request<Body>) -> Vec<(String, String)> {
    let query = request.uri().query().unwrap_or_default();
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                key.to_string(),
                value.replace("%3D", "=").replace("%2F", "/"),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test]
async fn config_changes_apply_and_invalid_ones_are_kept_out() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let state = Arc::new(AdmissionState::new(
        KserveConfig::shipped(),
        Policy::default(),
        "kserve",
    ));
    let synced = Arc::new(AtomicBool::new(false));
    let replaced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let watcher = tokio::spawn({
        let (state, synced, shutdown) = (state.clone(), synced.clone(), shutdown.clone());
        let replaced = replaced.clone();
        async move {
            config_watch::run(
                client,
                state,
                config_watch::Source::Kserve,
                move || synced.store(true, Ordering::SeqCst),
                move || {
                    replaced.fetch_add(1, Ordering::SeqCst);
                },
                shutdown,
            )
            .await
        }
    });

    // 1. The initial list, narrowed to the one ConfigMap.
    let (request, respond) = handle.next_request().await.expect("list request");
    assert_eq!(request.method(), http::Method::GET);
    assert_eq!(request.uri().path(), "/api/v1/namespaces/kserve/configmaps");
    assert_eq!(
        query_pairs(&request),
        pairs(&[
            ("fieldSelector", "metadata.name=inferenceservice-config"),
            ("limit", "500")
        ])
    );
    let list = json!({ "apiVersion": "v1", "kind": "ConfigMapList", "metadata": { "resourceVersion": "100" },
                       "items": [config_map("100", ingress("http"))] });
    respond.send_response(Response::new(Body::from(
        serde_json::to_vec(&list).unwrap(),
    )));

    // 2. The watch from the listed version; it delivers an invalid and then a valid change.
    let (request, respond) = handle.next_request().await.expect("watch request");
    assert_eq!(request.uri().path(), "/api/v1/namespaces/kserve/configmaps");
    assert_eq!(
        query_pairs(&request),
        pairs(&[
            ("allowWatchBookmarks", "true"),
            ("fieldSelector", "metadata.name=inferenceservice-config"),
            ("resourceVersion", "100"),
            ("timeoutSeconds", "290"),
            ("watch", "true")
        ])
    );
    assert!(
        synced.load(Ordering::SeqCst),
        "synced once the initial list is in"
    );
    assert!(
        state.config().ingress.enable_gateway_api,
        "the listed ConfigMap is in force"
    );
    let invalid = json!({ "type": "MODIFIED", "object": config_map("101", ingress("ftp")) });
    let valid = json!({ "type": "MODIFIED", "object": config_map("102", ingress("https")) });
    let stream = format!("{invalid}\n{valid}\n");
    respond.send_response(Response::new(Body::from(stream.into_bytes())));

    // 3. The watch ends; the watcher re-watches from the last version it saw.
    let (request, _respond) = handle.next_request().await.expect("re-watch request");
    assert!(query_pairs(&request).contains(&("resourceVersion".to_string(), "102".to_string())));
    assert_eq!(
        state.config().ingress.url_scheme,
        "https",
        "the invalid version was skipped, the valid one applied"
    );
    assert_eq!(
        replaced.load(Ordering::SeqCst),
        2,
        "the listed and the valid watched versions each trigger a re-plan, the invalid one does not"
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("stops on shutdown")
        .unwrap();
}

/// Knative's `config-network` (namespace knative-serving) is watched like KServe's config: its
/// `domain-template` is put in force for every Knative-mode host, an invalid one is kept out,
/// and KServe config changes leave it in force.
#[tokio::test]
async fn knative_domain_template_is_watched_and_used_for_knative_hosts() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let state = Arc::new(AdmissionState::new(
        KserveConfig::shipped(),
        Policy::default(),
        "kserve",
    ));
    let synced = Arc::new(AtomicBool::new(false));
    let shutdown = CancellationToken::new();
    let watcher = tokio::spawn({
        let (state, synced, shutdown) = (state.clone(), synced.clone(), shutdown.clone());
        async move {
            config_watch::run(
                client,
                state,
                config_watch::Source::KnativeNetwork("knative-serving".into()),
                move || synced.store(true, Ordering::SeqCst),
                || {},
                shutdown,
            )
            .await
        }
    });
    let network = |version: &str, template: &str| {
        json!({ "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "config-network", "namespace": "knative-serving", "resourceVersion": version },
                "data": { "domain-template": template } })
    };
    let (request, respond) = handle.next_request().await.expect("list request");
    assert_eq!(
        request.uri().path(),
        "/api/v1/namespaces/knative-serving/configmaps"
    );
    assert!(query_pairs(&request).contains(&(
        "fieldSelector".to_string(),
        "metadata.name=config-network".to_string()
    )));
    let list = json!({ "apiVersion": "v1", "kind": "ConfigMapList", "metadata": { "resourceVersion": "7" },
                       "items": [network("7", "{{.Name}}-{{.Namespace}}.{{.Domain}}")] });
    respond.send_response(Response::new(Body::from(
        serde_json::to_vec(&list).unwrap(),
    )));
    let (_request, respond) = handle.next_request().await.expect("watch request");
    assert!(synced.load(Ordering::SeqCst));
    let dash = "{{.Name}}-{{.Namespace}}.{{.Domain}}";
    assert_eq!(
        state.config().knative_network.domain_template.source(),
        dash
    );
    // Every Knative-mode host follows it (field case knative-dash-domain-template.yaml).
    let isvc = isvc_ingress::isvc::InferenceService::from_json(
        &json!({"metadata": {"name": "sklearn-iris", "namespace": "user1"},
                "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}}}}),
        "default",
    )
    .unwrap();
    let planned = isvc_ingress::plan::plan(&isvc, &state.config(), state.policy()).unwrap();
    assert_eq!(
        planned.url.as_deref(),
        Some("http://sklearn-iris-user1.example.com")
    );
    assert_eq!(
        planned.components[&isvc_ingress::isvc::ComponentKind::Predictor].url,
        "http://sklearn-iris-predictor-user1.example.com"
    );
    // An invalid template is kept out; a KServe config change keeps the template in force.
    let invalid = json!({ "type": "MODIFIED", "object": network("8", "{{.IngressDomain}}") });
    respond.send_response(Response::new(Body::from(
        format!("{invalid}\n").into_bytes(),
    )));
    let (_request, _respond) = handle.next_request().await.expect("re-watch request");
    assert_eq!(
        state.config().knative_network.domain_template.source(),
        dash
    );
    state.replace_config(KserveConfig::shipped());
    assert_eq!(
        state.config().knative_network.domain_template.source(),
        dash
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("stops on shutdown")
        .unwrap();
}

#[test]
fn an_invalid_config_map_is_kept_out() {
    let state = AdmissionState::new(KserveConfig::shipped(), Policy::default(), "kserve");
    let invalid: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(config_map("1", ingress("ftp"))).unwrap();
    match config_watch::apply(&invalid, &state) {
        config_watch::Applied::Kept(problems) => {
            assert!(problems.contains("config.ingress.urlScheme"))
        }
        other => panic!("expected Kept, got {other:?}"),
    }
    assert_eq!(state.config().ingress.url_scheme, "http");
}
