//! `analyze` on a large healthy cluster: 2,000 Standard-mode models with Gateway API (4,000
//! HTTPRoutes, 2,000 Services), built from the planner's own routes, so the analysis must find
//! nothing (checked before measuring). The cost of a whole cluster, per run.
//! Run: `cargo bench --bench analyze`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use isvc_ingress::analyze::{self, Kind, Scope, Snapshot};
use isvc_ingress::config::KserveConfig;
use isvc_ingress::isvc::InferenceService;
use isvc_ingress::plan::{self, Policy};
use serde_json::{Value, json};
use std::hint::black_box;

const MODELS: usize = 2_000;

fn cluster() -> (Snapshot, KserveConfig) {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!(
        "{root}/tests/fixtures/analyze/healthy-gateway.yaml"
    ))
    .expect("fixture");
    let list: Value = serde_yaml_ng::from_str(&text).expect("YAML");
    let mut snapshot = Snapshot::default();
    let mut config = None;
    let mut template = None;
    for item in list["items"].as_array().expect("a List") {
        match item["kind"].as_str() {
            Some("InferenceService") => template = Some(item.clone()),
            Some("HTTPRoute" | "Service") => {}
            Some("ConfigMap") => {
                let data = serde_json::from_value(item["data"].clone()).expect("data");
                config = Some(KserveConfig::from_config_map_data(&data).expect("config"));
                snapshot.add(item.clone());
            }
            _ => {
                snapshot.add(item.clone());
            }
        }
    }
    let (config, template) = (config.expect("a config"), template.expect("an ISVC"));
    let policy = Policy::default();
    for index in 0..MODELS {
        let name = format!("model-{index}");
        let mut object = template.clone();
        object["metadata"]["name"] = json!(name);
        object["metadata"]["uid"] = json!(format!("uid-{index}"));
        let isvc = InferenceService::from_json(&object, "default").expect("ISVC");
        let planned = plan::plan(&isvc, &config, &policy).expect("valid");
        object["status"]["url"] = json!(planned.url);
        object["status"]["address"] = json!({"url": planned.address});
        object["status"]["components"] = json!({"predictor": {
            "url": planned.components.values().next().expect("a predictor").url}});
        for route in plan::routes(&planned, &isvc, &config) {
            let mut route = route.to_value();
            // KServe writes these routes (--route-owner kserve): none of isvc-ingress's labels.
            route["metadata"]["labels"] = json!({});
            route["status"] = json!({"parents": [{
                "parentRef": route["spec"]["parentRefs"][0].clone(),
                "conditions": [{"type": "Accepted", "status": "True"}]}]});
            snapshot.insert(Kind::HttpRoute, route);
        }
        snapshot.insert(
            Kind::Service,
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": format!("{name}-predictor"), "namespace": "models"},
                   "spec": {"ports": [{"port": 80}]}}),
        );
        snapshot.insert(Kind::InferenceService, object);
    }
    (snapshot, config)
}

fn analysis(criterion: &mut Criterion) {
    let (snapshot, _) = cluster();
    let policy = Policy::default();
    let scope = Scope::default();
    let report = analyze::analyze(&snapshot, None, &policy, &scope);
    assert_eq!(report.inference_services.len(), MODELS);
    assert!(report.findings.is_empty(), "{:?}", report.findings.first());
    let mut group = criterion.benchmark_group("analyze");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MODELS as u64));
    group.bench_function("healthy_cluster_2000_models", |bencher| {
        bencher.iter(|| analyze::analyze(black_box(&snapshot), None, &policy, &scope))
    });
    group.finish();
}

criterion_group!(benches, analysis);
criterion_main!(benches);
