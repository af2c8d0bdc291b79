//! The whole admission path on a realistic 3 KB ISVC (`tests/fixtures/admission/isvc-create-3kb.json`):
//! decode the review, plan, build the JSON Patch, serialise the response with the base64 patch.
//! Run: `cargo bench --bench admission`. The TLS server around it is measured by the load tool.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use isvc_ingress::admission::{AdmissionHandler, AdmissionState, Endpoint, Outcome, Webhook};
use isvc_ingress::config::KserveConfig;
use isvc_ingress::plan::{Policy, RouteOwner};
use std::hint::black_box;
use std::sync::Arc;

fn admission(criterion: &mut Criterion) {
    let root = env!("CARGO_MANIFEST_DIR");
    let body = std::fs::read(format!(
        "{root}/tests/fixtures/admission/isvc-create-3kb.json"
    ))
    .expect("review fixture");
    let config_text = std::fs::read_to_string(format!(
        "{root}/tests/fixtures/config/gateway-api-two-domains.yaml"
    ))
    .expect("config fixture");
    let config = KserveConfig::from_text(&config_text).expect("config");
    let webhook = Webhook::new(Arc::new(AdmissionState::new(
        config,
        Policy {
            route_owner: RouteOwner::IsvcIngress,
            ..Policy::default()
        },
        "kserve",
    )));
    assert_eq!(
        webhook.handle(Endpoint::Mutate, &body).outcome,
        Outcome::Patched
    );
    assert_eq!(
        webhook.handle(Endpoint::Validate, &body).outcome,
        Outcome::Allowed
    );
    let mut group = criterion.benchmark_group("admission");
    group.throughput(Throughput::Bytes(body.len() as u64));
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        group.bench_function(endpoint.as_str(), |bencher| {
            bencher.iter(|| webhook.handle(black_box(endpoint), black_box(&body)))
        });
    }
    group.finish();
}

criterion_group!(benches, admission);
criterion_main!(benches);
