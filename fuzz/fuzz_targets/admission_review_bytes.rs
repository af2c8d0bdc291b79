//! Arbitrary bytes as an AdmissionReview body, on both endpoints: decoding, dispatch (ISVC,
//! status subresource, ConfigMap, anything else) and planning. Every answer must be a
//! well-formed reply (see `check_reply`); a patch must apply to the object it answers.
#![no_main]

use std::sync::{Arc, LazyLock};

use isvc_ingress::admission::{AdmissionHandler as _, AdmissionState, Endpoint, Webhook};
use isvc_ingress::config::KserveConfig;
use isvc_ingress::plan::Policy;
use isvc_ingress_fuzz::check_reply;
use libfuzzer_sys::fuzz_target;

static WEBHOOK: LazyLock<Webhook> = LazyLock::new(|| {
    let state = AdmissionState::new(KserveConfig::shipped(), Policy::default(), "kserve");
    Webhook::new(Arc::new(state))
});

fuzz_target!(|body: &[u8]| {
    for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
        let reply = WEBHOOK.handle(endpoint, body);
        check_reply(endpoint, body, &reply);
    }
});
