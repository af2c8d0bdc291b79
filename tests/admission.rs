//! The admission layer at the protocol level: AdmissionReview JSON exactly as kube-apiserver
//! sends it (`tests/fixtures/admission`), responses checked on the wire bytes, and every patch
//! decoded from base64, applied with json-patch to the request object, and the result asserted.

mod support;

use base64::Engine;
use isvc_ingress::admission::{AdmissionHandler, AdmissionState, Endpoint, Outcome, Webhook};
use isvc_ingress::config::KserveConfig;
use isvc_ingress::plan::Policy;
use serde_json::{Value, json};
use std::sync::Arc;

fn webhook() -> Webhook {
    webhook_with(KserveConfig::shipped(), Policy::default())
}

/// isvc-ingress writes the routes: every `isvc-ingress.io/*` setting applies (with KServe
/// writing them, settings KServe does not read are refused).
fn ours() -> Policy {
    Policy {
        route_owner: isvc_ingress::plan::RouteOwner::IsvcIngress,
        ..Policy::default()
    }
}

fn webhook_with(config: KserveConfig, policy: Policy) -> Webhook {
    Webhook::new(Arc::new(AdmissionState::new(config, policy, "kserve")))
}

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/admission/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

struct Answer {
    status: u16,
    outcome: Outcome,
    wire: String,
    response: Value,
}

fn send(webhook: &Webhook, endpoint: Endpoint, review: &Value) -> Answer {
    let reply = webhook.handle(endpoint, &serde_json::to_vec(review).unwrap());
    let wire = String::from_utf8(reply.body).unwrap();
    let body: Value = serde_json::from_str(&wire).unwrap();
    if reply.http_status == 200 {
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["kind"], "AdmissionReview");
        if let Some(uid) = review["request"]["uid"].as_str() {
            assert_eq!(body["response"]["uid"], uid, "the uid is echoed");
        }
    }
    Answer {
        status: reply.http_status,
        outcome: reply.outcome,
        response: body.get("response").cloned().unwrap_or(body),
        wire,
    }
}

/// Decodes the base64 patch and applies it to the request object.
fn patched(review: &Value, answer: &Answer) -> Value {
    assert_eq!(answer.response["patchType"], "JSONPatch");
    let encoded = answer.response["patch"]
        .as_str()
        .expect("the patch is a base64 string on the wire");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut object = review["request"]["object"].clone();
    json_patch::patch(&mut object, &patch).expect("the patch applies to the original object");
    object
}

fn annotations(object: &Value) -> &serde_json::Map<String, Value> {
    object["metadata"]["annotations"].as_object().unwrap()
}

