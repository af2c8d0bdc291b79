//! The real webhook end to end: the server on loopback over TLS (certificate from the crate's
//! CA), a client that verifies it, HTTP/1.1 and HTTP/2, every AdmissionReview fixture shaped as
//! kube-apiserver sends it, each returned patch decoded from base64 and applied with json-patch
//! to the request object, and the result asserted; then the metrics the requests left.

mod common;

use bytes::Bytes;
use common::fixture;
use isvc_ingress_testkit::client::HttpVersion;
use serde_json::{Value, json};

/// POSTs a review and returns the `response` of the AdmissionReview answer.
async fn review(
    connection: &mut isvc_ingress_testkit::client::Connection,
    path: &str,
    body: &Value,
) -> Value {
    let response = connection
        .send(
            http::Method::POST,
            path,
            Some("application/json"),
            Bytes::from(serde_json::to_vec(body).unwrap()),
        )
        .await
        .expect("the server answers");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.headers["content-type"], "application/json");
    let answer = response.json().expect("a JSON body");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], body["request"]["uid"]);
    answer["response"].clone()
}

fn apply_patch(request: &Value, response: &Value) -> Value {
    common::patched(request, response).unwrap_or_else(|error| panic!("{error}: {response}"))
}

#[tokio::test]
async fn every_fixture_over_tls_with_both_protocols() {
    let server = common::start_webhook(&[]).await;
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let mut connection = server.connect(version).await;
        assert_eq!(
            connection.is_http2(),
            version == HttpVersion::Http2,
            "ALPN negotiated"
        );

        let create = fixture("isvc-create.json");
        let response = review(&mut connection, "/mutate?timeout=10s", &create).await;
        let created = apply_patch(&create, &response);
        assert_eq!(
            created["metadata"]["annotations"]["isvc-ingress.io/url"],
            "http://sklearn-iris.models.example.com"
        );
        let dry_run = review(
            &mut connection,
            "/mutate?timeout=10s",
            &fixture("isvc-create-dry-run.json"),
        )
        .await;
        assert_eq!(
            dry_run["patch"], response["patch"],
            "dryRun gets the same answer"
        );

        let update = fixture("isvc-update.json");
        let updated = apply_patch(&update, &review(&mut connection, "/mutate", &update).await);
        assert_eq!(
            updated["metadata"]["annotations"]["serving.kserve.io/deploymentMode"],
            "Standard"
        );
        assert!(
            updated["metadata"]["annotations"]
                .get("isvc-ingress.io/explainer-url")
                .is_none()
        );

        let status = fixture("isvc-status-update.json");
        let corrected = apply_patch(&status, &review(&mut connection, "/mutate", &status).await);
        assert_eq!(
            corrected["status"]["url"],
            "http://sklearn-iris-models.example.com"
        );
        assert_eq!(
            corrected["status"]["conditions"],
            status["request"]["object"]["status"]["conditions"]
        );

        let good = review(
            &mut connection,
            "/validate",
            &fixture("configmap-good.json"),
        )
        .await;
        assert_eq!(good["allowed"], true);
        let bad = review(&mut connection, "/validate", &fixture("configmap-bad.json")).await;
        assert_eq!(
            (bad["allowed"].clone(), bad["status"]["code"].clone()),
            (json!(false), json!(422))
        );
        assert!(
            bad["status"]["message"]
                .as_str()
                .unwrap()
                .contains("config.ingress.urlScheme: must be http or https")
        );

        let mut invalid = fixture("isvc-create.json");
        invalid["request"]["object"]["metadata"]["name"] = json!("Bad_Name");
        let denied = review(&mut connection, "/validate", &invalid).await;
        assert_eq!(denied["status"]["reason"], "Invalid");
        assert!(
            denied["status"]["message"]
                .as_str()
                .unwrap()
                .starts_with("metadata.name: ")
        );

        for (path, name) in [
            ("/validate", "isvc-delete.json"),
            ("/mutate", "unrelated-pod.json"),
        ] {
            let answer = review(&mut connection, path, &fixture(name)).await;
            assert_eq!(answer["allowed"], true, "{name}");
            assert!(answer.get("patch").is_none(), "{name}");
        }
    }
    let (status, _, metrics) = common::admin_get(server.admin_addr(), "/metrics").await;
    assert_eq!(status, 200);
    let count = |labels: &str| {
        common::sample(
            &metrics,
            &format!("isvc_ingress_admission_requests_total{{{labels}}}"),
        )
    };
    assert_eq!(
        count(
            r#"endpoint="mutate",kind="InferenceService",operation="CREATE",outcome="patched",code="200""#
        ),
        4.0,
        "create and dry-run, on both protocols:\n{metrics}"
    );
    assert_eq!(
        count(
            r#"endpoint="validate",kind="ConfigMap",operation="UPDATE",outcome="denied",code="200""#
        ),
        2.0
    );
    server.stop().await;
}
