//! AdmissionReview responses, serialised exactly as the API documents them.
//!
//! kube-rs 5 serialises `AdmissionResponse.patch` as an array of numbers (kube-rs#1781), which
//! the API server rejects; here `patch` is the base64 string of the JSON Patch, and the
//! response is built from its own small types.

use super::review::{API_VERSION, KIND};
use base64::Engine;
use serde::Serialize;

/// HTTP-like code and reason of a denial (`metav1.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// 422 `Invalid`: the object breaks a rule.
    Invalid,
    /// 403 `Forbidden`: the object is well formed but the policy refuses it.
    Forbidden,
    /// 400 `BadRequest`: the review itself could not be used.
    BadRequest,
}

impl Denial {
    fn code_and_reason(self) -> (u16, &'static str) {
        match self {
            Self::Invalid => (422, "Invalid"),
            Self::Forbidden => (403, "Forbidden"),
            Self::BadRequest => (400, "BadRequest"),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

#[derive(Serialize)]
struct StatusOut<'a> {
    status: &'static str,
    code: u16,
    reason: &'static str,
    message: &'a str,
}

/// An allowing response, with a JSON Patch when `patch` holds operations.
pub fn allow(uid: &str, patch: Option<&json_patch::Patch>, warnings: &[String]) -> Vec<u8> {
    let patch = patch.filter(|patch| !patch.0.is_empty()).map(|patch| {
        let json = serde_json::to_vec(patch).expect("JSON patches serialise");
        base64::engine::general_purpose::STANDARD.encode(json)
    });
    write(ResponseOut {
        uid,
        allowed: true,
        status: None,
        patch_type: patch.as_ref().map(|_| "JSONPatch"),
        patch,
        warnings,
    })
}

/// A denying response: code, reason and a message naming every violation.
pub fn deny(uid: &str, denial: Denial, message: &str, warnings: &[String]) -> Vec<u8> {
    let (code, reason) = denial.code_and_reason();
    write(ResponseOut {
        uid,
        allowed: false,
        status: Some(StatusOut {
            status: "Failure",
            code,
            reason,
            message,
        }),
        patch_type: None,
        patch: None,
        warnings,
    })
}

fn write(response: ResponseOut<'_>) -> Vec<u8> {
    serde_json::to_vec(&ReviewOut {
        api_version: API_VERSION,
        kind: KIND,
        response,
    })
    .expect("responses serialise")
}

/// The JSON body of an HTTP error (400 and friends).
pub fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message })).expect("serialises")
}