#[test]
fn create_writes_the_computed_annotations_and_nothing_else() {
    let review = fixture("isvc-create.json");
    let answer = send(&webhook(), Endpoint::Mutate, &review);
    assert_eq!((answer.status, answer.outcome), (200, Outcome::Patched));
    assert_eq!(answer.response["allowed"], true);
    assert!(
        answer.wire.contains(r#""patch":""#),
        "patch must be a string on the wire: {}",
        answer.wire
    );
    let result = patched(&review, &answer);
    let annotations = annotations(&result);
    assert_eq!(
        annotations["isvc-ingress.io/url"],
        "http://sklearn-iris.models.example.com"
    );
    assert_eq!(
        annotations["isvc-ingress.io/address"],
        "http://sklearn-iris.models.svc.cluster.local"
    );
    assert_eq!(
        annotations["isvc-ingress.io/hosts"],
        "sklearn-iris.models.example.com"
    );
    assert_eq!(annotations["isvc-ingress.io/route-kind"], "VirtualService");
    assert_eq!(
        annotations["isvc-ingress.io/predictor-url"],
        "http://sklearn-iris-predictor.models.example.com"
    );
    assert_eq!(
        annotations["isvc-ingress.io/plan-hash"]
            .as_str()
            .unwrap()
            .len(),
        16
    );
    assert!(annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    assert!(
        !annotations.contains_key("serving.kserve.io/deploymentMode"),
        "Knative is not written"
    );
    // Nothing but the annotations changed.
    let mut without = result.clone();
    let mut original = review["request"]["object"].clone();
    without["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    original["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    assert_eq!(without, original);
    // Mutating the result again is a no-op: no patch at all.
    let mut again = review.clone();
    again["request"]["object"] = result;
    let answer = send(&webhook(), Endpoint::Mutate, &again);
    assert_eq!(answer.outcome, Outcome::Allowed);
    assert!(answer.response.get("patch").is_none() && answer.response.get("patchType").is_none());
}

#[test]
fn create_without_an_annotations_map_adds_it_whole() {
    let mut review = fixture("isvc-create.json");
    review["request"]["object"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let answer = send(&webhook(), Endpoint::Mutate, &review);
    let result = patched(&review, &answer);
    assert_eq!(
        annotations(&result).len(),
        6,
        "url, address, hosts, route-kind, predictor-url, plan-hash"
    );
    let config = support::config_with(json!({}), "Standard");
    let answer = send(
        &webhook_with(config, Policy::default()),
        Endpoint::Mutate,
        &review,
    );
    let result = patched(&review, &answer);
    assert_eq!(
        annotations(&result)["serving.kserve.io/deploymentMode"],
        "Standard"
    );
}

#[test]
fn update_overwrites_user_values_of_output_keys_and_normalises_the_mode() {
    let review = fixture("isvc-update.json");
    let answer = send(&webhook(), Endpoint::Mutate, &review);
    assert_eq!(answer.outcome, Outcome::Patched);
    let result = patched(&review, &answer);
    let annotations = annotations(&result);
    assert_eq!(annotations["serving.kserve.io/deploymentMode"], "Standard");
    assert_eq!(
        annotations["isvc-ingress.io/url"],
        "http://sklearn-iris-models.example.com"
    );
    assert_eq!(annotations["isvc-ingress.io/route-kind"], "Ingress");
    assert!(
        !annotations.contains_key("isvc-ingress.io/explainer-url"),
        "stale output keys are removed"
    );
    let warnings = answer.response["warnings"].as_array().unwrap();
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("\"RawDeployment\" is the legacy name of Standard")
    );
    // The patch touches the annotations only.
    let operations: Vec<Value> = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(answer.response["patch"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    for operation in &operations {
        let path = operation["path"].as_str().unwrap();
        assert!(path.starts_with("/metadata/annotations/"), "{path}");
        assert!(path.contains("~1"), "keys with / are escaped: {path}");
    }
}

#[test]
fn keys_with_tilde_and_slash_are_escaped_and_left_alone() {
    let mut review = fixture("isvc-create.json");
    review["request"]["object"]["metadata"]["annotations"] = json!({ "example.com/a~b": "kept" });
    let result = patched(&review, &send(&webhook(), Endpoint::Mutate, &review));
    assert_eq!(annotations(&result)["example.com/a~b"], "kept");
    assert_eq!(annotations(&result).len(), 7);
}

#[test]
fn validate_denies_with_every_violation() {
    let mut review = fixture("isvc-create.json");
    let object = &mut review["request"]["object"];
    object["metadata"]["name"] = json!("9-bad");
    object["metadata"]["annotations"] = json!({
        "isvc-ingress.io/timeout": "soon",
        "serving.kserve.io/deploymentMode": "Serverful",
    });
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let answer = send(&webhook(), endpoint, &review);
        assert_eq!((answer.status, answer.outcome), (200, Outcome::Denied));
        assert_eq!(answer.response["allowed"], false);
        assert_eq!(answer.response["status"]["code"], 422);
        assert_eq!(answer.response["status"]["reason"], "Invalid");
        let message = answer.response["status"]["message"].as_str().unwrap();
        let parts: Vec<&str> = message.split("; ").collect();
        assert_eq!(parts.len(), 3, "{message}");
        assert!(parts[0].starts_with("metadata.name: "));
        assert!(parts[1].starts_with("metadata.annotations[isvc-ingress.io/timeout]: "));
        assert!(parts[2].starts_with(
            "metadata.annotations[serving.kserve.io/deploymentMode]: must be Knative"
        ));
    }
    let answer = send(&webhook(), Endpoint::Validate, &fixture("isvc-create.json"));
    assert_eq!(answer.outcome, Outcome::Allowed);
    assert!(
        answer.response.get("patch").is_none(),
        "/validate never patches"
    );
}

#[test]
fn a_policy_refusal_is_forbidden() {
    let mut review = fixture("isvc-create.json");
    review["request"]["object"]["metadata"]["annotations"] =
        json!({ "isvc-ingress.io/host": "models.competitor.com" });
    let answer = send(
        &webhook_with(KserveConfig::shipped(), ours()),
        Endpoint::Validate,
        &review,
    );
    assert_eq!(answer.response["status"]["code"], 403);
    assert_eq!(answer.response["status"]["reason"], "Forbidden");
    let policy = Policy {
        allowed_domains: vec!["competitor.com".into()],
        ..ours()
    };
    let answer = send(
        &webhook_with(KserveConfig::shipped(), policy),
        Endpoint::Validate,
        &review,
    );
    assert_eq!(answer.response["allowed"], true);
}

/// Including objects that cannot be read as an ISVC at all: found by fuzzing
/// (`admission_isvc`), an object being deleted with no predictor and a wrong-typed timeout was
/// refused, so its finalizers could never be removed. Checked on both readers: the typed one
/// (the review as sent) and the precise one (where a label of the wrong type sends the body).
#[test]
fn objects_being_deleted_are_never_blocked() {
    let unplannable = |review: &mut Value| {
        review["request"]["object"]["metadata"]["name"] = json!("9-bad");
    };
    let unreadable = |review: &mut Value| {
        let spec = &mut review["request"]["object"]["spec"];
        spec["explainer"] = json!({ "timeout": "thirty" });
        spec.as_object_mut().unwrap().remove("predictor");
    };
    let unreadable_precisely = |review: &mut Value| {
        review["request"]["object"]["metadata"]["labels"] = json!({ "team": 7 });
    };
    for (case, break_it) in [
        ("unplannable", &unplannable as &dyn Fn(&mut Value)),
        ("unreadable", &unreadable),
        ("unreadable, precise reader", &unreadable_precisely),
    ] {
        let mut review = fixture("isvc-update.json");
        break_it(&mut review);
        let live = send(&webhook(), Endpoint::Validate, &review);
        assert_eq!(live.outcome, Outcome::Denied, "{case}: refused while live");
        review["request"]["object"]["metadata"]["deletionTimestamp"] =
            json!("2026-11-22T03:00:00Z");
        for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
            let answer = send(&webhook(), endpoint, &review);
            assert_eq!(answer.outcome, Outcome::Allowed, "{case}");
            assert!(answer.response.get("patch").is_none(), "{case}");
        }
    }
}

#[test]
fn status_mutator_corrects_urls_and_keeps_everything_else() {
    let review = fixture("isvc-status-update.json");
    let answer = send(&webhook(), Endpoint::Mutate, &review);
    assert_eq!(answer.outcome, Outcome::Patched);
    let result = patched(&review, &answer);
    let status = &result["status"];
    assert_eq!(status["url"], "http://sklearn-iris-models.example.com");
    assert_eq!(
        status["address"]["url"],
        "http://sklearn-iris-predictor.models.svc.cluster.local"
    );
    assert_eq!(
        status["components"]["predictor"]["url"],
        "http://sklearn-iris-predictor-models.example.com"
    );
    assert_eq!(
        status["components"]["predictor"]["restUrl"],
        "http://sklearn-iris-predictor-models.example.com"
    );
    let mut others = status.clone();
    let mut original = review["request"]["object"]["status"].clone();
    for value in [&mut others, &mut original] {
        let map = value.as_object_mut().unwrap();
        map.remove("url");
        map["components"]["predictor"]
            .as_object_mut()
            .unwrap()
            .remove("url");
        map["components"]["predictor"]
            .as_object_mut()
            .unwrap()
            .remove("restUrl");
    }
    assert_eq!(
        others, original,
        "conditions, modelStatus and the rest are untouched"
    );
    assert_eq!(
        result["metadata"], review["request"]["object"]["metadata"],
        "metadata is untouched"
    );
    // A status that already says the plan's URLs gets no patch.
    let mut settled = review.clone();
    settled["request"]["object"] = result;
    assert_eq!(
        send(&webhook(), Endpoint::Mutate, &settled).outcome,
        Outcome::Allowed
    );
    // /validate does not act on the status sub-resource.
    assert_eq!(
        send(&webhook(), Endpoint::Validate, &review).outcome,
        Outcome::Allowed
    );
}

#[test]
fn status_mutator_adds_missing_parents_and_removes_stale_grpc_urls() {
    let mut review = fixture("isvc-status-update.json");
    let object = &mut review["request"]["object"];
    object["status"] = json!({ "components": { "predictor": { "grpcUrl": "grpc://old:9000" } } });
    let result = patched(&review, &send(&webhook(), Endpoint::Mutate, &review));
    assert_eq!(
        result["status"]["address"]["url"],
        "http://sklearn-iris-predictor.models.svc.cluster.local"
    );
    assert!(
        result["status"]["components"]["predictor"]
            .get("grpcUrl")
            .is_none()
    );
    review["request"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("status");
    let result = patched(&review, &send(&webhook(), Endpoint::Mutate, &review));
    assert_eq!(
        result["status"]["url"],
        "http://sklearn-iris-models.example.com"
    );
}

#[test]
fn config_map_changes_are_validated() {
    let answer = send(
        &webhook(),
        Endpoint::Validate,
        &fixture("configmap-good.json"),
    );
    assert_eq!(answer.outcome, Outcome::Allowed);
    let answer = send(
        &webhook(),
        Endpoint::Validate,
        &fixture("configmap-bad.json"),
    );
    assert_eq!(answer.outcome, Outcome::Denied);
    assert_eq!(answer.response["status"]["code"], 422);
    let message = answer.response["status"]["message"].as_str().unwrap();
    for field in [
        "config.ingress.kserveIngressGateway",
        "config.ingress.urlScheme",
        "config.ingress.domainTemplate",
        "config.deploy.defaultDeploymentMode",
    ] {
        assert!(
            message.contains(&format!("{field}: ")),
            "{field} missing from {message}"
        );
    }
    // Other ConfigMaps, and this name in another namespace, pass untouched.
    for (name, namespace) in [("other", "kserve"), ("inferenceservice-config", "team-a")] {
        let mut review = fixture("configmap-bad.json");
        review["request"]["name"] = json!(name);
        review["request"]["namespace"] = json!(namespace);
        let answer = send(&webhook(), Endpoint::Validate, &review);
        assert_eq!(answer.outcome, Outcome::Allowed, "{name} in {namespace}");
    }
}

#[test]
fn delete_connect_dry_run_and_other_kinds() {
    let answer = send(&webhook(), Endpoint::Validate, &fixture("isvc-delete.json"));
    assert_eq!(answer.outcome, Outcome::Allowed);
    assert!(answer.response.get("patch").is_none());
    let mut connect = fixture("isvc-delete.json");
    connect["request"]["operation"] = json!("CONNECT");
    assert_eq!(
        send(&webhook(), Endpoint::Mutate, &connect).outcome,
        Outcome::Allowed
    );
    let answer = send(&webhook(), Endpoint::Mutate, &fixture("unrelated-pod.json"));
    assert_eq!(answer.outcome, Outcome::Allowed);
    assert!(answer.response.get("patch").is_none());
    // dryRun gets the same answer, patch included.
    let dry = send(
        &webhook(),
        Endpoint::Mutate,
        &fixture("isvc-create-dry-run.json"),
    );
    let wet = send(&webhook(), Endpoint::Mutate, &fixture("isvc-create.json"));
    assert_eq!(dry.response["patch"], wet.response["patch"]);
}

#[test]
fn unusable_bodies_and_requests() {
    let webhook = webhook();
    let reply = webhook.handle(Endpoint::Mutate, b"{not json");
    assert_eq!((reply.http_status, reply.outcome), (400, Outcome::Error));
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("the body is not JSON")
    );
    let reply = webhook.handle(
        Endpoint::Mutate,
        br#"{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}"#,
    );
    assert_eq!(reply.http_status, 400);
    let reply = webhook.handle(Endpoint::Mutate, br#"[1, 2]"#);
    assert_eq!(reply.http_status, 400);

    let answer = send(
        &webhook,
        Endpoint::Mutate,
        &json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview" }),
    );
    assert_eq!((answer.status, answer.outcome), (200, Outcome::Error));
    assert_eq!(answer.response["allowed"], false);
    assert_eq!(
        answer.response["status"]["message"],
        "the AdmissionReview has no request"
    );

    let mut malformed = fixture("isvc-create.json");
    malformed["request"]["operation"] = json!(7);
    let answer = send(&webhook, Endpoint::Mutate, &malformed);
    assert_eq!(answer.response["allowed"], false);
    assert_eq!(
        answer.response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002",
        "uid still echoed"
    );
    assert!(
        answer.response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("request is malformed")
    );

    for object in [
        json!("sklearn-iris"),
        json!([]),
        json!([{ "metadata": { "name": "m" } }]),
    ] {
        let mut not_an_object = fixture("isvc-create.json");
        not_an_object["request"]["object"] = object.clone();
        let answer = send(&webhook, Endpoint::Mutate, &not_an_object);
        assert_eq!(
            answer.response["status"]["message"], "request.object is not a JSON object",
            "{object}"
        );
    }

    let mut missing = fixture("isvc-create.json");
    missing["request"]["object"] = Value::Null;
    let answer = send(&webhook, Endpoint::Validate, &missing);
    assert!(
        answer.response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("request.object is missing")
    );

    let mut broken_isvc = fixture("isvc-create.json");
    broken_isvc["request"]["object"]["metadata"]["labels"] = json!({ "team": 7 });
    let answer = send(&webhook, Endpoint::Validate, &broken_isvc);
    assert_eq!(answer.response["status"]["code"], 422);
    assert!(
        answer.response["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("metadata.labels[team]: must be a string")
    );
}

/// Found by fuzzing (`admission_review_bytes`): one invalid UTF-8 byte inside a field the
/// webhook skips (`spec.predictor.model.runtime`) passed the typed reader, which does not check
/// the strings it skips, and the ISVC was admitted; the precise path refuses the same body. Every
/// body that is not UTF-8 is now refused up front, whichever field holds the byte.
#[test]
fn a_body_that_is_not_utf8_is_refused_wherever_the_byte_is() {
    let webhook = webhook();
    let text = serde_json::to_string(&fixture("isvc-create.json")).unwrap();
    for field in ["\"storageUri\":\"", "\"uid\":\"", "\"username\":\""] {
        let at = text.find(field).expect(field) + field.len();
        let mut body = text.clone().into_bytes();
        body.insert(at, 0xe3);
        for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
            let reply = webhook.handle(endpoint, &body);
            assert_eq!(
                (reply.http_status, reply.outcome),
                (400, Outcome::Error),
                "{field}"
            );
            let answer: Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(
                answer["error"],
                format!("the body is not JSON: invalid UTF-8 at byte {at}"),
                "{field}"
            );
        }
    }
}

/// Found by fuzzing (`admission_review_bytes`): a malformed request that repeats `uid` was
/// answered with an empty uid, which the apiserver cannot match to its request. The last `uid`
/// counts, as in any JSON tree.
#[test]
fn a_malformed_request_with_a_repeated_uid_is_answered_with_the_last_one() {
    let webhook = webhook();
    let body = br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "first", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "operation": "CREATE", "uid": "last"}}"#;
    let reply = webhook.handle(Endpoint::Validate, body);
    assert_eq!((reply.http_status, reply.outcome), (200, Outcome::Error));
    let answer: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(answer["response"]["uid"], "last", "{answer}");
    assert_eq!(answer["response"]["allowed"], false);
    assert!(
        answer["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the AdmissionReview request is malformed"),
        "{answer}"
    );
}

#[test]
fn a_replaced_config_applies_to_the_next_request() {
    let state = Arc::new(AdmissionState::new(
        KserveConfig::shipped(),
        Policy::default(),
        "kserve",
    ));
    let webhook = Webhook::new(state.clone());
    let review = fixture("isvc-create.json");
    let before = patched(&review, &send(&webhook, Endpoint::Mutate, &review));
    assert_eq!(
        annotations(&before)["isvc-ingress.io/route-kind"],
        "VirtualService"
    );
    state.replace_config(support::config_with(
        json!({ "enableGatewayApi": true }),
        "Standard",
    ));
    let after = patched(&review, &send(&webhook, Endpoint::Mutate, &review));
    assert_eq!(
        annotations(&after)["isvc-ingress.io/route-kind"],
        "HTTPRoute"
    );
}

#[test]
fn the_realistic_review_of_the_benchmarks_mutates() {
    let review = fixture("isvc-create-3kb.json");
    let config = support::config_with(json!({ "enableGatewayApi": true }), "Standard");
    let answer = send(&webhook_with(config, ours()), Endpoint::Mutate, &review);
    let result = patched(&review, &answer);
    assert_eq!(
        annotations(&result)["isvc-ingress.io/url"],
        "http://fraud-detector-payments-ml.example.com"
    );
    assert_eq!(
        annotations(&result)["isvc-ingress.io/transformer-url"],
        "http://fraud-detector-transformer-payments-ml.example.com"
    );
}

#[test]
fn a_host_another_isvc_holds_is_refused_naming_the_holder() {
    let hosts = isvc_ingress::reconcile::HostIndex::new();
    hosts.set(
        "team-b",
        "their-model",
        None,
        vec!["models.example.com".into()],
    );
    let state = AdmissionState::new(KserveConfig::shipped(), ours(), "kserve")
        .with_host_index(hosts.clone());
    let webhook = Webhook::new(Arc::new(state));
    let mut review = fixture("isvc-create.json");
    review["request"]["object"]["metadata"]["annotations"] =
        json!({ "isvc-ingress.io/host": "models.example.com" });
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let answer = send(&webhook, endpoint, &review);
        assert_eq!(answer.outcome, Outcome::Denied);
        assert_eq!(answer.response["status"]["code"], 403);
        assert_eq!(answer.response["status"]["reason"], "Forbidden");
        assert_eq!(
            answer.response["status"]["message"],
            "metadata.annotations[isvc-ingress.io/host]: the host \"models.example.com\" is already held by InferenceService team-b/their-model"
        );
    }
    // The holder itself may keep its host; a free host passes.
    hosts.set(
        "models",
        "sklearn-iris",
        None,
        vec!["models.example.com".into()],
    );
    hosts.remove("team-b", "their-model");
    assert_eq!(
        send(&webhook, Endpoint::Validate, &review).outcome,
        Outcome::Allowed
    );
}

/// With `--route-owner isvc-ingress`, a status write by another writer (KServe's manager,
/// `fieldManager: manager`) that turns `IngressReady` True keeps the False isvc-ingress wrote,
/// and `Ready` follows it; isvc-ingress's own write (`fieldManager: isvc-ingress`) and any write
/// with `--route-owner kserve` keep their condition as written.
#[test]
fn status_mutator_keeps_our_ingress_ready_over_another_writers_with_isvc_ingress_as_owner() {
    let refused = json!({"type": "IngressReady", "status": "False", "reason": "NotAllowedByListeners",
                         "message": "InferenceService no listener allows it",
                         "lastTransitionTime": "2026-11-22T02:02:00Z"});
    let mut review = fixture("isvc-status-update.json");
    review["request"]["oldObject"]["status"]["conditions"] = json!([refused.clone()]);
    review["request"]["object"]["status"]["conditions"] = json!([
        {"type": "IngressReady", "status": "True", "lastTransitionTime": "2026-11-22T02:03:00Z"},
        {"type": "PredictorReady", "status": "True", "lastTransitionTime": "2026-11-22T02:01:00Z"},
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-22T02:03:00Z"},
    ]);
    assert_eq!(review["request"]["options"]["fieldManager"], "manager");
    let answer = send(
        &webhook_with(KserveConfig::shipped(), ours()),
        Endpoint::Mutate,
        &review,
    );
    let conditions = patched(&review, &answer)["status"]["conditions"].clone();
    assert_eq!(
        conditions,
        json!([
            refused,
            {"type": "PredictorReady", "status": "True", "lastTransitionTime": "2026-11-22T02:01:00Z"},
            {"type": "Ready", "status": "False", "reason": "NotAllowedByListeners",
             "message": "InferenceService no listener allows it",
             "lastTransitionTime": "2026-11-22T02:02:00Z"},
        ])
    );

    let written = review["request"]["object"]["status"]["conditions"].clone();
    let mut ours_written = review.clone();
    ours_written["request"]["options"]["fieldManager"] = json!("isvc-ingress");
    for (case, webhook, review) in [
        (
            "isvc-ingress's own write",
            webhook_with(KserveConfig::shipped(), ours()),
            &ours_written,
        ),
        ("KServe owns the routes", webhook(), &review),
    ] {
        let answer = send(&webhook, Endpoint::Mutate, review);
        let conditions = if answer.outcome == Outcome::Patched {
            patched(review, &answer)["status"]["conditions"].clone()
        } else {
            review["request"]["object"]["status"]["conditions"].clone()
        };
        assert_eq!(conditions, written, "{case}");
    }
}
