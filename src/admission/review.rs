//! Decoding an `admission.k8s.io/v1` AdmissionReview as kube-apiserver sends it.
//!
//! Decoded in two steps, the envelope first and then the request, so that a review whose request
//! is malformed still yields its `uid` (an answer without the uid is rejected by the API server).
//! kube-core's typed request needs a well-formed body to give anything back. The request is kept
//! as raw JSON until then, and `oldObject` is never parsed: the webhook does not read it, and on
//! an UPDATE it doubles the body.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

/// Why a body could not be used at all: answered with HTTP 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// JSON text is UTF-8 (RFC 8259). Checked for the whole body up front: the parser does not
    /// check the strings it skips, so without this a field the webhook never reads could carry
    /// bytes that the precise path would refuse.
    #[error("the body is not JSON: invalid UTF-8 at byte {0}")]
    NotUtf8(usize),
    #[error(
        "the body is not an {API_VERSION} {KIND} (found apiVersion {api_version:?}, kind {kind:?})"
    )]
    NotAdmissionReview {
        api_version: Option<String>,
        kind: Option<String>,
    },
}

/// A request the handler cannot act on, answered with `allowed: false` and this message.
#[derive(Debug, PartialEq, Eq)]
pub struct Unusable {
    pub uid: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupVersionResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub resource: String,
}

/// The fields of `request` the webhook reads. `Object` is how `object` is held: raw JSON on the
/// generic path, or already read as an ISVC on the hot path ([`TypedReview`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<Object = Box<RawValue>> {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: String,
    #[serde(default = "Option::default")]
    pub object: Option<Object>,
    /// The object before an UPDATE, raw (read only by the status mutator).
    #[serde(default)]
    pub old_object: Option<Box<RawValue>>,
    /// The request's `CreateOptions`/`UpdateOptions`/`PatchOptions`, raw: the status mutator
    /// reads `fieldManager` to tell isvc-ingress's own status writes from others'.
    #[serde(default)]
    pub options: Option<Box<RawValue>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(borrow)]
    request: Option<&'a RawValue>,
}

/// The hot path in one pass: a well-formed v1 review whose object is read by the ISVC typed
/// reader as it is parsed (the generic path would scan the object twice).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypedReview {
    api_version: String,
    kind: String,
    pub request: Request<crate::isvc::TypedObject>,
}

impl TypedReview {
    /// The review, if it is a v1 review of an InferenceService create or update (the webhook's
    /// hot path); None sends the body down the generic path.
    pub fn decode(body: &[u8]) -> Option<Self> {
        let review: Self = serde_json::from_str(std::str::from_utf8(body).ok()?).ok()?;
        let request = &review.request;
        let is_isvc_write = review.api_version == API_VERSION
            && review.kind == KIND
            && request.kind.group == "serving.kserve.io"
            && request.kind.kind == crate::isvc::KIND
            && request.sub_resource.is_none()
            && matches!(request.operation.as_str(), "CREATE" | "UPDATE")
            && request.object.is_some();
        is_isvc_write.then_some(review)
    }
}

/// The common case in one pass: a well-formed v1 review.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WellFormed {
    api_version: String,
    kind: String,
    request: Request,
}

/// The `uid` of a request that did not decode, so the denial can still name it. Read through
/// a JSON tree, which keeps the last of repeated keys, rather than a struct, which refuses them:
/// a request that is malformed because it repeats `uid` is still answered with a uid (found by
/// fuzzing, `admission_review_bytes`).
fn malformed_request_uid(request: &str) -> String {
    serde_json::from_str::<serde_json::Value>(request)
        .ok()
        .and_then(|request| request.get("uid")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Decodes a body: `Err(DecodeError)` for a body that is not an AdmissionReview,
/// `Ok(Err(Unusable))` for a review whose request is missing or malformed.
pub fn decode(body: &[u8]) -> Result<Result<Request, Unusable>, DecodeError> {
    let body =
        std::str::from_utf8(body).map_err(|error| DecodeError::NotUtf8(error.valid_up_to()))?;
    if let Ok(review) = serde_json::from_str::<WellFormed>(body)
        && review.api_version == API_VERSION
        && review.kind == KIND
    {
        return Ok(Ok(review.request));
    }
    let envelope: Envelope<'_> = serde_json::from_str(body).map_err(|error| {
        // Tell "not JSON" from "JSON, but not a review object".
        match serde_json::from_str::<IgnoredAny>(body) {
            Err(_) => DecodeError::NotJson(error.to_string()),
            Ok(_) => DecodeError::NotAdmissionReview {
                api_version: None,
                kind: None,
            },
        }
    })?;
    if envelope.api_version.as_deref() != Some(API_VERSION)
        || envelope.kind.as_deref() != Some(KIND)
    {
        return Err(DecodeError::NotAdmissionReview {
            api_version: envelope.api_version,
            kind: envelope.kind,
        });
    }
    let Some(request) = envelope.request.filter(|raw| raw.get() != "null") else {
        return Ok(Err(Unusable {
            uid: String::new(),
            message: "the AdmissionReview has no request".to_string(),
        }));
    };
    Ok(
        serde_json::from_str(request.get()).map_err(|error| Unusable {
            uid: malformed_request_uid(request.get()),
            message: format!("the AdmissionReview request is malformed: {error}"),
        }),
    )
}
