//! KServe configuration, as the `inferenceservice-config` ConfigMap YAML or the bare `ingress`
//! JSON: parsing arbitrary text either gives a config or errors that
//! each name a field; an accepted config plans a typical ISVC (or refuses it with named
//! violations) and builds its route objects without panicking.
#![no_main]

use std::sync::LazyLock;

use isvc_ingress::config::KserveConfig;
use isvc_ingress::isvc::InferenceService;
use isvc_ingress::plan::{self, Policy, RouteOwner};
use libfuzzer_sys::fuzz_target;

static ISVCS: LazyLock<Vec<InferenceService>> = LazyLock::new(|| {
    let text = include_str!("../../tests/fixtures/isvc/typical-standard.yaml");
    let object: serde_json::Value = serde_json::to_value(
        serde_yaml_ng::from_str::<serde_json::Value>(text).expect("fixture is YAML"),
    )
    .expect("fixture is JSON-compatible");
    let standard = InferenceService::from_json(&object, "default").expect("fixture reads");
    let mut serverless = standard.clone();
    serverless.annotations.insert(
        plan::DEPLOYMENT_MODE_ANNOTATION.to_owned(),
        "Serverless".to_owned(),
    );
    vec![standard, serverless]
});

// The input is the text of a ConfigMap (YAML) or of its `ingress` key (JSON), so KServe's
// shipped config and the test configs are seeds as they are; `fuzz/dictionaries/config.dict`
// supplies the key names.
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = KserveConfig::from_text(text);
    let config = match parsed {
        Ok(config) => config,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    for owner in [RouteOwner::Kserve, RouteOwner::IsvcIngress] {
        let policy = Policy {
            route_owner: owner,
            ..Policy::default()
        };
        for isvc in ISVCS.iter() {
            match plan::plan(isvc, &config, &policy) {
                Ok(planned) => {
                    for host in &planned.hosts {
                        assert!(
                            isvc_ingress::dns::host_problem(host).is_none(),
                            "accepted config planned an invalid host {host:?}"
                        );
                    }
                    for route in plan::routes(&planned, isvc, &config) {
                        serde_json::to_value(&route).expect("route objects serialise");
                    }
                }
                Err(rejection) => {
                    for violation in &rejection.violations {
                        assert!(!violation.field.is_empty(), "{violation:?}");
                    }
                }
            }
        }
    }
});
