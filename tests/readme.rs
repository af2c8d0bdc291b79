//! README.md's examples cannot go stale: its console examples (`$ isvc-ingress ...` and their
//! output) are run and compared by trycmd, and the examples that need a running webhook (the
//! patch `curl` receives, the denial kubectl prints, the annotated object) are compared here with
//! what the real webhook answers. After a deliberate change of output,
//! `TRYCMD=overwrite cargo test --test readme` rewrites the console examples; the others name
//! the block to edit.

mod common;

use isvc_ingress_testkit::client::HttpVersion;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn repository_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("{full:?}: {error}"))
}

/// The body of the first fenced block whose info string is `info`, after the first line of
/// `text` that contains `marker`.
fn block_after(text: &str, marker: &str, info: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("README.md no longer contains {marker:?}"));
    let mut lines = text[start..].lines().skip(1);
    let fence = format!("```{info}");
    lines
        .by_ref()
        .find(|line| line.trim_end() == fence)
        .unwrap_or_else(|| panic!("no ```{info} block after {marker:?}"));
    let body: Vec<&str> = lines.take_while(|line| !line.starts_with("```")).collect();
    body.join("\n")
}

#[test]
fn console_examples_in_readme_and_docs() {
    trycmd::TestCases::new()
        .register_bin(
            "isvc-ingress",
            Path::new(env!("CARGO_BIN_EXE_isvc-ingress")),
        )
        .case("README.md")
        .case("docs/design.md")
        .case("docs/analyze.md");
}

/// The webhook's answer (the whole AdmissionReview) to `review` posted to `endpoint`.
fn webhook_answer(endpoint: &str, review: &Value) -> Value {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let server = common::start_webhook(&[]).await;
        let mut connection = server.connect(HttpVersion::Http1).await;
        let response = connection
            .post_json(endpoint, review.to_string())
            .await
            .expect("the webhook answers");
        let answer = response.json().expect("the answer is JSON");
        server.stop().await;
        answer
    })
}

/// `examples/admission-review.json`, and the webhook's answer to it on `/mutate`.
fn mutate_example_review() -> (Value, Value) {
    let review: Value = serde_json::from_str(&repository_file("examples/admission-review.json"))
        .expect("examples/admission-review.json is JSON");
    let answer = webhook_answer("/mutate", &review);
    (review, answer)
}

fn decoded_patch(answer: &Value) -> Value {
    use base64::Engine as _;
    let encoded = answer["response"]["patch"]
        .as_str()
        .expect("a base64 patch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("the patch is JSON")
}

#[test]
fn the_patch_shown_after_curl_is_what_the_webhook_answers() {
    let (_, answer) = mutate_example_review();
    assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
    let shown: Value = serde_json::from_str(&block_after(
        &repository_file("README.md"),
        "https://localhost:8443/mutate",
        "json",
    ))
    .expect("the README's patch block is JSON");
    assert_eq!(
        decoded_patch(&answer),
        shown,
        "README.md, the JSON block after the curl command, must show this patch"
    );
}

#[test]
fn the_annotated_object_shown_is_what_the_webhook_and_render_give() {
    let (review, answer) = mutate_example_review();
    let patched = common::patched(&review, &answer["response"]).expect("the patch applies");
    let shown: Value = serde_yaml_ng::from_str(&block_after(
        &repository_file("README.md"),
        "kubectl get isvc sklearn-iris",
        "yaml",
    ))
    .expect("the README's object block is YAML");
    // The webhook's own annotations (the example also carries kubectl's).
    let mut written = patched["metadata"]["annotations"].clone();
    written
        .as_object_mut()
        .expect("annotations")
        .retain(|key, _| key.starts_with("isvc-ingress.io/"));
    assert_eq!(
        shown["metadata"]["annotations"], written,
        "README.md's annotations must be those the webhook writes"
    );

    // The status the status mutator writes is the plan's, which `render` prints.
    let plan = render_one(&review["request"]["object"]);
    let predictor = &plan["components"]["predictor"];
    let expected_status = json!({
        "url": plan["url"],
        "address": { "url": plan["address"] },
        "components": { "predictor": { "url": predictor["url"], "restUrl": predictor["restUrl"] } },
    });
    assert_eq!(
        shown["status"], expected_status,
        "README.md's status must be the plan's"
    );
}

/// `isvc-ingress render -` of one object: its plan.
fn render_one(object: &Value) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_isvc-ingress"))
        .args(["render", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("render starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(object.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "render failed");
    let plans: Value = serde_json::from_slice(&output.stdout).expect("render prints JSON");
    plans[0].clone()
}

#[test]
fn the_denial_shown_is_what_the_webhook_answers_for_the_invalid_example() {
    let object: Value = serde_yaml_ng::from_str(&repository_file("examples/invalid.yaml"))
        .expect("examples/invalid.yaml is YAML");
    let mut review: Value =
        serde_json::from_str(&repository_file("examples/admission-review.json")).unwrap();
    review["request"]["object"] = object.clone();
    review["request"]["name"] = object["metadata"]["name"].clone();
    review["request"]["namespace"] = object["metadata"]["namespace"].clone();
    let answer = webhook_answer("/validate", &review);
    assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
    let shown = block_after(&repository_file("README.md"), "### What users see", "text");
    assert_eq!(
        answer["response"]["status"]["message"].as_str(),
        Some(shown.trim()),
        "README.md, the block under 'What users see', must show the webhook's message"
    );
}
