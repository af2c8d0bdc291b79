//! What every admission answer must satisfy, whatever the input: the checks the fuzz targets
//! share. A violated check panics, which libFuzzer reports as a crash with the input.

use base64::Engine as _;
use isvc_ingress::admission::{AdmissionReply, Endpoint};
use serde_json::Value;

/// Checks one reply to `body` and returns the applied patch's result (the object as the API
/// server would store it) when the answer allowed the object with a patch.
pub fn check_reply(endpoint: Endpoint, body: &[u8], reply: &AdmissionReply) -> Option<Value> {
    let answer: Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|error| panic!("reply body is not JSON ({error}): {:?}", reply.body));
    match reply.http_status {
        400 => {
            let message = answer["error"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "a 400 names the problem: {answer}");
            None
        }
        200 => check_review_answer(endpoint, body, &answer),
        other => panic!("unexpected HTTP status {other}: {answer}"),
    }
}

fn check_review_answer(endpoint: Endpoint, body: &[u8], answer: &Value) -> Option<Value> {
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer}");
    assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
    let response = &answer["response"];
    assert!(response["uid"].is_string(), "response.uid: {answer}");
    // The apiserver matches answers to requests by uid: it must be the request's own.
    let request: Option<Value> = serde_json::from_slice(body).ok();
    // With a key repeated, the last one counts, as in serde_json's `Value`.
    if let Some(uid) = request
        .as_ref()
        .and_then(|review| review["request"]["uid"].as_str())
    {
        assert_eq!(response["uid"], uid, "{answer}");
    }
    let allowed = response["allowed"]
        .as_bool()
        .unwrap_or_else(|| panic!("response.allowed is not a boolean: {answer}"));
    if !allowed {
        let message = response["status"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "a denial says why: {answer}");
        assert!(response.get("patch").is_none(), "a denial carries no patch");
        return None;
    }
    let patch = response.get("patch")?;
    assert_eq!(endpoint, Endpoint::Mutate, "only /mutate patches: {answer}");
    assert_eq!(response["patchType"], "JSONPatch", "{answer}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch.as_str().expect("patch is a base64 string"))
        .expect("patch is valid base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("patch is a JSON Patch");
    let mut object = request
        .as_ref()
        .map(|review| review["request"]["object"].clone())
        .expect("a patch answers a request with an object");
    json_patch::patch(&mut object, &patch)
        .unwrap_or_else(|error| panic!("the patch does not apply ({error}): {patch:?}"));
    Some(object)
}
