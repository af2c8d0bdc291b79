//! Planning cost on a typical ISVC (predictor + transformer, HTTPRoute, two additional domains).
//! (a) `plan`: what the webhook runs on every request (hosts, URLs, annotations, violations).
//! (b) `plan` + `routes`: the full plan with the route objects (reconciler, `render`).
//! Run: `cargo bench --bench plan`. Targets: (a) ≥ 300,000/s, (b) ≥ 50,000/s on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use isvc_ingress::config::KserveConfig;
use isvc_ingress::isvc::InferenceService;
use isvc_ingress::plan::{self, Policy, RouteOwner};
use std::hint::black_box;

fn fixtures() -> (InferenceService, KserveConfig) {
    let root = env!("CARGO_MANIFEST_DIR");
    let isvc_text =
        std::fs::read_to_string(format!("{root}/tests/fixtures/isvc/typical-standard.yaml"))
            .expect("ISVC fixture");
    let object: serde_json::Value = serde_yaml_ng::from_str(&isvc_text).expect("ISVC YAML");
    let isvc = InferenceService::from_json(&object, "default").expect("ISVC");
    let config_text = std::fs::read_to_string(format!(
        "{root}/tests/fixtures/config/gateway-api-two-domains.yaml"
    ))
    .expect("config fixture");
    let config = KserveConfig::from_text(&config_text).expect("config");
    (isvc, config)
}

fn planning(criterion: &mut Criterion) {
    let (isvc, config) = fixtures();
    let policy = Policy {
        route_owner: RouteOwner::IsvcIngress,
        ..Policy::default()
    };
    let planned = plan::plan(&isvc, &config, &policy).expect("the typical ISVC is valid");
    assert_eq!(
        planned.hosts.len(),
        3,
        "top-level host and two additional hosts"
    );
    assert_eq!(plan::routes(&planned, &isvc, &config).len(), 3);
    let mut group = criterion.benchmark_group("plan");
    group.throughput(Throughput::Elements(1));
    group.bench_function("webhook_plan", |bencher| {
        bencher.iter(|| plan::plan(black_box(&isvc), black_box(&config), black_box(&policy)))
    });
    group.bench_function("full_plan_with_routes", |bencher| {
        bencher.iter(|| {
            let planned = plan::plan(black_box(&isvc), black_box(&config), black_box(&policy))
                .expect("valid");
            plan::routes(&planned, &isvc, &config)
        })
    });
    group.bench_function("full_plan_serialised_to_json", |bencher| {
        bencher.iter(|| {
            let planned = plan::plan(black_box(&isvc), black_box(&config), black_box(&policy))
                .expect("valid");
            serde_json::to_vec(&plan::routes(&planned, &isvc, &config)).expect("serialises")
        })
    });
    group.bench_function("parse_isvc_from_json", |bencher| {
        let root = env!("CARGO_MANIFEST_DIR");
        let text =
            std::fs::read_to_string(format!("{root}/tests/fixtures/isvc/typical-standard.yaml"))
                .unwrap();
        let object: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        bencher.iter(|| InferenceService::from_json(black_box(&object), "default"))
    });
    group.finish();
}

criterion_group!(benches, planning);
criterion_main!(benches);
