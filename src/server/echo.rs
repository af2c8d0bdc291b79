//! Trivial admission handlers: for running the server by hand, for the load tool's baseline,
//! and for tests. They allow everything and never patch.

use super::{AdmissionHandler, AdmissionReply, Endpoint, Outcome};

/// Allows every review, echoing its `uid`, `kind` and `operation`.
///
/// It parses the body like a real handler would (so its cost is the JSON parse), answers 400
/// with `{"error": ...}` for a body that is not an AdmissionReview, and records `uid`,
/// `namespace` and `name` on the current `review` span as the real handler is expected to.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoHandler;

impl AdmissionHandler for EchoHandler {
    fn handle(&self, _endpoint: Endpoint, body: &[u8]) -> AdmissionReply {
        let review: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad_request(&format!("body is not JSON: {e}")),
        };
        let Some(request) = review.get("request") else {
            return bad_request("body is not an AdmissionReview: no `request`");
        };
        let field = |path: &[&str]| -> String {
            path.iter()
                .try_fold(request, |v, key| v.get(key))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let uid = field(&["uid"]);
        let span = tracing::Span::current();
        span.record("uid", uid.as_str());
        span.record("namespace", field(&["namespace"]).as_str());
        span.record("name", field(&["name"]).as_str());
        let kind = Some(field(&["kind", "kind"]))
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        let operation = Some(field(&["operation"]))
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": { "uid": uid, "allowed": true }
        });
        AdmissionReply {
            http_status: 200,
            body: body.to_string().into_bytes(),
            kind,
            operation,
            outcome: Outcome::Allowed,
        }
    }
}

fn bad_request(message: &str) -> AdmissionReply {
    AdmissionReply {
        http_status: 400,
        body: serde_json::json!({ "error": message })
            .to_string()
            .into_bytes(),
        kind: "unknown".to_owned(),
        operation: "unknown".to_owned(),
        outcome: Outcome::Error,
    }
}

/// Answers every request with the same allowed AdmissionReview, without reading the body:
/// the load tool's baseline, measuring the server stack alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct StaticAllowHandler;

/// The constant answer of [`StaticAllowHandler`].
pub const STATIC_ALLOW_BODY: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":true}}"#;

impl AdmissionHandler for StaticAllowHandler {
    fn handle(&self, _endpoint: Endpoint, _body: &[u8]) -> AdmissionReply {
        AdmissionReply {
            http_status: 200,
            body: STATIC_ALLOW_BODY.as_bytes().to_vec(),
            kind: "InferenceService".to_owned(),
            operation: "CREATE".to_owned(),
            outcome: Outcome::Allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_uid_kind_and_operation() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"serving.kserve.io","version":"v1beta1","kind":"InferenceService"},"operation":"CREATE","namespace":"ns","name":"m"}}"#;
        let reply = EchoHandler.handle(Endpoint::Mutate, body);
        assert_eq!(reply.http_status, 200);
        assert_eq!(reply.kind, "InferenceService");
        assert_eq!(reply.operation, "CREATE");
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(v["response"]["uid"], "u-1");
        assert_eq!(v["response"]["allowed"], true);
    }

    #[test]
    fn rejects_non_reviews_with_400() {
        assert_eq!(
            EchoHandler.handle(Endpoint::Validate, b"nope").http_status,
            400
        );
        assert_eq!(
            EchoHandler.handle(Endpoint::Validate, b"{}").http_status,
            400
        );
    }
}
